/**
 * Attribute readers for `NodeProto`s.
 * @packageDocumentation
 */
import { AttributeProto_AttributeType, type AttributeProto, type NodeProto } from 'onnx-buf';

/** The attribute named `name`, if present. */
export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number (or `fallback`). */
export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && (a.type === AttributeProto_AttributeType.INT || a.type === AttributeProto_AttributeType.UNDEFINED) ? Number(a.i) : fallback;
}

/** A FLOAT attribute (or `fallback`). */
export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && (a.type === AttributeProto_AttributeType.FLOAT || a.type === AttributeProto_AttributeType.UNDEFINED) ? a.f : fallback;
}

/** An INTS attribute as numbers (or `undefined`). */
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? a.ints.map((v) => Number(v)) : undefined;
}

/** A STRING attribute decoded as UTF-8 (or `fallback`). */
export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = attr(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

/** Display name of a node: its name, or `OpType(first output)` when unnamed. */
export function nodeLabel(node: NodeProto): string {
  return node.name || `${node.opType}(${node.output[0] ?? ''})`;
}
