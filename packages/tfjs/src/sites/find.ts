/**
 * Finds growable layer pairs in a tfjs LayersModel (Sequential or functional).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { scalarActivation, type ScalarActivation } from '../activation/info.js';
import { modelGraph, type GraphNode } from '../model/graph.js';
import { traceGroup } from '../groups/find.js';
import { layerRule } from '../groups/rules.js';
import type { ChannelGroup } from '../groups/types.js';
import type { BetweenLayer, GrowthSiteScan, NotGrowable, TfjsGrowthSite } from './types.js';

type Config = Record<string, unknown>;

const GROWABLE = new Set(['Dense', 'Conv2D']);

function config(node: GraphNode): Config {
  return node.layer.getConfig() as Config;
}

function activationOf(value: unknown): string {
  if (value == null) return 'linear';
  if (typeof value === 'string') return value;
  const cls = (value as { className?: string }).className;
  return typeof cls === 'string' ? cls : String(value);
}

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/** Checks that a Dense/Conv2D layer can take part in a site; returns a reason when it cannot. */
function growableLayerProblem(node: GraphNode): string | undefined {
  const c = config(node);
  if (node.className === 'Conv2D') {
    const [dh, dw] = pair(c['dilationRate'] ?? 1);
    if (dh !== 1 || dw !== 1) return 'dilated convolutions are not supported';
    if ((c['dataFormat'] ?? 'channelsLast') !== 'channelsLast') return 'only channelsLast convolutions are supported';
    const inShape = node.layer.inboundNodes[0]?.inputShapes as unknown;
    if (Array.isArray(inShape) && !Array.isArray(inShape[0]) && inShape.length !== 4) return 'input is not rank 4';
    return undefined;
  }
  const inShape = node.layer.inboundNodes[0]?.inputShapes as unknown;
  if (Array.isArray(inShape) && !Array.isArray(inShape[0]) && inShape.length !== 2) {
    return `Dense layer applied to a rank-${inShape.length} input (only rank-2 inputs are supported)`;
  }
  return undefined;
}

function unitsOf(node: GraphNode): number {
  const c = config(node);
  return Number(node.className === 'Dense' ? c['units'] : c['filters']);
}

/**
 * Walks forward from a Dense/Conv2D layer through channel-wise layers to the next Dense/Conv2D layer.
 * Returns the site, or the reason why there is none.
 */
function walk(graph: ReturnType<typeof modelGraph>, start: GraphNode): TfjsGrowthSite | string {
  const startProblem = growableLayerProblem(start);
  if (startProblem) return startProblem;
  if (start.isOutput) return 'its output is a model output; widening it would change the output shape';
  const isConv = start.className === 'Conv2D';
  const between: BetweenLayer[] = [];
  const chain: ScalarActivation[] = [];
  const own = activationOf(config(start)['activation']);
  const ownAct = scalarActivation(own);
  if (!ownAct) return `its activation "${own}" is not element-wise or not known to gradmax`;
  chain.push(ownAct);
  let flattened = false;
  let cur = start;
  for (;;) {
    if (cur !== start && cur.isOutput) return `layer "${cur.name}" on the path is a model output`;
    if (cur.consumers.length === 0) return `the output of "${cur.name}" is not consumed by any layer`;
    if (cur.consumers.length > 1) {
      return `the output of "${cur.name}" is consumed by several layers (${cur.consumers.join(', ')}); all of them would have to be grown together`;
    }
    const next = graph.byName.get(cur.consumers[0]!)!;
    if (next.inputs.length > 1) {
      return `the path reaches merge layer "${next.name}" (${next.className}); its other inputs and consumers would need the same channels (${next.className === 'Concatenate' ? 'Concatenate feeds consumers that expect a fixed channel layout' : 'all merged branches must have equal widths'})`;
    }
    if (GROWABLE.has(next.className)) {
      const problem = growableLayerProblem(next);
      if (problem) return `next layer "${next.name}": ${problem}`;
      if (next.className === 'Conv2D' && (!isConv || flattened)) return `"${next.name}" is a Conv2D fed by ${flattened ? 'a flattened map' : 'a Dense layer'}`;
      if (next.className === 'Dense' && isConv && !flattened) return `Dense layer "${next.name}" is applied to a rank-4 map without Flatten`;
      const activation = composite(chain);
      const kind = !isConv ? 'dense' : flattened ? 'conv-dense' : 'conv';
      return { name: `${start.name}->${next.name}`, kind, current: start.name, next: next.name, between, units: unitsOf(start), activation, activationChain: chain };
    }
    // In-between layers of a pair: the ones the rule table gives a pair role (one place that knows each layer).
    const c = config(next);
    const table = layerRule(next.className);
    const rule = table?.pass;
    const role = rule?.pairRole;
    if (!rule || !role) return `layer "${next.name}" (${next.className}) cannot sit between the two layers of a pair`;
    const problem = rule.problem?.(c, next.layer) ?? table.noGradient?.(c);
    if (problem) return `layer "${next.name}": ${problem}`;
    const spatial = role === 'pool' || role === 'depthwise' || role === 'flatten' || role === 'global-pool';
    if (spatial && (!isConv || flattened)) return `${next.className} "${next.name}" outside a conv path`;
    if (role === 'batchnorm' && flattened) return `BatchNormalization "${next.name}" after Flatten is not supported`;
    const entry: BetweenLayer = { name: next.name, className: next.className, role };
    const act = rule.activation?.(c, next.layer);
    if (typeof act === 'string') return `layer "${next.name}": ${act}`;
    if (act) {
      entry.activation = act;
      chain.push(act);
    }
    if (role === 'flatten' || role === 'global-pool') flattened = true;
    between.push(entry);
    cur = next;
  }
}

function composite(chain: ScalarActivation[]): TfjsGrowthSite['activation'] {
  let v = 0;
  let d = 1;
  for (const a of chain) {
    // At 0 the declared values (exact, as tfjs's gradient computes them); elsewhere the functions.
    d *= v === 0 ? a.df0 : a.df(v);
    v = v === 0 ? a.f0 : a.f(v);
  }
  const name = chain.map((a) => a.name).filter((n) => n !== 'linear').join('∘') || 'linear';
  return { name, f0: v, df0: d };
}

/**
 * Finds everything of `model` that can grow:
 * - `sites`: plain layer pairs — Dense→Dense, Conv2D→Conv2D and Conv2D→…→Flatten/global pooling→Dense, with Dropout,
 *   activation layers, BatchNormalization, DepthwiseConv2D and 2-D pooling in between (fast exact statistics);
 * - `groups`: channel groups — every other producer (Dense, Conv1D/2D/3D, SeparableConv2D, Conv2DTranspose) with
 *   the layers its channels reach: per-channel layers (also UpSampling, padding, cropping, PReLU, Reshape), joins
 *   (Add, Multiply, Maximum, Minimum, Average, Concatenate along channels, squeeze-excitation gates, whose
 *   other inputs' producers join the group) and consumers. A residual stage is one group;
 * - `notGrowable`: every other producer with the reason (a model output, LayerNormalization, an unknown or custom
 *   layer, the model input joined to the channels, ...).
 */
export function findGrowthSites(model: tfl.LayersModel): GrowthSiteScan {
  const graph = modelGraph(model);
  const sites: TfjsGrowthSite[] = [];
  const groups: ChannelGroup[] = [];
  const notGrowable: NotGrowable[] = [];
  const grouped = new Set<string>();
  for (const node of graph.nodes) {
    if (!layerRule(node.className)?.producer || grouped.has(node.name)) continue;
    // A plain pair (one producer, per-channel layers, one Dense/Conv2D consumer) keeps the fast pair statistics.
    const pair = GROWABLE.has(node.className) ? walk(graph, node) : undefined;
    if (pair && typeof pair !== 'string') {
      sites.push(pair);
      continue;
    }
    const traced = traceGroup(graph, node);
    if ('group' in traced) {
      groups.push(traced.group);
      for (const p of traced.group.producers) grouped.add(p.name);
    } else {
      notGrowable.push({ layer: node.name, className: node.className, reason: traced.reason });
    }
  }
  return { sites, groups, notGrowable };
}
