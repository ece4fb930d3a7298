/**
 * Group statistics through MaxPool. Max is not differentiable at a tie, and with zero incoming weights every window of
 * a new channel ties, so finite differences on the widened model do not check the statistics. The convention they
 * implement is autodiff's: a tie routes the gradient to the FIRST valid element of the window. So:
 * - onnxruntime's MaxPool Indices on a constant input name exactly that element (the premise, checked per pool form
 *   in `src/groups/spatial-maps.test.ts`);
 * - the reference loss is the widened model in which every MaxPool passes the old channels through the real pool and
 *   the NEW channel through an explicit first-valid-element subsampling (a Gather per axis, indices from a naive loop
 *   over each window). That model is smooth in the new units' incoming weights, so its central differences give the
 *   gradient the statistics must predict: ∂L/∂A = f'(0) · Ωᵀ M_group.
 */
import { describe, expect, it } from 'vitest';
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, type NodeProto } from 'onnx-buf';
import { Matrix, Rng, type NewUnits } from '@gradmax/core';
import { F32, GraphBuilder, I64 } from './helpers.js';
import { OnnxModel, findGroup, groupGrowthSite, makeNode, makeTensor, makeValueInfo, runModel, widenGroup } from '@gradmax/onnx';
import { groupPlan } from '../src/groups/index.js'; // internal: the maps each consumer records
import { computeGroupStatistics } from '@gradmax/onnx/probe';
import { meanCrossEntropy } from './group-helpers.js';

const ints = (node: NodeProto, name: string) => node.attribute.find((a) => a.name === name)?.ints.map(Number);
const int = (node: NodeProto, name: string, fallback: number) => Number(node.attribute.find((a) => a.name === name)?.i ?? fallback);

/** Naive tie routing of one pool axis: scan each window in order, keep the first element inside the input. */
function firstValid(inSize: number, outSize: number, k: number, s: number, pad: number, dil: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < outSize; t++) {
    let found = -1;
    for (let j = 0; j < k && found < 0; j++) {
      const at = t * s - pad + j * dil;
      if (at >= 0 && at < inSize) found = at;
    }
    if (found < 0) throw new Error(`window ${t} holds no input`);
    out.push(found);
  }
  return out;
}

/**
 * The widened model with every MaxPool split: old channels [0, C) through the pool, the new channel(s) [C, C + k)
 * through the first-valid-element Gathers. Spatial sizes come from a run of the widened model.
 */
async function firstElementReference(widened: OnnxModel, channels: Map<string, number>, sizes: Map<string, { in: number[]; out: number[] }>): Promise<OnnxModel> {
  const proto = clone(ModelProtoSchema, widened.proto);
  const graph = proto.graph!;
  const nodes: NodeProto[] = [];
  let k = 0;
  for (const node of graph.node) {
    if (node.opType !== 'MaxPool' && node.opType !== 'GlobalMaxPool') {
      nodes.push(node);
      continue;
    }
    const c = channels.get(node.name)!;
    const { in: inSize, out: outSize } = sizes.get(node.name)!;
    const x = node.input[0]!;
    const y = node.output[0]!;
    const tag = `ref${k++}`;
    const konst = (name: string, dims: number[], values: number[]) => graph.initializer.push(makeTensor(name, I64, dims, values));
    konst(`${tag}_s0`, [1], [0]);
    konst(`${tag}_s1`, [1], [c]);
    konst(`${tag}_s2`, [1], [1 << 30]);
    konst(`${tag}_ax`, [1], [1]);
    nodes.push(makeNode('Slice', [x, `${tag}_s0`, `${tag}_s1`, `${tag}_ax`], [`${tag}_old`], {}, `${tag}_slice_old`));
    nodes.push(makeNode('Slice', [x, `${tag}_s1`, `${tag}_s2`, `${tag}_ax`], [`${tag}_new`], {}, `${tag}_slice_new`));
    const attrs = Object.fromEntries(node.attribute.map((a) => [a.name, a.ints.length ? a.ints.map(Number) : Number(a.i)]));
    nodes.push(makeNode(node.opType, [`${tag}_old`], [`${tag}_pooled`], attrs, `${tag}_pool`));
    let cur = `${tag}_new`;
    for (let i = 0; i < inSize.length; i++) {
      const global = node.opType === 'GlobalMaxPool';
      const kernel = global ? inSize[i]! : ints(node, 'kernel_shape')![i]!;
      const stride = global ? 1 : (ints(node, 'strides')?.[i] ?? 1);
      const pad = global ? 0 : (ints(node, 'pads')?.[i] ?? 0);
      const dil = global ? 1 : (ints(node, 'dilations')?.[i] ?? 1);
      konst(`${tag}_idx${i}`, [outSize[i]!], firstValid(inSize[i]!, outSize[i]!, kernel, stride, pad, dil));
      nodes.push(makeNode('Gather', [cur, `${tag}_idx${i}`], [`${tag}_g${i}`], { axis: 2 + i }, `${tag}_gather${i}`));
      cur = `${tag}_g${i}`;
    }
    nodes.push(makeNode('Concat', [`${tag}_pooled`, cur], [y], { axis: 1 }, `${tag}_concat`));
  }
  graph.node = nodes;
  return new OnnxModel(proto);
}

interface Case {
  build: () => GraphBuilder;
  group: string;
  input: number[];
  classes: number;
}

/** Pools of a model: channels, input and output spatial sizes (from onnxruntime's shapes of the original model). */
async function poolSizes(model: OnnxModel, feeds: Parameters<typeof runModel>[1]) {
  const proto = clone(ModelProtoSchema, model.proto);
  const pools = proto.graph!.node.filter((n) => n.opType === 'MaxPool' || n.opType === 'GlobalMaxPool');
  proto.graph!.output.push(...pools.flatMap((p) => [makeValueInfo(p.input[0]!, F32), makeValueInfo(p.output[0]!, F32)]));
  const out = await runModel(new OnnxModel(proto), feeds);
  const channels = new Map<string, number>();
  const sizes = new Map<string, { in: number[]; out: number[] }>();
  for (const p of pools) {
    const i = out.get(p.input[0]!)!.dims;
    channels.set(p.name, i[1]!);
    sizes.set(p.name, { in: i.slice(2), out: out.get(p.output[0]!)!.dims.slice(2) });
  }
  return { channels, sizes };
}

async function gradientCheck({ build, group: groupName, input: inputShape, classes }: Case, eps = 4e-3) {
  const rng = new Rng(7);
  const n = inputShape[0]!;
  const data = Float32Array.from({ length: inputShape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const labels = Array.from({ length: n }, () => rng.int(classes));
  const feeds = { x: { type: 'float32' as const, data, dims: inputShape } };
  const model = build().model();
  const { statistics, refused } = await computeGroupStatistics(model, { groups: [groupName], loss: { kind: 'ce-logits' }, data: [{ inputs: feeds.x, labels }] });
  expect(refused.get(groupName), 'refused').toBeUndefined();
  const m = statistics.get(groupName)!.moment;
  const group = findGroup(model, groupName);
  const site = groupGrowthSite(model, group);
  expect([m.rows, m.cols]).toEqual([site.fanOut, site.fanIn]);
  const omega = Matrix.zeros(site.fanOut, 1);
  rng.fillNormal(omega.data);
  const predicted = new Float64Array(site.fanIn);
  for (let i = 0; i < site.fanIn; i++) for (let r = 0; r < site.fanOut; r++) predicted[i] += site.activation.df0 * omega.data[r]! * m.data[r * site.fanIn + i]!;
  // The widened model's pools (one new channel): sizes from a run of the widened model with zero incoming weights.
  const widen = (incoming: Matrix) => {
    const fresh = build().model();
    const units: NewUnits = { incoming, outgoing: omega, incomingBias: new Float64Array(1), report: { strategy: 'fd', site: groupName, count: 1, notes: [] } };
    widenGroup(fresh, groupName, units);
    return fresh;
  };
  const shape = await poolSizes(widen(Matrix.zeros(1, site.fanIn)), feeds);
  for (const [k, c] of shape.channels) shape.channels.set(k, c - 1);
  const loss = async (i: number, delta: number) => {
    const incoming = Matrix.zeros(1, site.fanIn);
    incoming.data[i] = delta;
    const reference = await firstElementReference(widen(incoming), shape.channels, shape.sizes);
    const out = await runModel(reference, feeds);
    return meanCrossEntropy([...out.values()][0]!.data, classes, labels);
  };
  let worst = 0;
  const scale = Math.max(...predicted.map(Math.abs));
  for (let i = 0; i < site.fanIn; i++) {
    const fd = ((await loss(i, eps)) - (await loss(i, -eps))) / (2 * eps);
    worst = Math.max(worst, Math.abs(fd - predicted[i]!) / scale);
  }
  expect(scale).toBeGreaterThan(1e-3);
  return { group, worst, plan: groupPlan(group)! };
}

const conv = (b: GraphBuilder, x: string, cin: number, cout: number, k: number, attrs: Record<string, number[] | number>, name: string, bias = true) =>
  b.op('Conv', bias ? [x, b.weight([cout, cin, k, k], 0.4), b.weight([cout], 0.1)] : [x, b.weight([cout, cin, k, k], 0.4)], attrs, 1, name);
const head = (b: GraphBuilder, x: string, c: number, classes: number) => {
  b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [x])]), b.weight([c, classes], 0.8)], {}, 1, 'head'), ['N', classes]);
};

describe('group statistics through MaxPool (first-element convention) against finite differences', () => {
  it('ResNet stem: conv s2 -> BN -> act -> MaxPool k3 s2 p1 -> residual stage (joined producers behind the pool, strided consumers, GAP head)', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(81), F32);
      const x = b.input('x', ['N', 3, 16, 16]);
      const c1 = conv(b, x, 3, 4, 3, { strides: [2, 2], pads: [1, 1, 1, 1] }, 'stem', false);
      const bn = b.op('BatchNormalization', [c1, b.weight([4], 0.3), b.weight([4], 0.1), b.weight([4], 0.1), b.tensor([4], [0.7, 1.2, 0.9, 1.5])]);
      const pooled = b.op('MaxPool', [b.op('Tanh', [bn])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 1, 'maxpool');
      const a1 = b.op('Tanh', [conv(b, pooled, 4, 4, 3, { pads: [1, 1, 1, 1] }, 'l1a')]);
      const r1 = b.op('Tanh', [b.op('Add', [conv(b, a1, 4, 4, 3, { pads: [1, 1, 1, 1] }, 'l1b'), pooled])]);
      const down = conv(b, r1, 4, 5, 1, { strides: [2, 2] }, 'down');
      const a2 = b.op('Tanh', [conv(b, r1, 4, 5, 3, { strides: [2, 2], pads: [1, 1, 1, 1] }, 'l2a')]);
      const r2 = b.op('Tanh', [b.op('Add', [conv(b, a2, 5, 5, 3, { pads: [1, 1, 1, 1] }, 'l2b'), down])]);
      head(b, r2, 5, 3);
      return b;
    };
    // eps 1e-3: the deeper tanh path's truncation error at 4e-3 is 3.6e-3 relative (1/16 of it at 1e-3).
    const { group, worst, plan } = await gradientCheck({ build, group: 'stem', input: [4, 3, 16, 16], classes: 3 }, 1e-3);
    expect(group.members.producers).toEqual(['stem', 'l1b']);
    expect(group.members.consumers).toEqual(['l1a', 'down', 'l2a']);
    expect(plan.inexact).toEqual([]);
    // The stem reaches its consumers through the pool: π(0) = 0, π(t) = 2t − 1 on 8 → 4.
    expect(plan.consumers[0]!.maps?.[0]).toEqual([[0, 1, 3, 5], [0, 1, 3, 5]]);
    expect(plan.consumers[0]!.maps?.[1]).toBeUndefined();
    expect(worst).toBeLessThan(1e-3);
  });

  it('VGG: conv -> act -> MaxPool k2 s2 -> conv, on an even map (plain subsampling) and an odd one', async () => {
    for (const size of [8, 7]) {
      const build = () => {
        const b = new GraphBuilder(new Rng(82), F32);
        const x = b.input('x', ['N', 2, size, size]);
        const h = b.op('MaxPool', [b.op('Tanh', [conv(b, x, 2, 3, 3, { pads: [1, 1, 1, 1] }, 'c1')])], { kernel_shape: [2, 2], strides: [2, 2] });
        const h2 = b.op('Tanh', [conv(b, h, 3, 4, 3, { pads: [1, 1, 1, 1] }, 'c2')]);
        head(b, h2, 4, 3);
        return b;
      };
      const { worst } = await gradientCheck({ build, group: 'c1', input: [4, 2, size, size], classes: 3 });
      expect(worst, `size ${size}`).toBeLessThan(2e-3);
    }
  });

  it('a ceil_mode pool with pads, then a strided centre-delta depthwise conv, then a 1×1 conv', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(83), F32);
      const x = b.input('x', ['N', 2, 8, 8]);
      const h = b.op('MaxPool', [b.op('Tanh', [conv(b, x, 2, 3, 3, { pads: [1, 1, 1, 1] }, 'c1')])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 });
      const dw = b.op('Tanh', [b.op('Conv', [h, b.weight([3, 1, 3, 3], 0.5), b.weight([3], 0.1)], { group: 3, pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'dw')]);
      const p = b.op('Tanh', [conv(b, dw, 3, 4, 1, {}, 'project')]);
      head(b, p, 4, 3);
      return b;
    };
    const { worst, plan } = await gradientCheck({ build, group: 'c1', input: [4, 2, 8, 8], classes: 3 });
    // ceil mode: 8 → 5, π = [0, 1, 3, 5, 7]; the depthwise conv keeps every other position.
    expect(plan.consumers[0]!.maps?.[0]).toEqual([[0, 3, 7], [0, 3, 7]]);
    expect(worst).toBeLessThan(2e-3);
  });

  it('Flatten -> Gemm after a pool, GlobalAveragePool -> Gemm / 1×1 conv after it, and a GlobalMaxPool -> Gemm consumer', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(84), F32);
      const x = b.input('x', ['N', 2, 7, 7]);
      const h = b.op('Tanh', [conv(b, x, 2, 3, 3, { pads: [1, 1, 1, 1] }, 'c1')]);
      const pooled = b.op('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const f = b.op('Gemm', [b.op('Flatten', [pooled]), b.weight([48, 3], 0.3)], {}, 1, 'fc');
      const g = b.op('Gemm', [b.op('Flatten', [b.op('GlobalMaxPool', [h])]), b.weight([3, 3], 0.3)], {}, 1, 'fcmax');
      const mean = b.op('GlobalAveragePool', [pooled]);
      const gm = b.op('Gemm', [b.op('Flatten', [mean]), b.weight([3, 3], 0.6)], {}, 1, 'fcmean');
      const cm = b.op('Flatten', [conv(b, mean, 3, 3, 1, {}, 'convmean')]);
      b.output(b.op('Sum', [f, g, gm, cm]), ['N', 3]);
      return b;
    };
    const { worst, plan } = await gradientCheck({ build, group: 'c1', input: [5, 2, 7, 7], classes: 3 });
    const pi = [[0, 1, 3, 5], [0, 1, 3, 5]];
    expect(plan.consumers.map((c) => [c.node.name, c.maps?.[0], Boolean(c.mean)])).toEqual([['fc', pi, false], ['fcmax', [[0], [0]], false], ['fcmean', pi, true], ['convmean', pi, true]]);
    expect(worst).toBeLessThan(2e-3);
  });

  it('refuses a producer that reaches a join through a pool and around it (two maps), with the reason', async () => {
    const b = new GraphBuilder(new Rng(86), F32);
    const x = b.input('x', ['N', 2, 6, 6]);
    const h = b.op('Tanh', [conv(b, x, 2, 3, 3, { pads: [1, 1, 1, 1] }, 'c1')]);
    const pooled = b.op('MaxPool', [h], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 1, 'pool');
    const joined = b.op('Add', [pooled, h], {}, 1, 'join');
    head(b, conv(b, joined, 3, 4, 3, { pads: [1, 1, 1, 1] }, 'c2'), 4, 3);
    const { refused } = await computeGroupStatistics(b.model(), { groups: ['c1'], loss: { kind: 'ce-logits' }, data: [] });
    expect(refused.get('c1')).toMatch(/inexact: Add "join" combines views of the channels at different spatial resolutions: producer 1 of the group reaches it through both operands with different spatial maps/);
  });

  it('refuses a group whose growth matrix exceeds maxEntries, with its size', async () => {
    const b = new GraphBuilder(new Rng(87), F32);
    const x = b.input('x', ['N', 2, 7, 7]);
    const pooled = b.op('MaxPool', [b.op('Tanh', [conv(b, x, 2, 3, 3, { pads: [1, 1, 1, 1] }, 'c1')])], { kernel_shape: [2, 2], strides: [2, 2] });
    b.output(b.op('Gemm', [b.op('Flatten', [pooled]), b.weight([27, 5], 0.3)], {}, 1, 'fc'), ['N', 5]);
    const { refused } = await computeGroupStatistics(b.model(), { groups: ['c1'], loss: { kind: 'ce-logits' }, data: [], maxEntries: 100 });
    expect(refused.get('c1')).toBe('the growth matrix would have 45 × 18 = 810 entries, more than maxEntries (100)');
  });

  it('still refuses a MaxPool whose input size is unknown, naming the node and the size', async () => {
    const b = new GraphBuilder(new Rng(85), F32);
    const x = b.input('x', ['N', 2, 'H', 'W']);
    const h = b.op('MaxPool', [b.op('Relu', [conv(b, x, 2, 3, 3, {}, 'c1')])], { kernel_shape: [2, 2], strides: [2, 2] }, 1, 'pool');
    b.output(conv(b, h, 3, 2, 2, {}, 'c2'), ['N', 2, 'h', 'w']);
    const { refused } = await computeGroupStatistics(b.model(), { groups: ['c1'], loss: { kind: 'mse' }, data: [] });
    expect(refused.get('c1')).toMatch(/inexact: MaxPool "pool" pools over space and the spatial size of ".*" is unknown \(\[\?, \?\]\)/);
  });
});
