// Benchmark (not a timed test): the harness training step of the mnist-cnn task at full width (arm `big`, default
// widths, batch 128) on webgpu against wasm, printed as a ratio with the WebGPU adapter's name.
// Target (issue 14): on a hardware GPU, webgpu ≥ 5× faster than wasm. On a software adapter (SwiftShader, the only
// one on machines without a GPU) the ratio says nothing about GPU speed, and the output says so.
// Run after `pnpm build`: `node packages/harness/bench/webgpu-step.bench.mjs` (root `pnpm bench` runs it).
// Flags: --steps=N (measured steps per backend, default 5), --batch=N (default 128).
// Each backend runs in its own child process (one tfjs backend per process, as in `gradmax bench run`). Webgpu uses
// the Vulkan driver the system provides; when it finds none and Debian's chromium ships SwiftShader, it retries on
// SwiftShader (VK_ICD_FILENAMES), labelled as a software adapter.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const steps = arg('steps', 5);
const batch = arg('batch', 128);
const child = process.argv.find((a) => a.startsWith('--child='))?.slice(8);

if (child) {
  // Child: one backend. Two task runs: the first compiles every shader / program (warm-up, not measured), the second
  // is measured (its trainMs covers batch assembly and trainOnBatch, what the harness does per step).
  const tf = await import('@tensorflow/tfjs-core');
  const { getTask, setupBackend } = await import('../dist/index.js');
  let backend;
  try {
    backend = await setupBackend(child);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: error.message })}\n`);
    process.exit(0);
  }
  const task = getTask('mnist-cnn');
  const run = async (n) => {
    const config = task.resolveConfig('default', { steps: n, batch, evalEvery: 1000000, testSize: 10, trainSize: 2000 });
    return (await task.run({ tf, config, arm: 'big', seed: 0, backend })).timings;
  };
  await run(2);
  const t = await run(steps);
  process.stdout.write(`${JSON.stringify({ backend, msPerStep: t.trainMs / t.steps })}\n`);
} else {
  const script = fileURLToPath(import.meta.url);
  const measure = (backend, env) => {
    const r = spawnSync(process.execPath, [script, `--child=${backend}`, `--steps=${steps}`, `--batch=${batch}`], { encoding: 'utf8', env: { ...process.env, ...env } });
    const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
    if (r.status !== 0 || !line) return { error: (r.stderr.split('\n').find((l) => /Error\b/.test(l)) ?? `exit ${r.status}`).trim().slice(0, 300) };
    return JSON.parse(line);
  };
  console.log(`mnist-cnn training step at full width (conv 16/32, dense 64), batch ${batch}, ${steps} measured steps after a warm-up run`);
  const wasm = measure('wasm', {});
  let gpu = measure('webgpu', {});
  if (gpu.error && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    console.log(`webgpu on the system's drivers: ${gpu.error}; retrying on SwiftShader (${SWIFTSHADER_ICD})`);
    gpu = measure('webgpu', { VK_ICD_FILENAMES: SWIFTSHADER_ICD });
  }
  if (wasm.error) console.log(`wasm: failed: ${wasm.error}`);
  else console.log(`wasm: ${wasm.msPerStep.toFixed(1)} ms/step (${wasm.backend.device})`);
  if (gpu.error) {
    console.log(`webgpu: not measured: ${gpu.error}`);
  } else {
    console.log(`webgpu: ${gpu.msPerStep.toFixed(1)} ms/step (${gpu.backend.device})`);
  }
  if (!wasm.error && !gpu.error) {
    const a = gpu.backend.adapter;
    const adapter = [a.vendor, a.architecture].filter(Boolean).join(' ') + (a.description ? ` (${a.description})` : '');
    const speedup = wasm.msPerStep / gpu.msPerStep;
    console.log(
      `| mnist-cnn step, batch ${batch}: webgpu/wasm step-time ratio | ${adapter}${a.software ? ', software' : ''} | ` +
        `${(gpu.msPerStep / wasm.msPerStep).toFixed(2)} (webgpu ${speedup >= 1 ? `${speedup.toFixed(2)}× faster` : `${(1 / speedup).toFixed(2)}× slower`}; target on a hardware GPU: ≥ 5× faster) |`,
    );
    if (a.software) console.log('note: a software rasteriser (CPU) stands in for the GPU here, so this ratio measures SwiftShader, not a GPU; no hardware GPU was available.');
  }
}
