/**
 * Test helper: checks a gradient model against central finite differences of the forward model
 * (directional derivatives along random directions).
 */
import { toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import { buildVjpModel } from '../vjp.js';

export interface FdInput {
  name: string;
  dims: number[];
  values: Float64Array;
}

export interface FdResult {
  dtype: 'float64' | 'float32';
  worst: number;
  checks: { analytic: number; numeric: number }[];
}

function tensor(dtype: 'float64' | 'float32', values: ArrayLike<number>, dims: number[]): ort.Tensor {
  return dtype === 'float64' ? new ort.Tensor('float64', Float64Array.from(values), dims) : new ort.Tensor('float32', Float32Array.from(values), dims);
}

async function session(model: ModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toBinary(ModelProtoSchema, model), { graphOptimizationLevel: 'disabled' });
}

/**
 * Runs `Σ_o ⟨v_o, o(x)⟩` forward and its gradient model; compares ⟨∇, d⟩ with the central difference along
 * `directions` random directions d. Returns the worst relative error |a − n| / max(|a|, |n|, floor).
 */
export async function checkAgainstFiniteDifferences(
  model: ModelProto,
  dtype: 'float64' | 'float32',
  inputs: FdInput[],
  wrt: string[],
  options: { eps: number; seed: number; directions?: number; floor?: number },
): Promise<FdResult> {
  const rng = new Rng(options.seed);
  const vjp = await buildVjpModel(model, { wrt });
  const gradSession = await session(vjp.model);
  const fwdSession = await session(model);
  const outputs = Object.keys(vjp.cotangents);
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of inputs) feeds[i.name] = tensor(dtype, i.values, i.dims);
  const first = await fwdSession.run(feeds);
  const cot: Record<string, Float64Array> = {};
  for (const o of outputs) {
    const y = first[o]!;
    cot[o] = rng.fillNormal(new Float64Array(y.data.length));
    feeds[vjp.cotangents[o]!] = tensor(dtype, cot[o]!, [...y.dims]);
  }
  const res = await gradSession.run(feeds);
  const grads: Record<string, ArrayLike<number>> = {};
  for (const w of wrt) grads[w] = res[vjp.gradients[w]!]!.data as ArrayLike<number>;
  const objective = async (shift: Record<string, Float64Array>, scale: number) => {
    const f: Record<string, ort.Tensor> = {};
    for (const i of inputs) {
      const d = shift[i.name];
      f[i.name] = tensor(dtype, d ? i.values.map((v, k) => v + scale * d[k]!) : i.values, i.dims);
    }
    const out = await fwdSession.run(f);
    let s = 0;
    for (const o of outputs) {
      const y = out[o]!.data as ArrayLike<number>;
      for (let k = 0; k < y.length; k++) s += cot[o]![k]! * y[k]!;
    }
    return s;
  };
  const checks: { analytic: number; numeric: number }[] = [];
  let worst = 0;
  for (let k = 0; k < (options.directions ?? 3); k++) {
    const shift: Record<string, Float64Array> = {};
    let analytic = 0;
    for (const w of wrt) {
      const inp = inputs.find((i) => i.name === w)!;
      const d = rng.fillNormal(new Float64Array(inp.values.length));
      shift[w] = d;
      const g = grads[w]!;
      if (g.length !== d.length) throw new Error(`gradient of ${w} has ${g.length} elements, expected ${d.length}`);
      for (let j = 0; j < d.length; j++) analytic += g[j]! * d[j]!;
    }
    const numeric = ((await objective(shift, options.eps)) - (await objective(shift, -options.eps))) / (2 * options.eps);
    checks.push({ analytic, numeric });
    worst = Math.max(worst, Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), options.floor ?? 1e-3));
  }
  await gradSession.release();
  await fwdSession.release();
  return { dtype, worst, checks };
}

export const DOUBLE = TensorProto_DataType.DOUBLE;
export const FLOAT = TensorProto_DataType.FLOAT;
