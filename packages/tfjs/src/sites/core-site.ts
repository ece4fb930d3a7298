/**
 * Converts a tfjs growth site to the framework-neutral {@link GrowthSite} of `@gradmax/core`: incoming weights
 * `[units × fanIn]`, outgoing weights `[fanOut × units]` and, for conv sites, the pair geometry.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { Matrix, UnsupportedError, makeConvPairGeometry, type ConvPairGeometry, type GrowthSite } from '@gradmax/core';
import { modelGraph, type AnyLayer } from '../model/graph.js';
import { recordedOrConcrete, withInputShape } from '../model/shapes.js';
import { findVariable, readValues, requireVariable } from '../model/weights.js';
import type { TfjsGrowthSite } from './types.js';

type Config = Record<string, unknown>;

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/**
 * The (first) input shape of a layer in its model, batch dimension included (null). Sizes the model leaves open
 * (`[null, null, null, C]` inputs) are those of the active `withInputShape` scope.
 */
export function inputShapeOf(layer: AnyLayer): (number | null)[] {
  const s = layer.inboundNodes[0]?.inputShapes as unknown;
  if (!Array.isArray(s)) throw new UnsupportedError(`layer "${layer.name}" has no known input shape`, { layer: layer.name });
  return recordedOrConcrete(layer, 'input', (Array.isArray(s[0]) ? s[0] : s) as (number | null)[]);
}

/** The (single) output shape of a layer in its model, batch dimension included (null); see {@link inputShapeOf}. */
export function outputShapeOf(layer: AnyLayer): (number | null)[] {
  const s = layer.inboundNodes[0]?.outputShapes as unknown;
  if (!Array.isArray(s)) throw new UnsupportedError(`layer "${layer.name}" has no known output shape`, { layer: layer.name });
  return recordedOrConcrete(layer, 'output', (Array.isArray(s[0]) ? s[0] : s) as (number | null)[]);
}

/** Layers of a site, resolved in `model`. */
export interface SiteLayers {
  /** The layer gaining units. */
  current: AnyLayer;
  /** The layer consuming them. */
  next: AnyLayer;
  /** Layers in between, in forward order. */
  between: AnyLayer[];
}

/** Resolves the layers of `site` in `model`. */
export function siteLayers(model: tfl.LayersModel, site: TfjsGrowthSite): SiteLayers {
  const graph = modelGraph(model);
  const get = (name: string) => {
    const node = graph.byName.get(name);
    if (!node) throw new UnsupportedError(`site "${site.name}": layer "${name}" is not in the model`, { site: site.name, layer: name });
    return node.layer;
  };
  return { current: get(site.current), next: get(site.next), between: site.between.map((b) => get(b.name)) };
}

/** True when a spatial layer (pooling, depthwise conv) sits between the two convs of a site. */
export function hasSpatialBetween(site: TfjsGrowthSite): boolean {
  return site.between.some((b) => b.role === 'pool' || b.role === 'depthwise' || b.role === 'global-pool');
}

/**
 * Conv geometry of a conv or conv-dense site. With pooling or a depthwise conv in between, the intermediate map seen
 * by the next layer differs from the current conv's output; the geometry then describes the current conv exactly and
 * the next layer by its kernel only (stride 1, valid), which fixes fanOut = k2h·k2w·m2. The adapter computes the tap
 * gradient through the in-between layers itself, so statistics stay exact.
 */
export function siteGeometry(model: tfl.LayersModel, site: TfjsGrowthSite): ConvPairGeometry {
  const { current, next } = siteLayers(model, site);
  const c1 = current.getConfig() as Config;
  const inShape = inputShapeOf(current);
  const common = {
    name: site.name,
    inChannels: Number(inShape[3]),
    midChannels: site.units,
    inputSize: [Number(inShape[1]), Number(inShape[2])] as [number, number],
    kernel1: pair(c1['kernelSize']),
    stride1: pair(c1['strides'] ?? 1),
    padding1: (c1['padding'] ?? 'valid') as 'valid' | 'same',
  };
  if (site.kind === 'conv-dense') {
    const flatten = site.between.find((b) => b.role === 'flatten' || b.role === 'global-pool')!;
    const fs = flatten.role === 'flatten' ? inputShapeOf(modelGraph(model).byName.get(flatten.name)!.layer) : [null, 1, 1];
    const units = Number((next.getConfig() as Config)['units']);
    return makeConvPairGeometry({ ...common, outChannels: units, kernel2: [Number(fs[1]), Number(fs[2])], stride2: 1, padding2: 'valid' });
  }
  const c2 = next.getConfig() as Config;
  const filters = Number(c2['filters']);
  if (hasSpatialBetween(site)) {
    return makeConvPairGeometry({ ...common, outChannels: filters, kernel2: pair(c2['kernelSize']), stride2: 1, padding2: 'valid' });
  }
  return makeConvPairGeometry({
    ...common,
    outChannels: filters,
    kernel2: pair(c2['kernelSize']),
    stride2: pair(c2['strides'] ?? 1),
    padding2: (c2['padding'] ?? 'valid') as 'valid' | 'same',
  });
}

/**
 * Reads the current weights of a site into the core's layouts. Dense: incoming = kernelᵀ; conv: row j is filter j
 * flattened in (a_r, a_c, c_in) order; outgoing column j is the next kernel's input slice j in (b_r, b_c, c_out)
 * order (for conv-dense: dense rows (p·m1 + j), p the flattened HW position).
 */
export function toCoreSite(model: tfl.LayersModel, site: TfjsGrowthSite): GrowthSite {
  const { current, next } = siteLayers(model, site);
  const kernel1 = requireVariable(current, 'kernel');
  const k1 = readValues(kernel1);
  const bias1 = findVariable(current, 'bias');
  const units = site.units;
  const fanIn = k1.length / units;
  const incoming = new Matrix(units, fanIn);
  for (let i = 0; i < fanIn; i++) for (let j = 0; j < units; j++) incoming.data[j * fanIn + i] = k1[i * units + j]!;
  const kernel2 = requireVariable(next, 'kernel');
  const k2 = readValues(kernel2);
  const s2 = kernel2.shape.map((d) => Number(d));
  let fanOut: number;
  let outgoing: Matrix;
  if (site.kind === 'dense') {
    const n2 = s2[1]!;
    fanOut = n2;
    outgoing = new Matrix(n2, units);
    for (let j = 0; j < units; j++) for (let o = 0; o < n2; o++) outgoing.data[o * units + j] = k2[j * n2 + o]!;
  } else if (site.kind === 'conv-dense') {
    const n2 = s2[1]!;
    const positions = s2[0]! / units;
    fanOut = positions * n2;
    outgoing = new Matrix(fanOut, units);
    for (let p = 0; p < positions; p++) {
      for (let j = 0; j < units; j++) for (let o = 0; o < n2; o++) outgoing.data[(p * n2 + o) * units + j] = k2[(p * units + j) * n2 + o]!;
    }
  } else {
    const [kh, kw, , m2] = s2 as [number, number, number, number];
    fanOut = kh * kw * m2;
    outgoing = new Matrix(fanOut, units);
    for (let b = 0; b < kh * kw; b++) {
      for (let j = 0; j < units; j++) for (let o = 0; o < m2; o++) outgoing.data[(b * m2 + o) * units + j] = k2[(b * units + j) * m2 + o]!;
    }
  }
  const core: GrowthSite = {
    name: site.name,
    kind: site.kind === 'dense' ? 'dense' : 'conv',
    units,
    fanIn,
    fanOut,
    incoming,
    outgoing,
    activation: site.activation,
  };
  if (bias1) core.incomingBias = Float64Array.from(readValues(bias1));
  // With dynamic input sizes and no enclosing batch scope the geometry is nominal (strategies read only the matrices).
  if (site.kind !== 'dense') core.conv = withInputShape(model, undefined, () => siteGeometry(model, site));
  return core;
}
