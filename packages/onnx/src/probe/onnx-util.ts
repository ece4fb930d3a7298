/**
 * Small helpers over onnx-buf's generated types used by the probe builder: attribute access and value infos.
 * Node, tensor and value-info construction come from the model IR (`../model.js`).
 * @packageDocumentation
 */
import type { AttributeProto, ModelProto, NodeProto, ValueInfoProto } from 'onnx-buf';
import { valueInfoElemType, valueInfoShape } from '../model.js';

/** Marks a number as a FLOAT attribute (plain integral numbers become INT). */
export function float(value: number): { float: number } {
  return { float: value };
}

/** The attribute `name` of `node`, if present. */
export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number (or `fallback`). */
export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? Number(a.i) : fallback;
}

/** A FLOAT attribute (or `fallback`). */
export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? a.f : fallback;
}

/** An INTS attribute as numbers (or `fallback`). */
export function attrInts(node: NodeProto, name: string, fallback: number[] | undefined): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map((v) => Number(v)) : fallback;
}

/** A STRING attribute (or `fallback`). */
export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
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
