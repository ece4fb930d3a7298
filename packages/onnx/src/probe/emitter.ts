/**
 * Appends ONNX nodes and initializers to a graph under fresh names; the probe builder's gradient and
 * statistics nodes are all emitted through it.
 * @packageDocumentation
 */
import { TensorProto_DataType } from 'onnx-buf';
import type { NodeProto, TensorProto } from 'onnx-buf';
import { makeNode, makeTensor } from '../model.js';
import type { AttributeValue as AttrValue } from '../model.js';
import type { TensorBuffer } from '../tensor.js';

/** Collects new nodes and initializers with names that do not collide with the graph's. */
export class Emitter {
  /** Nodes emitted so far, in order. */
  readonly nodes: NodeProto[] = [];
  /** Initializers emitted so far. */
  readonly initializers: TensorProto[] = [];
  private readonly used: Set<string>;
  private counter = 0;
  private readonly shapeCache = new Map<string, string>();
  private readonly scalarCache = new Map<string, string>();
  private readonly memoCache = new Map<string, string>();

  /**
   * @param usedNames - every tensor and node name already in the graph
   * @param opset - default-domain opset version of the model
   * @param prefix - prefix of generated names
   */
  constructor(usedNames: Iterable<string>, readonly opset: number, private readonly prefix = 'gm_probe/') {
    this.used = new Set(usedNames);
  }

  /** A fresh tensor/node name. */
  fresh(hint: string): string {
    for (;;) {
      const name = `${this.prefix}${hint}_${this.counter++}`;
      if (!this.used.has(name)) {
        this.used.add(name);
        return name;
      }
    }
  }

  /** Emits a node with `outputs` outputs and returns their names. */
  ops(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push(makeNode(opType, inputs, outs, attrs, this.fresh(`${opType}_node`)));
    return outs;
  }

  /** Emits a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.ops(opType, inputs, attrs, 1)[0]!;
  }

  /** Adds a constant initializer and returns its name. */
  constant(dataType: number, dims: readonly number[], values: ArrayLike<number>, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(makeTensor(name, dataType, dims, values));
    return name;
  }

  /** Adds a constant initializer holding `buffer`'s elements as they are (no conversion) and returns its name. */
  constantBuffer(buffer: TensorBuffer, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(makeTensor(name, buffer.dataType, buffer.dims, buffer));
    return name;
  }

  /** The tensor `make` emits, emitted once per `key` (later calls with the same key return the first name). */
  memo(key: string, make: () => string): string {
    const cached = this.memoCache.get(key);
    if (cached !== undefined) return cached;
    const name = make();
    this.memoCache.set(key, name);
    return name;
  }

  /** A 1-D INT64 constant. */
  ints(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    const cached = this.scalarCache.get(key);
    if (cached) return cached;
    const name = this.constant(TensorProto_DataType.INT64, [values.length], values, 'ints');
    this.scalarCache.set(key, name);
    return name;
  }

  /** A 0-d constant of the given element type (cached). */
  scalar(value: number, dataType: number): string {
    const key = `${dataType}:${value}`;
    const cached = this.scalarCache.get(key);
    if (cached) return cached;
    const name = this.constant(dataType, [], [value], 'scalar');
    this.scalarCache.set(key, name);
    return name;
  }

  /** `Shape(x)` (cached per tensor). */
  shape(x: string): string {
    const cached = this.shapeCache.get(x);
    if (cached) return cached;
    const s = this.op('Shape', [x]);
    this.shapeCache.set(x, s);
    return s;
  }

  /** `ReduceSum(x, axes, keepdims)` in the form of the model's opset (axes as input from opset 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op('ReduceSum', [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  /** Sum of all elements of `x` as a 0-d tensor. */
  reduceAll(x: string): string {
    return this.op('ReduceSum', [x], { keepdims: 0 });
  }

  /** `Reshape(x, dims)` with a constant target shape. */
  reshape(x: string, dims: readonly number[]): string {
    return this.op('Reshape', [x, this.ints(dims)]);
  }

  /** `Transpose(x, perm)`. */
  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: [...perm] });
  }

  /** Zeros shaped like tensor `like`, of element type `dataType`. */
  zerosLike(like: string, dataType: number): string {
    return this.op('ConstantOfShape', [this.shape(like)], { value: makeTensor('', dataType, [1], [0]) });
  }
}
