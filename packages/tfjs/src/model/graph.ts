/**
 * A read-only view of a tfjs LayersModel's layer graph (Sequential or functional): layers in topological order,
 * each with its producers and consumers inside this model.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedError } from '@gradmax/core';

/** Any tfjs layer (the `Layer` class is exported under `tf.layers`). */
export type AnyLayer = tfl.layers.Layer;

/** One layer of the graph. */
export interface GraphNode {
  /** The layer. */
  layer: AnyLayer;
  /** Layer name (unique in a model). */
  name: string;
  /** Serialization class name, e.g. `"Dense"`. */
  className: string;
  /** Names of the layers feeding this one, in input order (empty for input layers). */
  inputs: string[];
  /** Names of the layers consuming this one's output. */
  consumers: string[];
  /** True when this layer's output is a model output. */
  isOutput: boolean;
}

/** The graph of a LayersModel. */
export interface ModelGraph {
  /** The functional model actually holding the graph (the inner model of a Sequential). */
  functional: tfl.LayersModel;
  /** Nodes in topological order (inputs first). */
  nodes: GraphNode[];
  /** Lookup by layer name. */
  byName: Map<string, GraphNode>;
}

/** The functional model that holds the graph: a Sequential wraps one (built here if it was not yet). */
export function functionalOf(model: tfl.LayersModel): tfl.LayersModel {
  if (!(model instanceof tfl.Sequential)) return model;
  const holder = model as unknown as { model?: tfl.LayersModel; build(): void };
  // A Sequential creates its inner model lazily (as predict/compile do).
  if (!holder.model) holder.build();
  return holder.model!;
}

/**
 * Builds the graph view. Layers shared between several call sites (several inbound nodes) are refused with
 * {@link UnsupportedError}, because widening one of them would change every call.
 */
export function modelGraph(model: tfl.LayersModel): ModelGraph {
  const functional = functionalOf(model);
  const layers = functional.layers as AnyLayer[];
  const outputNames = new Set(functional.outputLayers.map((l) => l.name));
  const nodes: GraphNode[] = [];
  const byName = new Map<string, GraphNode>();
  for (const layer of layers) {
    const inbound = layer.inboundNodes;
    if (inbound.length > 1) {
      throw new UnsupportedError(`layer "${layer.name}" is called ${inbound.length} times (shared layer); gradmax cannot grow models with shared layers`, { layer: layer.name });
    }
    const node: GraphNode = {
      layer,
      name: layer.name,
      className: layer.getClassName(),
      inputs: inbound.length ? inbound[0]!.inboundLayers.map((l) => l.name) : [],
      consumers: [],
      isOutput: outputNames.has(layer.name),
    };
    nodes.push(node);
    byName.set(node.name, node);
  }
  for (const node of nodes) for (const input of node.inputs) byName.get(input)?.consumers.push(node.name);
  return { functional, nodes, byName };
}
