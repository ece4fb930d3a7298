/**
 * Small helpers over onnx-buf's generated types used by the probe builder: attribute access and value infos.
 * Node, tensor and value-info construction come from the model IR (`../model.js`).
 * @packageDocumentation
 */
import type { ModelProto, ValueInfoProto } from 'onnx-buf';
import { valueInfoElemType, valueInfoShape } from '../model.js';

/** Marks a number as a FLOAT attribute (plain integral numbers become INT). */
export function float(value: number): { float: number } {
  return { float: value };
}

/** Element type and dims (numbers static, strings symbolic, null unknown) of a tensor value-info. */
export function valueInfoType(vi: ValueInfoProto): { elemType: number; dims: (number | string | null)[] | undefined } | undefined {
  const elemType = valueInfoElemType(vi);
  if (elemType === undefined) return undefined;
  const dims = valueInfoShape(vi)?.map((d) => (d === undefined ? null : d));
  return { elemType, dims };
}

/** Version of the default-domain opset imported by `model` (0 when absent). */
export function defaultOpset(model: ModelProto): number {
  const imp = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return imp ? Number(imp.version) : 0;
}
