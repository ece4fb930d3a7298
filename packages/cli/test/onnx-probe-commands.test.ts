import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { encodeNpy, findSites, loadModel, readNpy, serializeModel, npyToFloat64 } from '@gradmax/onnx';
import { computeStatistics } from '@gradmax/onnx/probe';
import { GraphBuilder, tmpDir } from '../../onnx/test/helpers.js';
import { memoryIO } from '../src/shared/io.js';
import { runOnnx } from '../src/onnx/index.js';
import { runStatsCommand, runWidenFromDataCommand } from '../src/onnx/probe-commands.js';

function setup(seed = 1) {
  const dir = tmpDir('gradmax-probe-cli-');
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', ['N', 4]);
  const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'fc1');
  const y = b.op('Gemm', [b.op('Relu', [h]), b.weight([5, 3]), b.weight([3])], {}, 1, 'fc2');
  b.output(y, ['N', 3]);
  const model = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(model, serializeModel(b.model()));
  const rng = new Rng(seed + 100);
  const N = 37;
  const xs = Float32Array.from({ length: N * 4 }, () => rng.normal());
  const labels = Float64Array.from({ length: N }, () => rng.int(3));
  fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(xs, [N, 4]));
  fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(labels, [N]));
  fs.writeFileSync(path.join(dir, 'yf.npy'), encodeNpy(labels.map((v) => v + 0.5), [N]));
  return { dir, model, xs, labels, N };
}

describe('gradmax onnx stats', () => {
  it('writes M per site and a manifest that "gradmax onnx widen --stats" accepts', async () => {
    const { dir, model, xs, labels, N } = setup();
    const before = fs.readFileSync(model);
    const io = memoryIO();
    const code = await runStatsCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc1->fc2', '--batch-size', '8', '-o', path.join(dir, 'stats')], io);
    expect(code).toBe(0);
    expect(io.out).toMatch(/fc1 /);
    expect(io.err).toMatch(/statistics 100%/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'stats', 'stats.json'), 'utf8')) as { sites: Record<string, { moment: string; count: number }> };
    expect(manifest.sites['fc1->fc2']!.count).toBe(N);
    const m = readNpy(path.join(dir, 'stats', manifest.sites['fc1->fc2']!.moment));
    expect(m.shape).toEqual([3, 4]);
    // Same numbers as the library on the whole data set in one batch.
    const lib = await computeStatistics(model, { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data: [{ inputs: { type: 'float32', data: xs, dims: [N, 4] }, labels }] });
    const expected = lib.statistics.get('fc1->fc2')!.snapshot().moment.data;
    const got = npyToFloat64(m);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i]!, 6);
    expect(fs.readFileSync(model).equals(before)).toBe(true);

    const wio = memoryIO();
    const wcode = await runOnnx(['widen', model, '--site', 'fc1->fc2', '--add', '2', '--stats', path.join(dir, 'stats', 'stats.json'), '-o', path.join(dir, 'wide.onnx'), '--dim', 'N=4'], wio);
    expect(wcode, wio.err).toBe(0);
    expect(findSites(loadModel(path.join(dir, 'wide.onnx')))[0]!.units).toBe(7);
  });

  it('writes one growth matrix per share for a group with grouped convs, and "widen --stats" grows it with gradmax', async () => {
    const dir = tmpDir('gradmax-probe-cli-grouped-');
    const b = new GraphBuilder(new Rng(3));
    const x = b.input('x', ['N', 4, 5, 5]);
    const h1 = b.op('Relu', [b.op('Conv', [x, b.weight([4, 4, 1, 1]), b.weight([4])], {}, 1, 'c1')]);
    const h2 = b.op('Relu', [b.op('Conv', [h1, b.weight([4, 2, 3, 3]), b.weight([4])], { group: 2, pads: [1, 1, 1, 1] }, 1, 'c2')]);
    b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [h2])]), b.weight([4, 3])], {}, 1, 'head'), ['N', 3]);
    const model = path.join(dir, 'grouped.onnx');
    fs.writeFileSync(model, serializeModel(b.model()));
    const rng = new Rng(4);
    const N = 6;
    fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(Float32Array.from({ length: N * 100 }, () => rng.normal()), [N, 4, 5, 5]));
    fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(Float64Array.from({ length: N }, () => rng.int(3)), [N]));
    const io = memoryIO();
    expect(await runStatsCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'c1', '-o', path.join(dir, 'stats')], io), io.err).toBe(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'stats', 'stats.json'), 'utf8')) as { sites: Record<string, { moment: string; shares?: string[] }> };
    expect(manifest.sites.c1!.shares).toEqual(['c1.M.share1.npy', 'c1.M.share2.npy']);
    const wio = memoryIO();
    const wcode = await runOnnx(['widen', model, '--site', 'c1', '--add', '2', '--strategy', 'gradmax', '--stats', path.join(dir, 'stats', 'stats.json'), '-o', path.join(dir, 'wide.onnx'), '--dim', 'N=4'], wio);
    expect(wcode, wio.err).toBe(0);
  });

  it('refuses non-integer labels for cross-entropy with a typed error', async () => {
    const { dir, model } = setup();
    await expect(runStatsCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'yf.npy'), '--loss', 'ce', '--site', 'fc1', '-o', path.join(dir, 's')], memoryIO())).rejects.toThrow(/integer class labels/);
    await expect(runStatsCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'hinge', '--site', 'fc1', '-o', path.join(dir, 's')], memoryIO())).rejects.toThrow(/unknown --loss/);
  });
});

describe('gradmax onnx widen --data', () => {
  it('probes, grows with gradmax, writes and verifies', async () => {
    const { dir, model } = setup(2);
    const io = memoryIO();
    const out = path.join(dir, 'grown.onnx');
    const code = await runWidenFromDataCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc1->fc2', '--add', '3', '--strategy', 'gradmax', '-o', out, '--json'], io);
    expect(code, io.err).toBe(0);
    const json = JSON.parse(io.out) as { sites: { unitsAfter: number; singularValues: number[] | null }[]; verification: { ok: boolean } };
    expect(json.sites[0]!.unitsAfter).toBe(8);
    expect(json.sites[0]!.singularValues?.length).toBeGreaterThan(0);
    expect(json.verification.ok).toBe(true);
    await expect(runWidenFromDataCommand([model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc1', '--add', '1', '-o', model], memoryIO())).rejects.toThrow(/refusing to overwrite/);
  });

  it('grows from a sketched growth matrix: same singular values as exact when rank(M) ≤ r, and verifies', async () => {
    const { dir, model } = setup(2);
    const run = async (mode: string, out: string) => {
      const io = memoryIO();
      const args = [model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc1->fc2', '--add', '2', '--strategy', 'gradmax', '--statistics', mode, '--sketch-rank', '4', '-o', path.join(dir, out), '--json'];
      expect(await runWidenFromDataCommand(args, io), io.err).toBe(0);
      return JSON.parse(io.out) as { sites: { singularValues: number[] }[]; verification: { ok: boolean } };
    };
    const exact = await run('exact', 'e.onnx');
    const sketch = await run('sketch', 's.onnx');
    expect(sketch.verification.ok).toBe(true);
    sketch.sites[0]!.singularValues.forEach((v, i) => expect(v).toBeCloseTo(exact.sites[0]!.singularValues[i]!, 5));
  });
});

describe('gradmax onnx widen --data through the built binary', () => {
  const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/bin.js');
  it('registers every strategy: the documented one-step command grows and verifies', () => {
    const { dir } = setup(4);
    const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    const help = run(['onnx', 'widen', '--data', 'x.npy', '--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/registered: .*gradmax, gradmaxOpt.*random/);
    for (const strategy of ['gradmax', 'gradmaxOpt', 'random']) {
      const r = run(['onnx', 'widen', 'mlp.onnx', '--data', 'x.npy', '--labels', 'y.npy', '--loss', 'ce', '--site', 'fc1->fc2', '--add', '2', '--strategy', strategy, '-o', `wide-${strategy}.onnx`, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as { strategy: string; sites: { unitsAfter: number }[]; verification: { ok: boolean } };
      expect(json.strategy).toBe(strategy);
      expect(json.sites[0]!.unitsAfter).toBe(7);
      expect(json.verification.ok).toBe(true);
    }
  }, 60_000);
});

describe('error reports', () => {
  it('print a multi-line onnxruntime error whole, continuation lines indented', async () => {
    const { reportError } = await import('../src/shared/errors.js');
    const { RuntimeError } = await import('@gradmax/onnx');
    const io = memoryIO();
    expect(reportError(io, new RuntimeError('onnxruntime failed to run m.onnx: Non-zero status code\nNode (fc1) Op (Gemm)\nwhy: shapes [2,3] [4,2]'), 'gradmax onnx verify')).toBe(2);
    expect(io.err).toBe('gradmax onnx verify: onnxruntime failed to run m.onnx: Non-zero status code\n  Node (fc1) Op (Gemm)\n  why: shapes [2,3] [4,2]\n');
  });
});

describe('gradmax onnx advise', () => {
  it('ranks the sites (table and --json) and lists the ones it cannot advise on', async () => {
    const { runAdviseCommand } = await import('../src/onnx/probe-commands.js');
    const { dir, model } = setup(5);
    const io = memoryIO();
    const args = [model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--k', '2'];
    expect(await runAdviseCommand(args, io)).toBe(0);
    expect(io.out).toMatch(/rank\s+group\s+kind\s+units/);
    expect(io.out).toMatch(/1\s+fc1\s+dense\s+5/);
    expect(io.out).toMatch(/1 other group\(s\) are not growable/);
    const jio = memoryIO();
    expect(await runAdviseCommand([...args, '--json'], jio)).toBe(0);
    const json = JSON.parse(jio.out) as { examples: number; advice: { site: string; k: number; gain: number; singularValues: number[] }[] };
    expect(json.examples).toBe(37);
    expect(json.advice[0]).toMatchObject({ site: 'fc1', k: 2 });
    expect(json.advice[0]!.gain).toBeCloseTo(json.advice[0]!.singularValues.slice(0, 2).reduce((a, v) => a + v * v, 0), 10);
  });

  it('--statistics sketch: the groups are sketched; a sketch of rank ≥ rank(M) gives the exact singular values', async () => {
    const { runAdviseCommand } = await import('../src/onnx/probe-commands.js');
    const { dir, model } = setup(5);
    const args = [model, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--k', '2', '--json'];
    const exact = memoryIO();
    expect(await runAdviseCommand([...args, '--statistics', 'exact'], exact)).toBe(0);
    const sketch = memoryIO();
    // M is 3×4: rank ≤ 3 < r = 3 + 8 (advise's default sketch rank is max(16, K + 8) anyway).
    expect(await runAdviseCommand([...args, '--statistics', 'sketch', '--sketch-seed', '4'], sketch)).toBe(0);
    type Advice = { advice: { statistic: string; singularValues: number[]; gain: number }[] };
    const e = (JSON.parse(exact.out) as Advice).advice[0]!;
    const s = (JSON.parse(sketch.out) as Advice).advice[0]!;
    expect([e.statistic, s.statistic]).toEqual(['exact', 'sketch']);
    for (let i = 0; i < e.singularValues.length; i++) expect(s.singularValues[i]).toBeCloseTo(e.singularValues[i]!, 5);
    expect(s.gain).toBeCloseTo(e.gain, 5);
    const table = memoryIO();
    expect(await runAdviseCommand([...args.slice(0, -1), '--statistics', 'sketch'], table)).toBe(0);
    expect(table.out).toMatch(/1\s+fc1\s+dense\s+5\s+\[3, 4\]\s+sketch/);
    await expect(runAdviseCommand([...args, '--statistics', 'fast'], memoryIO())).rejects.toThrow(/unknown --statistics "fast"/);
  });
});
