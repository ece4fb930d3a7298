/**
 * Channel groups on the architecture patterns of real exported models: each grown with every function-preserving
 * kind of new units and verified in onnxruntime; every refusal reason checked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { findGroups, loadModel, serializeModel } from '@gradmax/onnx';
import { F16, GraphBuilder, flushOnnxChecks, tmpDir } from './helpers.js';
import { bn, conv, growGroupAndCheck, growable } from './group-helpers.js';
import { denseBlock, mbconvSE, resnetStage, resnextBlock, transformerBlock } from './group-patterns.js';
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

describe('channel groups: ResNet stages', () => {
  const file = save(resnetStage(), 'resnet.onnx');
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
    await expect(growGroupAndCheck(file, 'stem', 1, both)).rejects.toThrow(/abs\/rel diff/);
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
  const file = save(mbconvSE(), 'mbconv.onnx');
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

describe('channel groups: Concat (DenseNet block, Inception block)', () => {
  it('a DenseNet block: each layer\'s channels are inserted at their offset in every later Concat', async () => {
    const file = save(denseBlock(), 'densenet.onnx');
    const groups = findGroups(loadFile(file));
    expect(growable(groups, 'conv0').members.consumers).toEqual(['l1.conv1', 'l2.conv1', 'transition']);
    expect(growable(groups, 'l1.conv2').members.consumers).toEqual(['l2.conv1', 'transition']);
    growable(groups, 'l2.conv2');
    growable(groups, 'l1.conv1');
    for (const kind of KINDS) {
      for (const name of ['conv0', 'l1.conv2', 'l2.conv2']) await growGroupAndCheck(file, name, 2, kind);
    }
  });

  it('an Inception block: branches concatenated, a pooled branch, grown branch by branch', async () => {
    const b = new GraphBuilder(new Rng(34));
    const x = b.input('x', ['N', 4, 7, 7]);
    const br1 = b.op('Relu', [conv(b, x, 3, 4, [1, 1], {}, 'b1')]);
    const br2 = b.op('Relu', [conv(b, b.op('Relu', [conv(b, x, 2, 4, [1, 1], {}, 'b2.reduce')]), 5, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'b2')]);
    const pooled = b.op('MaxPool', [x], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
    const br3 = b.op('Relu', [conv(b, pooled, 2, 4, [1, 1], {}, 'b3')]);
    const cat = b.op('Concat', [br1, br2, br3], { axis: 1 });
    const y = conv(b, cat, 3, 10, [3, 3], { strides: [2, 2] }, 'next');
    b.output(y, ['N', 3, 3, 3]);
    const file = save(b, 'inception.onnx');
    const groups = findGroups(loadFile(file));
    for (const name of ['b1', 'b2', 'b3', 'b2.reduce']) growable(groups, name);
    for (const kind of KINDS) for (const name of ['b1', 'b2', 'b3']) await growGroupAndCheck(file, name, 2, kind);
  });

  it('a Concat that takes the same channels twice is refused with the node named', () => {
    const b = new GraphBuilder(new Rng(35));
    const x = b.input('x', ['N', 2, 5, 5]);
    const h = conv(b, x, 3, 2, [1, 1], {}, 'c1');
    const cat = b.op('Concat', [h, h], { axis: 1 }, 1, 'twice');
    b.output(conv(b, cat, 2, 6, [1, 1], {}, 'c2'), ['N', 2, 5, 5]);
    const g = findGroups(b.model()).find((x) => x.name === 'c1')!;
    expect(g.growable).toBe(false);
    expect(g.reason).toMatch(/Concat "twice" concatenates the group's channels more than once/);
  });
});

describe('channel groups: grouped convs, channel split, 1-D / 3-D / dilated convs, ConvTranspose', () => {
  it('grouped convs (ResNeXt-style): new units in multiples of the group count, one share per conv group', async () => {
    const file = save(resnextBlock(), 'resnext.onnx');
    const groups = findGroups(loadFile(file));
    expect(growable(groups, 'reduce').multiple).toBe(4);
    expect(growable(groups, 'grouped').multiple).toBe(4);
    for (const kind of KINDS) {
      await growGroupAndCheck(file, 'reduce', 4, kind);
      await growGroupAndCheck(file, 'grouped', 8, kind);
    }
    const model = loadFile(file);
    const { groupGrowthSite, widenGroup } = await import('@gradmax/onnx');
    const grp = groups.find((g) => g.name === 'reduce')!;
    const site = groupGrowthSite(model, findGroups(model).find((g) => g.name === 'reduce')!);
    expect(() => widenGroup(model, 'reduce', makeUnits(site, 3, 'incoming-zero'))).toThrow(/multiple of 4/);
    expect(grp.fanOut).toBe(8 / 4 * 9);
  });

  it('a channel split (Split on the channel axis) and a channel shuffle are refused with the node named', () => {
    const b = new GraphBuilder(new Rng(37));
    const x = b.input('x', ['N', 2, 5, 5]);
    const h = conv(b, x, 4, 2, [1, 1], {}, 'c1');
    const [s1] = [b.op('Split', [h, b.int64([2, 2])], { axis: 1 }, 2, 'split')];
    b.output(conv(b, s1, 2, 2, [1, 1], {}, 'c2'), ['N', 2, 5, 5]);
    const shuffled = b.op('Reshape', [conv(b, x, 4, 2, [1, 1], {}, 'c3'), b.int64([0, 2, 2, 5, 5])], {}, 1, 'shuffle');
    b.output(shuffled, ['N', 2, 2, 5, 5]);
    const groups = findGroups(b.model());
    expect(groups.find((g) => g.name === 'c1')!.reason).toMatch(/Split "split" splits the channel axis/);
    expect(groups.find((g) => g.name === 'c3')!.reason).toMatch(/Reshape "shuffle" .*splits the channel axis/);
  });

  it('1-D conv stack with a dilated conv, and a 3-D conv stack', async () => {
    const b = new GraphBuilder(new Rng(38));
    const x = b.input('x', ['N', 2, 20]);
    const h1 = b.op('Relu', [bn(b, conv(b, x, 5, 2, [3], { pads: [1, 1] }, 'c1d.1'), 5)]);
    const h2 = b.op('Relu', [conv(b, h1, 4, 5, [3], { pads: [2, 2], dilations: [2] }, 'c1d.dilated')]);
    const y = b.op('Gemm', [b.op('Flatten', [b.op('MaxPool', [conv(b, h2, 3, 4, [5], { strides: [2] }, 'c1d.3')], { kernel_shape: [2], strides: [2] })]), b.weight([12, 2])], {}, 1, 'fc');
    b.output(y, ['N', 2]);
    const file = save(b, 'conv1d.onnx');
    const groups = findGroups(loadFile(file));
    for (const n of ['c1d.1', 'c1d.dilated', 'c1d.3']) growable(groups, n);
    for (const kind of KINDS) for (const n of ['c1d.1', 'c1d.dilated', 'c1d.3']) await growGroupAndCheck(file, n, 2, kind);

    const b3 = new GraphBuilder(new Rng(39));
    const v = b3.input('v', ['N', 1, 4, 5, 6]);
    const a = b3.op('Relu', [bn(b3, conv(b3, v, 3, 1, [3, 3, 3], { pads: [1, 1, 1, 1, 1, 1] }, 'c3d.1'), 3)]);
    const c = b3.op('Relu', [conv(b3, a, 4, 3, [1, 3, 3], { pads: [0, 1, 1, 0, 1, 1], strides: [1, 2, 2] }, 'c3d.2')]);
    const z = b3.op('Gemm', [b3.op('Flatten', [b3.op('GlobalMaxPool', [c])]), b3.weight([4, 2])], {}, 1, 'fc3');
    b3.output(z, ['N', 2]);
    const file3 = save(b3, 'conv3d.onnx');
    const g3 = findGroups(loadFile(file3));
    for (const n of ['c3d.1', 'c3d.2']) growable(g3, n);
    for (const kind of KINDS) for (const n of ['c3d.1', 'c3d.2']) await growGroupAndCheck(file3, n, 2, kind);
  });

  it('ConvTranspose as producer and consumer (a decoder), with Resize and a Concat skip (U-Net style)', async () => {
    const b = new GraphBuilder(new Rng(40));
    const x = b.input('x', ['N', 2, 'H', 'W']);
    const e = b.op('Relu', [conv(b, x, 4, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'enc')]);
    const d = b.op('Relu', [conv(b, e, 6, 4, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'down')]);
    const up = b.op('Relu', [b.op('ConvTranspose', [d, b.weight([6, 3, 2, 2], 0.4), b.weight([3], 0.1)], { strides: [2, 2] }, 1, 'up')]);
    const skip = b.op('Concat', [e, up], { axis: 1 });
    const r = b.op('Resize', [skip, '', b.tensor([4], [1, 1, 2, 2])], { mode: 'nearest' });
    const y = b.op('ConvTranspose', [r, b.weight([7, 1, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'head');
    b.output(y, ['N', 1, 'H2', 'W2']);
    const file = save(b, 'unet.onnx');
    const groups = findGroups(loadFile(file));
    expect(growable(groups, 'enc').members.consumers).toEqual(['down', 'head']);
    growable(groups, 'down');
    expect(growable(groups, 'up').members.consumers).toEqual(['head']);
    for (const kind of KINDS) for (const n of ['enc', 'down', 'up']) await growGroupAndCheck(file, n, 2, kind, { H: 6, W: 4 });
  });
});

describe('channel groups: transformer block', () => {
  it('refuses the residual stream (decomposed LayerNorm) and grows the FFN inner width through Erf and tanh GELU', async () => {
    const file = save(transformerBlock(), 'transformer.onnx', 17);
    const groups = findGroups(loadFile(file));
    const stream = groups.find((g) => g.name === 'embed')!;
    expect(stream.growable).toBe(false);
    expect(stream.reason).toMatch(/ReduceMean ".*" reduces over the channel axis: a normalisation over channels/);
    const ffn = growable(groups, 'ffn.up');
    expect(ffn.members.consumers).toEqual(['ffn.down']);
    expect(ffn.activation?.f0).toBe(0);
    expect(ffn.activation?.df0).toBeCloseTo(0.25, 6); // GELU'(0)² = 1/4 (two GELUs)
    for (const kind of KINDS) await growGroupAndCheck(file, 'ffn.up', 3, kind, { S: 4 });
  });
});

describe('channel groups: FP16 weights', () => {
  it('a residual MLP group grown and verified (relative diff <= 1e-2)', async () => {
    const b = new GraphBuilder(new Rng(42), F16);
    const x = b.input('x', ['N', 6]);
    const h0 = b.op('Relu', [b.op('Gemm', [x, b.weight([6, 5]), b.weight([5], 0.1)], {}, 1, 'fc0')]);
    const h1 = b.op('Relu', [b.op('Gemm', [h0, b.weight([5, 7]), b.weight([7], 0.1)], {}, 1, 'fc1')]);
    const r = b.op('Relu', [b.op('Add', [b.op('Gemm', [h1, b.weight([7, 5])], {}, 1, 'fc2'), h0])]);
    b.output(b.op('Gemm', [r, b.weight([5, 3])], {}, 1, 'head'), ['N', 3]);
    const file = save(b, 'fp16-mlp.onnx');
    expect(growable(findGroups(loadFile(file)), 'fc0').members.producers).toEqual(['fc0', 'fc2']);
    for (const kind of KINDS) await growGroupAndCheck(file, 'fc0', 2, kind, {}, true);
  });
});
