/**
 * Every reason a group is refused, one case each: a small graph whose layer "c1" meets the blocking structure; the
 * reason must name the node (or value) that blocks growth.
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, UnsupportedError } from '@gradmax/core';
import { findGroups, groupGrowthSite, makeNode, widenGroup } from '@gradmax/onnx';
import { GraphBuilder } from './helpers.js';
import { conv } from './group-helpers.js';

/** x [N, 2, 6, 6] → c1 (4 channels) → between(b, h) → c2, with `between` returning the value c2 reads. */
function chain(between: (b: GraphBuilder, h: string) => string, opset = 13): GraphBuilder {
  const b = new GraphBuilder(new Rng(71));
  const x = b.input('x', ['N', 2, 6, 6]);
  const h = conv(b, x, 4, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'c1');
  const y = between(b, h);
  if (y) b.output(conv(b, y, 3, 4, [1, 1], {}, 'c2'), ['N', 3, 6, 6]);
  return b;
}

function reasonOf(b: GraphBuilder, name = 'c1', opset = 13): string {
  const g = findGroups(b.model(opset)).find((x) => x.name === name || x.members.producers.includes(name));
  expect(g, `group ${name}`).toBeDefined();
  expect(g!.growable, `group ${name} should be refused`).toBe(false);
  return g!.reason!;
}

const CASES: { name: string; build: () => GraphBuilder; reason: RegExp; opset?: number }[] = [
  { name: 'graph output', build: () => chain((b, h) => (b.output(h, ['N', 4, 6, 6]), '')), reason: /value ".*" carries the group's channels and is a graph output/ },
  { name: 'no consumer', build: () => chain((b, h) => (b.op('Relu', [h], {}, 1, 'dead-end'), b.output(conv(b, 'x', 3, 2, [1, 1], {}, 'other'), ['N', 3, 6, 6]), '')), reason: /no layer reads the channels of c1; nothing absorbs new units/ },
  { name: 'LayerNormalization over channels', build: () => chain((b, h) => b.op('Transpose', [b.op('LayerNormalization', [b.op('Transpose', [h], { perm: [0, 2, 3, 1] }), b.weight([4]), b.weight([4])], { axis: -1 }, 1, 'ln')], { perm: [0, 3, 1, 2] }), 17), reason: /LayerNormalization "ln" normalises over the channel axis/, opset: 17 },
  { name: 'decomposed LayerNorm (ReduceMean over channels)', build: () => chain((b, h) => b.op('Sub', [h, b.op('ReduceMean', [h], { axes: [1] }, 1, 'mean')])), reason: /ReduceMean "mean" reduces over the channel axis/ },
  { name: 'GroupNormalization-style Softmax over channels', build: () => chain((b, h) => b.op('Softmax', [h], { axis: 1 }, 1, 'sm')), reason: /Softmax "sm" normalises over the channel axis/ },
  { name: 'Softmax over space', build: () => chain((b, h) => b.op('Softmax', [h], { axis: 3 }, 1, 'sm')), reason: /Softmax "sm" normalises each channel along axis 3/ },
  { name: 'Shape reading the channel count', build: () => chain((b, h) => { const s = b.op('Shape', [h], {}, 1, 'shape'); const c = b.op('Gather', [s, b.int64([1])], { axis: 0 }, 1, 'gather'); return b.op('Reshape', [h, b.op('Concat', [b.int64([-1]), c, b.int64([6, 6])], { axis: 0 })]); }), reason: /Shape "shape" reads the channel count \(Gather "gather"\)/ },
  { name: 'Split of the channel axis', build: () => chain((b, h) => b.op('Split', [h, b.int64([2, 2])], { axis: 1 }, 2, 'split')), reason: /Split "split" splits the channel axis/ },
  { name: 'Slice of channels', build: () => chain((b, h) => b.op('Slice', [h, b.int64([0]), b.int64([2]), b.int64([1])], {}, 1, 'slice')), reason: /Slice "slice" selects channels/ },
  { name: 'Gather of channels', build: () => chain((b, h) => b.op('Gather', [h, b.int64([0, 1, 2, 3])], { axis: 1 }, 1, 'gather')), reason: /Gather "gather" selects channels/ },
  { name: 'channel shuffle', build: () => chain((b, h) => b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [h, b.int64([0, 2, 2, 6, 6])], {}, 1, 'split-heads')], { perm: [0, 2, 1, 3, 4] }), b.int64([0, 4, 6, 6])])), reason: /Reshape "split-heads" .*splits the channel axis/ },
  { name: 'Pad on the channel axis', build: () => chain((b, h) => b.op('Pad', [h, b.int64([0, 0, 0, 0, 0, 1, 0, 0])], {}, 1, 'pad')), reason: /Pad "pad" pads the channel axis/ },
  { name: 'Resize of the channel axis', build: () => chain((b, h) => b.op('Resize', [h, '', b.tensor([4], [1, 2, 1, 1])], { mode: 'nearest' }, 1, 'resize')), reason: /Resize "resize" rescales the channel axis/ },
  { name: 'BatchNormalization in training mode', build: () => chain((b, h) => b.op('BatchNormalization', [h, b.weight([4]), b.weight([4]), b.weight([4]), b.tensor([4], [1, 1, 1, 1])], { training_mode: 1 }, 1, 'bn'), 15), reason: /BatchNormalization "bn" is in training mode/, opset: 15 },
  { name: 'Dropout in training mode', build: () => chain((b, h) => b.op('Dropout', [h, b.tensor([], [0.1]), b.op('Identity', [b.tensor([], [1], 'tm', 9)])], {}, 1, 'drop'), 13), reason: /Dropout "drop": training_mode is not a constant false/ },
  { name: 'Cast to an integer type', build: () => chain((b, h) => b.op('Cast', [b.op('Cast', [h], { to: 7 }, 1, 'to-int')], { to: 1 })), reason: /Cast "to-int" casts the channels to INT64/ },
  { name: 'Where', build: () => chain((b, h) => b.op('Where', [b.input('cond', ['N', 4, 6, 6], 9), h, b.tensor([], [0])], {}, 1, 'where')), reason: /Where "where" selects between the channels and another value/ },
  { name: 'an op without a channel rule', build: () => chain((b, h) => b.op('Floor', [h], {}, 1, 'floor')), reason: /Floor "floor" is not known to keep new channels at zero/ },
  { name: 'custom domain', build: () => chain((b, h) => { const o = b.name('fused'); b.nodes.push(makeNode('FusedThing', [h], [o], {}, 'fused', 'com.example')); return o; }), reason: /FusedThing "fused" \(domain "com.example"\)/ },
  { name: 'quantized op on the path', build: () => chain((b, h) => b.op('DequantizeLinear', [b.op('QuantizeLinear', [h, b.tensor([], [0.1]), b.tensor([], [0], 'zp', 3)], {}, 1, 'q'), b.tensor([], [0.1]), b.tensor([], [0], 'zp', 3)])), reason: /QuantizeLinear "q" is a quantized op/ },
  { name: 'residual Add with a graph input', build: () => chain((b, h) => b.op('Add', [h, b.input('skip', ['N', 4, 6, 6])], {}, 1, 'add')), reason: /Add "add" combines the group's channels with "skip", a graph input/ },
  { name: 'residual Add with a Concat output', build: () => chain((b, h) => b.op('Add', [h, b.op('Concat', [conv(b, 'x', 2, 2, [1, 1], {}, 'ca'), conv(b, 'x', 2, 2, [1, 1], {}, 'cb')], { axis: 1 }, 1, 'cat')], {}, 1, 'add')), reason: /Add "add" combines the group's channels with ".*", produced by Concat "cat"/ },
  { name: 'joined layers of different widths', build: () => chain((b, h) => b.op('Add', [h, b.op('Relu', [conv(b, 'x', 8, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'wide')])], {}, 1, 'add')), reason: /layers joined into this group have different widths: c1 has 4 channels, wide has 8/ },
  { name: 'a computed value the same for every channel', build: () => chain((b, h) => b.op('Add', [h, b.op('Relu', [conv(b, 'x', 1, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'narrow')])], {}, 1, 'add')), reason: /Add "add" combines the channels with ".*", a computed value that is the same for every channel/ },
  { name: 'Expand on the path', build: () => chain((b, h) => b.op('Expand', [h, b.int64([1, 4, 6, 6])], {}, 1, 'expand')), reason: /Expand "expand" is not supported on the path of a group/ },
  { name: 'Concat of the same channels twice', build: () => chain((b, h) => conv(b, b.op('Concat', [h, h], { axis: 1 }, 1, 'twice'), 4, 8, [1, 1], {}, 'c3')), reason: /Concat "twice" concatenates the group's channels more than once/ },
  { name: 'a grouped layer that reads and produces the same channels', build: () => chain((b, h) => { const r = b.op('Relu', [h]); return b.op('Add', [r, conv(b, r, 4, 4, [1, 1], { group: 2 }, 'loop')], {}, 1, 'add'); }), reason: /grouped Conv "loop" both reads and produces the group's channels/ },
  { name: 'a layer that reads the channels and produces their gate', build: () => chain((b, h) => { const r = b.op('Relu', [h]); return b.op('Mul', [r, b.op('Sigmoid', [conv(b, r, 4, 4, [1, 1], {}, 'gate')])], {}, 1, 'mul'); }), reason: /Conv "gate" both reads the group's channels and produces its gate/ },
  { name: 'an If subgraph reading the channels', build: () => chain((b, h) => { const o = b.name('if'); const cond = b.input('cond', [], 9); const branch = new GraphBuilder(); const y = branch.op('Identity', [h]); branch.output(y, []); b.nodes.push(makeNode('If', [cond], [o], { then_branch: branch.proto().graph!, else_branch: branch.proto().graph! }, 'if')); return o; }), reason: /subgraph of If "if"/ },
];

describe('group refusals name the node', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const reason = reasonOf(c.build(), 'c1', c.opset ?? 13);
      if (process.env.SHOW_REASONS) console.log(c.name, '=>', reason);
      expect(reason).toMatch(c.reason);
    });
  }

  it('grouped convs with different group counts', () => {
    const b = new GraphBuilder(new Rng(72));
    const x = b.input('x', ['N', 4, 6, 6]);
    const h = b.op('Relu', [conv(b, x, 8, 4, [1, 1], {}, 'c1')]);
    b.output(conv(b, h, 8, 8, [3, 3], { group: 4, pads: [1, 1, 1, 1] }, 'g4'), ['N', 8, 6, 6]);
    b.output(conv(b, h, 8, 8, [3, 3], { group: 2, pads: [1, 1, 1, 1] }, 'g2'), ['N', 8, 6, 6]);
    expect(reasonOf(b)).toMatch(/grouped convolutions have different group counts \(4, 2\)/);
  });

  it('f(0) ≠ 0 on the way to a consumer: incoming-zero units are refused and a strategy that works is named', () => {
    const b = chain((bb, h) => bb.op('Sigmoid', [h], {}, 1, 'sig'));
    const model = b.model();
    const g = findGroups(model).find((x) => x.name === 'c1')!;
    expect(g.growable).toBe(true);
    expect(g.activation!.f0).toBe(0.5);
    expect(g.notes.join(' ')).toMatch(/f\(0\) = 0.5.*randomOutgoingZero/);
    const site = groupGrowthSite(model, g);
    const outgoing = Matrix.zeros(site.fanOut, 1);
    outgoing.data.fill(0.1);
    const units = { incoming: Matrix.zeros(1, site.fanIn), outgoing, incomingBias: new Float64Array(1), report: { strategy: 't', site: g.name, count: 1, notes: [] } };
    expect(() => widenGroup(model, g, units)).toThrow(UnsupportedError);
    expect(() => widenGroup(model, g, units)).toThrow(/f\(0\) = 0.5 ≠ 0 .*randomOutgoingZero, north.*net2net/);
  });
});
