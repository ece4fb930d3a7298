import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendKey, buildReport, lineChart, barChart, reportFromPaths, writeResult, type GainRecord, type RunResult } from '@gradmax/harness';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function fixture(arm: string, seed: number, finalTrainLoss: number, options: { backend?: string; gain?: GainRecord[]; status?: 'ok' | 'failed'; growthMs?: number } = {}): RunResult {
  const backend = options.backend ?? 'wasm';
  const steps = [0, 10, 20, 30];
  return {
    schema: 'gradmax.bench.result/v1',
    status: options.status ?? 'ok',
    id: `teacher-student__${arm}__seed${seed}__${backend}__cafe0001`,
    task: 'teacher-student',
    arm,
    seed,
    backend: { name: backend, device: `${backend} device`, requested: 'auto', package: `pkg-${backend}` },
    configHash: 'cafe0001',
    config: { preset: 'tiny', inputDim: 20, scale: 1 },
    versions: { node: '20' },
    host: { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'test cpu', node: '20' },
    ...(options.status === 'failed'
      ? { error: 'InvalidArgumentError: boom | pipe' }
      : {
          curves: { trainLoss: { step: steps, value: steps.map((s) => finalTrainLoss + 1 / (1 + s + seed)) }, width: { step: [0, 10], value: [5, 6] } },
          growths: arm === 'small' || arm === 'big' ? [] : [{ step: 10, site: 'hidden0', strategy: arm, unitsBefore: 5, unitsAfter: 6, newWeightGradNorm: 1, kernelGradNormBefore: 1, kernelGradNormAfter: 2, lossBefore: 1, lossAfter: 1, durationMs: options.growthMs ?? 1 }],
          summary: { finalTrainLoss, finalWidth: arm === 'small' ? 5 : 6, parameters: 100 },
          timings: { totalMs: 1000, setupMs: 1, trainMs: 99, growthMs: options.growthMs ?? 1, evalMs: 0, analysisMs: 0, steps: 30 },
          ...(options.gain ? { gain: options.gain } : {}),
        }),
    startedAt: '2026-11-26T00:00:00Z',
    finishedAt: '2026-11-26T00:00:01Z',
  };
}

function gain(growth: number, strategy: string, norms: number[], loss: number): GainRecord {
  return { growth, step: growth * 10, unitsBefore: 4 + growth, strategy, newWeightGradNorm: norms, newIncomingGradNorm: norms, kernelGradNormDelta: norms.map((n) => n / 2), meanLossAfter: loss, stepsAfter: 9 };
}

function wellFormedXml(svg: string): string {
  const r = spawnSync('python3', ['-c', 'import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.read()); print("ok")'], { input: svg, encoding: 'utf8' });
  return r.stdout.trim() || r.stderr;
}

describe('reports', () => {
  it('tables show mean ± std over seeds, per arm, with the growth time share', () => {
    const results = [fixture('gradmax', 0, 1), fixture('gradmax', 1, 2), fixture('gradmax', 2, 3, { growthMs: 4 }), fixture('small', 0, 5)];
    const report = buildReport(results);
    const row = report.markdown.split('\n').find((l) => l.startsWith('| gradmax |'))!;
    expect(row).toContain('| 3 | 2 ± 1 |');
    // growth share: mean of 1/100, 1/100, 4/103.
    expect(row).toContain(`${(((1 / 100 + 1 / 100 + 4 / 103) / 3) * 100).toFixed(2)}%`);
    expect(report.markdown.split('\n').find((l) => l.startsWith('| small |'))).toContain('| 1 | 5 |');
    expect(report.summary).toMatch(/gradmax\s+3\s+2 ± 1/);
    expect(Object.keys(report.svgs)).toEqual(['teacher-student-wasm-cafe0001-highlight.svg', 'teacher-student-wasm-cafe0001-loss.svg']);
  });

  it('never mixes backends: separate labelled sections, each with its own means', () => {
    const results = [fixture('random', 0, 1), fixture('random', 1, 3), fixture('random', 0, 100, { backend: 'cpu' })];
    const report = buildReport(results);
    expect(report.groups.map((g) => g.backend.name)).toEqual(['cpu', 'wasm']);
    expect(report.markdown).toContain('## teacher-student · backend `wasm`');
    expect(report.markdown).toContain('## teacher-student · backend `cpu`');
    expect(report.markdown).toMatch(/results from 2 \(backend, config\) combinations/);
    const rows = report.markdown
      .split('### Final results')
      .slice(1)
      .map((section) => section.split('\n').find((l) => l.startsWith('| random |')));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('| 1 | 100 |');
    expect(rows[1]).toContain('| 2 | 2 ± 1.4 |');
  });

  it('never mixes WebGPU adapters: one section per adapter, named in the heading', () => {
    const onAdapter = (r: RunResult, vendor: string, architecture: string, software: boolean): RunResult => ({
      ...r,
      backend: { ...r.backend, name: 'webgpu', device: `webgpu on ${vendor}`, adapter: { vendor, architecture, description: `${architecture} driver`, software } },
    });
    const results = [
      onAdapter(fixture('random', 0, 1), 'google', 'swiftshader', true),
      onAdapter(fixture('random', 1, 3), 'google', 'swiftshader', true),
      onAdapter(fixture('random', 0, 100), 'nvidia', 'ampere', false),
    ];
    const report = buildReport(results);
    expect(report.groups.map((g) => backendKey(g.backend))).toEqual(['webgpu-google-swiftshader-swiftshader-driver', 'webgpu-nvidia-ampere-ampere-driver']);
    expect(report.markdown).toContain('## teacher-student · backend `webgpu on google swiftshader (swiftshader driver), software`');
    expect(report.markdown).toContain('## teacher-student · backend `webgpu on nvidia ampere (ampere driver)`');
    const rows = report.markdown
      .split('### Final results')
      .slice(1)
      .map((section) => section.split('\n').find((l) => l.startsWith('| random |')));
    expect(rows[0]).toContain('| 2 | 2 ± 1.4 |');
    expect(rows[1]).toContain('| 1 | 100 |');
  });

  it('lists failed runs separately and escapes table cells', () => {
    const report = buildReport([fixture('gradmax', 0, 1), fixture('tiny', 0, 0, { status: 'failed' })]);
    expect(report.failed).toHaveLength(1);
    expect(report.markdown).toContain('## Failed runs');
    expect(report.markdown).toContain('boom \\| pipe');
    expect(report.markdown.split('\n').some((l) => l.startsWith('| tiny |'))).toBe(false);
  });

  it('checks of the science pass when GradMax beats Random everywhere and say so plainly when not', () => {
    const good = [0, 1].map((seed) =>
      fixture('growth-gain', seed, 1, {
        gain: [1, 2].flatMap((g) => [gain(g, 'gradmax', [0.4, 0.4], 0.3), gain(g, 'gradmaxOpt', [0.3, 0.25], 0.32), gain(g, 'random', [0.1, 0.2], 0.35)]),
      }),
    );
    const ok = buildReport(good).markdown;
    expect(ok).toContain("✅ GradMax's new-weight gradient norm exceeds Random's best of 2 at every growth in every seed (4/4 (growth, seed) cases).");
    expect(ok).toContain('| 1 | 2/2 | 2–2 | 2/2 | 2/2 | 0/2 | 2/2 |');
    expect(ok).toContain("✅ GradMax-Opt's new-weight gradient norm lies between Random's (mean of repeats) and GradMax's in 4/4 (growth, seed) cases; it ties GradMax in 0/4");
    expect(ok).toContain('### Reference notebook vs ours');
    expect(ok).toContain('| 1 | 0.2657 | 0.2 ± 0 | 0.1669 | 0.1 ± 0 | 0.2469 | 0.15 ± 0 |');
    const bad = [
      good[0]!,
      fixture('growth-gain', 1, 1, { gain: [1, 2].flatMap((g) => [gain(g, 'gradmax', [0.1, 0.1], 0.5), gain(g, 'gradmaxOpt', [0.3, 0.3], 0.32), gain(g, 'random', [0.2, 0.3], 0.35)]) }),
    ];
    const md = buildReport(bad).markdown;
    expect(md).toContain("❌ GradMax's new-weight gradient norm exceeds Random's best of 2 in 2/4 (growth, seed) cases, NOT at every growth in every seed");
    expect(md).toContain('| 1 | 1/2 |');
    expect(md).toContain('**Where ours disagree with the notebook:**');
    expect(md).toContain("growth 1: our mean loss after GradMax-Opt (0.32) is below GradMax's (0.4)");
    const tie = [0, 1].map((seed) =>
      fixture('growth-gain', seed, 1, { gain: [1, 2].flatMap((g) => [gain(g, 'gradmax', [0.4, 0.4], 0.3), gain(g, 'gradmaxOpt', [0.4, 0.4], 0.31), gain(g, 'random', [0.1, 0.2], 0.35)]) }),
    );
    const tied = buildReport(tie).markdown;
    expect(tied).toContain('it ties GradMax in 4/4');
    expect(tied).toContain("at 2 growth(s) our GradMax-Opt reaches GradMax's gain");
    const svgs = buildReport(bad).svgs;
    // Only the analysis arm: gain plots, no loss curves (growth-gain duplicates the Random trajectory).
    expect(Object.keys(svgs).sort()).toEqual(['teacher-student-wasm-cafe0001-gain-loss.svg', 'teacher-student-wasm-cafe0001-gain.svg']);
    for (const svg of Object.values(svgs)) expect(wellFormedXml(svg)).toBe('ok');
  });

  it('SVG charts are well-formed, deterministic and escape labels', () => {
    const line = lineChart({ title: 'a < b & "c"', xLabel: 'x', yLabel: 'y', series: [{ name: 's<1>', x: [0, 1, 2], y: [1, 0.1, 0.01], band: [0.1, 0.01, 0.001] }], logY: true, vlines: [1] });
    expect(wellFormedXml(line)).toBe('ok');
    expect(line).toContain('a &lt; b &amp; &quot;c&quot;');
    expect(line).not.toContain('NaN');
    expect(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's<1>', x: [0, 1, 2], y: [1, 0.1, 0.01], band: [0.1, 0.01, 0.001] }], logY: true, vlines: [1] })).toBe(
      lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's<1>', x: [0, 1, 2], y: [1, 0.1, 0.01], band: [0.1, 0.01, 0.001] }], logY: true, vlines: [1] }),
    );
    const bars = barChart({ title: 't', xLabel: 'g', yLabel: 'v', groups: ['1', '2'], series: [{ name: 'a', values: [1, NaN], errors: [0.1, 0] }, { name: 'b', values: [2, 3] }] });
    expect(wellFormedXml(bars)).toBe('ok');
    expect(bars).not.toContain('NaN');
    expect(wellFormedXml(lineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [] }))).toBe('ok');
  });

  it('merges result files from several directories, skipping foreign JSON, and writes report.md and SVGs', async () => {
    const [a, b] = [await mkdtemp(path.join(os.tmpdir(), 'gradmax-rep-')), await mkdtemp(path.join(os.tmpdir(), 'gradmax-rep-'))];
    dirs.push(a, b);
    await writeResult(a, fixture('gradmax', 0, 1));
    await writeResult(b, fixture('gradmax', 1, 3));
    await writeResult(b, fixture('gradmax', 0, 1)); // same id in both: counted once
    await writeFile(path.join(b, 'results', 'notes.json'), '{"hello": 1}');
    const out = await reportFromPaths([a, b], a);
    expect(out.groups[0]!.results).toHaveLength(2);
    expect(out.markdown).toContain('## Skipped files');
    expect(out.markdown).toMatch(/notes\.json`: .*schema/);
    const written = (await readdir(a)).sort();
    expect(written).toEqual(['report.md', 'results', 'teacher-student-wasm-cafe0001-loss.svg']);
    expect(await readFile(path.join(a, 'report.md'), 'utf8')).toBe(out.markdown);
  });

  it('a result whose summary holds a non-number is skipped with the reason, not half-counted (issue 15 item 16)', async () => {
    const a = await mkdtemp(path.join(os.tmpdir(), 'gradmax-rep-'));
    dirs.push(a);
    await writeResult(a, fixture('gradmax', 0, 1));
    const bad = fixture('gradmax', 1, 3);
    (bad.summary as Record<string, unknown>).finalTrainLoss = 'oops';
    await writeResult(a, bad);
    const out = await reportFromPaths([a], a);
    expect(out.groups[0]!.results).toHaveLength(1);
    expect(out.markdown).toMatch(/summary field "finalTrainLoss" is "oops", not a number/);
  });
});
