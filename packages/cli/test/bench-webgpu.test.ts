/**
 * `gradmax bench run --task mnist-cnn --backend webgpu`, the command docs/gpu.md shows, run through the built binary
 * on the Vulkan driver of `VK_ICD_FILENAMES` (SwiftShader from Debian's chromium by default), then the same grid on
 * wasm into the same folder: results record the adapter, growth is function-preserving, the webgpu numbers match
 * wasm's, and the report keeps the two backends in separate sections. Skipped, with the reason in its name, when
 * there is no Vulkan driver or the optional `webgpu` package is not installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '@gradmax/harness';
import { tmpDir } from '../../onnx/test/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'packages/cli/dist/bin.js');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const DRIVER = process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD;

function skipReason(): string | undefined {
  if (!DRIVER.split(':').every((f) => fs.existsSync(f))) return `no Vulkan driver at ${DRIVER} (apt-get install chromium for SwiftShader, or set VK_ICD_FILENAMES)`;
  try {
    // @gradmax/tfjs loads the optional peer from its own folder.
    createRequire(path.join(ROOT, 'packages/tfjs/package.json')).resolve('webgpu');
  } catch {
    return 'the optional "webgpu" package (Dawn for Node) is not installed';
  }
  return undefined;
}

/** The documented command, with a tiny budget (docs/gpu.md shows the same line). */
const GRID = ['--task', 'mnist-cnn', '--preset', 'tiny', '--arm', 'gradmax', '--seeds', '1'];

function gradmax(args: string[], cwd: string) {
  return spawnSync(process.execPath, [BIN, 'bench', 'run', ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1', VK_ICD_FILENAMES: DRIVER }, timeout: 170_000 });
}

function results(dir: string): RunResult[] {
  const folder = path.join(dir, 'gpu-report', 'results');
  return fs.readdirSync(folder).map((f) => JSON.parse(fs.readFileSync(path.join(folder, f), 'utf8')) as RunResult);
}

const reason = skipReason();
describe.skipIf(reason !== undefined)(`gradmax bench run --backend webgpu${reason ? ` — skipped: ${reason}` : ''}`, () => {
  it('runs mnist-cnn on webgpu, records the adapter, matches wasm, and reports the backends in separate sections', () => {
    const dir = tmpDir('gradmax-bench-webgpu-');
    const gpu = gradmax(['--backend', 'webgpu', ...GRID, '--out', 'gpu-report'], dir);
    expect(gpu.status, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/backend: webgpu — webgpu on /);
    const cpu = gradmax(['--backend', 'wasm', ...GRID, '--out', 'gpu-report'], dir);
    expect(cpu.status, cpu.stderr).toBe(0);

    const all = results(dir);
    expect(all.map((r) => r.backend.name).sort()).toEqual(['wasm', 'webgpu']);
    const onGpu = all.find((r) => r.backend.name === 'webgpu')!;
    const onWasm = all.find((r) => r.backend.name === 'wasm')!;
    expect(onGpu.status).toBe('ok');
    // The adapter is recorded, and is part of the result id (runs on different adapters never share a file).
    const adapter = onGpu.backend.adapter!;
    expect(typeof adapter.vendor).toBe('string');
    expect(typeof adapter.architecture).toBe('string');
    expect(typeof adapter.description).toBe('string');
    expect(typeof adapter.software).toBe('boolean');
    if (DRIVER === SWIFTSHADER_ICD) expect(adapter).toMatchObject({ architecture: 'swiftshader', software: true });
    expect(onGpu.id).toContain('__webgpu-');
    expect(onWasm.backend.adapter).toBeUndefined();

    // Growth happened on webgpu (through the controller's async path), widened the model and preserved the function.
    const growths = onGpu.growths!;
    expect(growths.length).toBeGreaterThan(0);
    for (const g of growths) {
      expect(g.unitsAfter).toBeGreaterThan(g.unitsBefore);
      expect(Math.abs(g.lossAfter! - g.lossBefore!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(g.lossBefore!)));
    }
    expect(onGpu.summary!.finalWidth).toBeGreaterThan(onGpu.curves!.width!.value[0]!);
    // No tensor left behind by the async growth path beyond what the same run leaves on wasm.
    expect(onGpu.summary!.leakedTensors).toBe(onWasm.summary!.leakedTensors);

    // Same seeds, same data: webgpu gives wasm's numbers (float32 rounding apart).
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-6, Math.abs(b));
    expect(onWasm.growths!.length).toBe(growths.length);
    growths.forEach((g, i) => {
      const w = onWasm.growths![i]!;
      expect(rel(g.lossBefore!, w.lossBefore!)).toBeLessThan(1e-4);
      expect(rel(g.newIncomingGradNorm!, w.newIncomingGradNorm!)).toBeLessThan(1e-3);
    });

    // One section per backend (and adapter), never one table for both.
    const report = fs.readFileSync(path.join(dir, 'gpu-report', 'report.md'), 'utf8');
    expect(report).toContain('## mnist-cnn · backend `wasm`');
    expect(report).toMatch(/## mnist-cnn · backend `webgpu on [^`]+`/);
    expect(report).toMatch(/has results from 2 \(backend, config\) combinations .*never averaged together/);
  }, 360_000);
});
