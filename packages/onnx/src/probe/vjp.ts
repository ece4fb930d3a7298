/**
 * A general reverse-mode gradient model: the forward outputs plus the vector-Jacobian products of chosen
 * tensors, for cotangents fed as extra inputs. The probe uses the same machinery; this entry point serves tests
 * and integrators who want raw gradients.
 * @packageDocumentation
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { InvalidArgumentError } from '@gradmax/core';
import { makeValueInfo } from '../model.js';
import { BackwardPass, emitLoss, lossSeed, planBackward } from './build.js';
import type { ProbeLoss } from './build.js';
import { Emitter } from './emitter.js';
import { defaultOpset } from './onnx-util.js';
import { sortTopologically } from './prepare.js';
import { discoverShapes } from './shapes.js';
import type { TensorInfo } from './shapes.js';

/** Options of {@link buildVjpModel}. */
export interface VjpModelOptions {
  /** Tensors to differentiate with respect to (graph inputs or intermediate tensors). */
  wrt: readonly string[];
  /** Outputs that receive cotangents (default: every graph output). */
  outputs?: readonly string[];
  /** Values for named symbolic input dims other than the batch (shape discovery). */
  fixedDims?: Record<string, number>;
  /**
   * Differentiate this loss (summed over the batch) instead of feeding cotangents: adds a labels/targets input and a
   * loss output; `outputs` is ignored.
   */
  loss?: ProbeLoss;
}

/** A gradient model and its extra inputs/outputs. */
export interface VjpModel {
  /** The model: original inputs plus one cotangent input per output; original outputs plus one gradient per `wrt`. */
  model: ModelProto;
  /** Cotangent input name per differentiated output. */
  cotangents: Record<string, string>;
  /** Gradient output name per `wrt` tensor. */
  gradients: Record<string, string>;
  /** With `loss`: the labels/targets input and the summed-loss output. */
  loss?: { labelsInput: string; labelsType: number; lossOutput: string };
}

/**
 * Builds a model computing `Σ_o ⟨v_o, ∂o/∂w⟩` for every `w` in `wrt`, with the cotangents `v_o` as inputs.
 * Throws `MissingGradientRuleError` when a node between `wrt` and the outputs has no rule.
 */
export async function buildVjpModel(model: ModelProto, options: VjpModelOptions): Promise<VjpModel> {
  const proto = clone(ModelProtoSchema, model);
  const graph = proto.graph;
  if (!graph) throw new InvalidArgumentError('model has no graph');
  sortTopologically(graph.node);
  const nodes = graph.node;
  const outputs = options.outputs ?? graph.output.map((o) => o.name);
  const names = new Set<string>();
  for (const n of nodes) for (const t of [...n.input, ...n.output, n.name]) names.add(t);
  for (const t of graph.initializer) names.add(t.name);
  for (const t of graph.input) names.add(t.name);
  for (const w of options.wrt) if (!names.has(w)) throw new InvalidArgumentError(`tensor "${w}" is not in the model`, { tensor: w });
  const lossOutput = options.loss ? (options.loss.output ?? graph.output[0]?.name ?? '') : undefined;
  const seed = options.loss ? lossSeed(nodes, options.loss, lossOutput!) : undefined;
  const plan = planBackward(nodes, options.wrt, seed ? [seed.seedTensor] : outputs, seed?.skipNode, names);
  plan.check(() => [...options.wrt]);
  const infos = await discoverShapes(proto, { fixedDims: options.fixedDims });
  const info = (name: string): TensorInfo => {
    const i = infos.get(name);
    if (!i) throw new InvalidArgumentError(`no type information for tensor "${name}"`, { tensor: name });
    return i;
  };
  const e = new Emitter(names, defaultOpset(proto));
  const back = new BackwardPass(e, nodes, plan, info, graph.initializer, graph.input.map((i) => i.name));
  const cotangents: Record<string, string> = {};
  let lossInfo: VjpModel['loss'];
  if (options.loss && seed) {
    const kind = options.loss.kind;
    const labelsInput = kind === 'mse' ? (options.loss.targetsName ?? 'targets') : (options.loss.labelsName ?? 'labels');
    if (names.has(labelsInput)) throw new InvalidArgumentError(`the labels/targets input name "${labelsInput}" is already used in the model`, { name: labelsInput });
    const oi = info(lossOutput!);
    const { lossSum, labelsType } = emitLoss(e, kind, lossOutput!, oi.dims.length, oi.elemType, labelsInput, seed.seedTensor, seed.skipNode, (t, g) => back.addGrad(t, g));
    graph.input.push(kind === 'mse' ? makeValueInfo(labelsInput, oi.elemType, oi.dims.map((d) => d ?? 'N')) : makeValueInfo(labelsInput, labelsType, ['N']));
    graph.output.push(makeValueInfo(lossSum, oi.elemType, []));
    lossInfo = { labelsInput, labelsType, lossOutput: lossSum };
  }
  for (const o of options.loss ? [] : outputs) {
    const name = e.fresh(`${o}_cotangent`);
    cotangents[o] = name;
    const oi = info(o);
    graph.input.push(makeValueInfo(name, oi.elemType, oi.dims.map((d, k) => (d === null ? `cot_${k}` : d))));
    back.addGrad(o, name);
  }
  back.run();
  const gradients: Record<string, string> = {};
  for (const w of options.wrt) {
    const g = back.finalGrad(w) ?? e.zerosLike(w, info(w).elemType);
    const out = e.op('Identity', [g]);
    gradients[w] = out;
    graph.output.push(makeValueInfo(out, info(w).elemType));
  }
  graph.node.push(...e.nodes);
  graph.initializer.push(...e.initializers);
  return { model: proto, cotangents, gradients, ...(lossInfo ? { loss: lossInfo } : {}) };
}
