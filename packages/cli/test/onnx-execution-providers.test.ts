/**
 * `--execution-provider` on every provider of the shared table (cpu, webgpu): verify, stats, advise and widen --data
 * give the cpu provider's results, and on webgpu say which nodes fell back to the CPU provider.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { encodeNpy, readNpy, npyToFloat64, serializeModel } from '@gradmax/onnx';
import { computeStatistics } from '@gradmax/onnx/probe';
import { GraphBuilder, tmpDir } from '../../onnx/test/helpers.js';
import { describeEachProvider } from '../../onnx/src/probe/__tests__/providers.js';
import { memoryIO } from '../src/shared/io.js';
import { runOnnx } from '../src/onnx/index.js';
import { runAdviseCommand, runStatsCommand, runWidenFromDataCommand } from '../src/onnx/probe-commands.js';

/** x[N, 2, 6, 6] → conv1 (3×3, 3, same) → Relu → conv2 (3×3, 4, stride 2) → Relu → Flatten → fc (3). */
function setup() {
  const dir = tmpDir('gradmax-ep-cli-');
  const b = new GraphBuilder(new Rng(3));
  const x = b.input('x', ['N', 2, 6, 6]);
  const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
  const c2 = b.op('Conv', [b.op('Relu', [c1]), b.weight([4, 3, 3, 3])], { strides: [2, 2], pads: [0, 0, 1, 1] }, 1, 'conv2');
  const flat = b.op('Flatten', [b.op('Relu', [c2])]);
  b.output(b.op('Gemm', [flat, b.weight([36, 3]), b.weight([3])], {}, 1, 'fc'), ['N', 3]);
  const model = path.join(dir, 'cnn.onnx');
  fs.writeFileSync(model, serializeModel(b.model()));
  const rng = new Rng(4);
  const N = 10;
  const xs = Float32Array.from({ length: N * 72 }, () => rng.normal());
  const labels = Float64Array.from({ length: N }, () => rng.int(3));
  fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(xs, [N, 2, 6, 6]));
  fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(labels, [N]));
  return { dir, model, xs, labels, N };
}

const data = (dir: string) => ['--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce'];

describeEachProvider('gradmax onnx --execution-provider', (ep) => {
  it('stats: M of conv1->conv2 equals the cpu library result', async () => {
    const { dir, model, xs, labels, N } = setup();
    const io = memoryIO();
    const code = await runStatsCommand([model, ...data(dir), '--site', 'conv1->conv2', '-o', path.join(dir, 'stats'), '--execution-provider', ep], io);
    expect(code, io.err).toBe(0);
    if (ep === 'webgpu') expect(io.err).toMatch(/onnxruntime webgpu: \d+ on WebGpuExecutionProvider/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'stats', 'stats.json'), 'utf8')) as { sites: Record<string, { moment: string }> };
    const got = npyToFloat64(readNpy(path.join(dir, 'stats', manifest.sites['conv1->conv2']!.moment)));
    const lib = await computeStatistics(model, { sites: ['conv1->conv2'], loss: { kind: 'ce-logits' }, data: [{ inputs: { type: 'float32', data: xs, dims: [N, 2, 6, 6] }, labels }] });
    const expected = lib.statistics.get('conv1->conv2')!.snapshot().moment.data;
    let num = 0;
    let den = 0;
    for (let i = 0; i < got.length; i++) {
      num = Math.max(num, Math.abs(got[i]! - expected[i]!));
      den = Math.max(den, Math.abs(expected[i]!));
    }
    expect(num / den).toBeLessThan(1e-5);
  });

  it('advise ranks the sites; widen --data grows with gradmax and verifies; verify compares', async () => {
    const { dir, model } = setup();
    const aio = memoryIO();
    expect(await runAdviseCommand([model, ...data(dir), '--k', '2', '--json', '--execution-provider', ep], aio), aio.err).toBe(0);
    const advice = JSON.parse(aio.out) as { advice: { site: string; gain: number }[] };
    expect(advice.advice.map((a) => a.site).sort()).toEqual(['conv1', 'conv2']);
    expect(advice.advice.every((a) => a.gain > 0)).toBe(true);

    const out = path.join(dir, 'grown.onnx');
    const wio = memoryIO();
    const code = await runWidenFromDataCommand([model, ...data(dir), '--site', 'conv1->conv2', '--add', '2', '--strategy', 'gradmax', '-o', out, '--json', '--execution-provider', ep], wio);
    expect(code, wio.err).toBe(0);
    const json = JSON.parse(wio.out) as { sites: { unitsAfter: number }[]; verification: { ok: boolean; executionProvider: string } };
    expect(json.sites[0]!.unitsAfter).toBe(5);
    expect(json.verification.ok).toBe(true);
    expect(json.verification.executionProvider).toBe(ep);

    const vio = memoryIO();
    expect(await runOnnx(['verify', model, out, '--execution-provider', ep], vio), vio.err).toBe(0);
    if (ep === 'webgpu') expect(vio.out).toMatch(/widened model's nodes: webgpu: /);
  });
});
