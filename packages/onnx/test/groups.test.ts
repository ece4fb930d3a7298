/**
 * Channel groups on the architecture patterns of real exported models: each grown with every function-preserving
 * kind of new units and verified in onnxruntime; every refusal reason checked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { findGroups, loadModel, serializeModel } from '@gradmax/onnx';
import { GraphBuilder, flushOnnxChecks, tmpDir } from './helpers.js';
import { bn, conv, growGroupAndCheck, growable } from './group-helpers.js';
import { makeUnits, type UnitsKind } from './grow-helpers.js';
import type { GrowthSite, NewUnits } from '@gradmax/core';

const KINDS: UnitsKind[] = ['incoming-zero', 'outgoing-zero', 'split'];
const dir = tmpDir('gradmax-groups-');

afterAll(() => {
  expect(flushOnnxChecks()).toBe('');
});

function save(b: GraphBuilder, name: string, opset = 13): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(b.model(opset)));
  return file;
}

/** ResNet: stem, two basic blocks, a strided block with a downsample conv, head. */
function resnet(): GraphBuilder {
  const b = new GraphBuilder(new Rng(31));
  const x = b.input('x', ['N', 3, 12, 12]);
  let h = b.op('Relu', [bn(b, conv(b, x, 4, 3, [3, 3], { pads: [1, 1, 1, 1] }, 'stem'), 4)]);
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  for (const i of [1, 2]) {
    const a = b.op('Relu', [bn(b, conv(b, h, 4, 4, [3, 3], { pads: [1, 1, 1, 1] }, `b${i}.conv1`), 4)]);
    const c = bn(b, conv(b, a, 4, 4, [3, 3], { pads: [1, 1, 1, 1] }, `b${i}.conv2`), 4);
    h = b.op('Relu', [b.op('Add', [c, h])]);
  }
  const a = b.op('Relu', [conv(b, h, 6, 4, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'b3.conv1')]);
  const c = conv(b, a, 6, 6, [3, 3], { pads: [1, 1, 1, 1] }, 'b3.conv2');
  const ds = conv(b, h, 6, 4, [1, 1], { strides: [2, 2] }, 'b3.down');
  h = b.op('Relu', [b.op('Add', [ds, c])]);
  const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [h])]);
  const y = b.op('Gemm', [pooled, b.weight([5, 6]), b.weight([5])], { transB: 1 }, 1, 'fc');
  b.output(y, ['N', 5]);
  return b;
}

describe('channel groups: ResNet stages', () => {
  const file = save(resnet(), 'resnet.onnx');
  it('a stage grows as one group: stem and every residual conv produce, every reader consumes', async () => {
    const groups = findGroups(loadFile(file));
    const stage = growable(groups, 'stem');
    expect(stage.members.producers).toEqual(['stem', 'b1.conv2', 'b2.conv2']);
    expect(stage.members.consumers).toEqual(['b1.conv1', 'b2.conv1', 'b3.conv1', 'b3.down']);
    const stage2 = growable(groups, 'b3.conv2');
    expect(stage2.name).toBe('b3.conv2');
    expect(stage2.members.producers.sort()).toEqual(['b3.conv2', 'b3.down']);
    expect(stage2.members.consumers).toEqual(['fc']);
    growable(groups, 'b1.conv1');
    expect(groups.find((g) => g.name === 'fc')?.reason).toMatch(/graph output/);
    // the check can fail: a unit with both weights non-zero changes the function
    const both = (site: GrowthSite): NewUnits => {
      const u = makeUnits(site, 1, 'incoming-zero');
      u.incoming.data[0] = 0.05;
      return u;
    };
    await expect(growGroupAndCheck(file, 'stem', 1, both)).rejects.toThrow(/abs diff/);
    for (const kind of KINDS) {
      await growGroupAndCheck(file, 'stem', 3, kind);
      await growGroupAndCheck(file, 'b3.down', 2, kind);
      await growGroupAndCheck(file, 'b2.conv1', 2, kind);
    }
  });
});

function loadFile(file: string) {
  return loadModel(file);
}

describe('channel groups: inverted residual with squeeze-excitation, dynamic spatial size', () => {
  function block(): GraphBuilder {
    const b = new GraphBuilder(new Rng(32));
    const x = b.input('x', ['N', 4, 'H', 'W']);
    const stem = b.op('Relu', [conv(b, x, 6, 4, [1, 1], {}, 'stem')]);
    const e = bn(b, conv(b, stem, 12, 6, [1, 1], {}, 'expand'), 12);
    // HardSwish decomposed: x * Clip(x + 3, 0, 6) / 6
    const hs = b.op('Div', [b.op('Mul', [e, b.op('Clip', [b.op('Add', [e, b.tensor([], [3])]), b.tensor([], [0]), b.tensor([], [6])])]), b.tensor([], [6])]);
    const dw = b.op('Relu', [bn(b, b.op('Conv', [hs, b.weight([12, 1, 3, 3]), b.weight([12], 0.1)], { group: 12, pads: [1, 1, 1, 1] }, 1, 'dw'), 12)]);
    const s = b.op('Relu', [conv(b, b.op('GlobalAveragePool', [dw]), 3, 12, [1, 1], {}, 'se.reduce')]);
    const gate = b.op('HardSigmoid', [conv(b, s, 12, 3, [1, 1], {}, 'se.expand')], { alpha: 1 / 6, beta: 0.5 });
    const scaled = b.op('Mul', [dw, gate]);
    const proj = bn(b, conv(b, scaled, 6, 12, [1, 1], {}, 'project'), 6);
    const out = b.op('Add', [proj, stem]);
    const y = conv(b, out, 2, 6, [3, 3], { pads: [1, 1, 1, 1] }, 'head');
    b.output(y, ['N', 2, 'H', 'W']);
    return b;
  }
  const file = save(block(), 'mbconv.onnx');
  it('expand group extends BN, decomposed HardSwish, depthwise and the SE gate; spatial size unknown', async () => {
    const groups = findGroups(loadFile(file));
    const expand = growable(groups, 'expand');
    expect(expand.members.consumers).toEqual(['se.reduce', 'project']);
    expect(expand.members.passthrough).toContain('se.expand');
    expect(expand.activation?.f0).toBe(0);
    expect(expand.activation?.df0).toBeCloseTo(0.5, 12); // HardSwish'(0) = 1/2; dw centre; gate 1/2 → path ∂ = 0.25 or 0.5
    const residual = growable(groups, 'stem');
    expect(residual.members.producers).toEqual(['stem', 'project']);
    growable(groups, 'se.reduce');
    for (const kind of KINDS) {
      await growGroupAndCheck(file, 'expand', 2, kind, { H: 5, W: 7 });
      await growGroupAndCheck(file, 'stem', 2, kind, { H: 5, W: 7 });
      await growGroupAndCheck(file, 'se.reduce', 1, kind, { H: 5, W: 7 });
    }
  });
});
