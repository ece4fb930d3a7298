/**
 * A channel group as ONE core growth site: the incoming matrix stacks the producers' incoming weights (rows = units,
 * columns = the producers' fan-ins one after the other) and the outgoing matrix stacks the consumers' outgoing weights
 * (rows = the consumers' fan-outs one after the other), so no strategy needs to know about groups. The site is
 * presented as `kind: 'dense'` (matrices only; strategies read no conv geometry).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { Matrix, type GrowthSite } from '@gradmax/core';
import { readValues } from '../model/weights.js';
import { groupLayout } from './layout.js';
import type { ChannelGroup } from './types.js';

/** Reads the current weights of `group` into the core layout (see the module notes). */
export function groupToCoreSite(model: tfl.LayersModel, group: ChannelGroup): GrowthSite {
  const layout = groupLayout(model, group);
  const n = group.units;
  const incoming = new Matrix(n, layout.fanIn);
  let bias: Float64Array | undefined;
  for (const p of layout.producers) {
    const k = readValues(p.kernel.variable);
    const { outer, inner } = p.kernel;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) incoming.data[j * layout.fanIn + p.col0 + o * inner + i] = k[(o * n + j) * inner + i]!;
    }
    // The first producer with a bias speaks for the group (new biases go there, see widenGroup).
    if (!bias && p.bias) bias = Float64Array.from(readValues(p.bias));
  }
  const outgoing = new Matrix(layout.fanOut, n);
  for (const c of layout.consumers) {
    const k = readValues(c.kernel.variable);
    const { outer, inner, channels } = c.kernel;
    const offset = c.member.offset;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < n; j++) for (let i = 0; i < inner; i++) outgoing.data[(c.row0 + o * inner + i) * n + j] = k[(o * channels + offset + j) * inner + i]!;
    }
  }
  const site: GrowthSite = { name: group.name, kind: 'dense', units: n, fanIn: layout.fanIn, fanOut: layout.fanOut, incoming, outgoing, activation: group.activation };
  if (bias) site.incomingBias = bias;
  return site;
}
