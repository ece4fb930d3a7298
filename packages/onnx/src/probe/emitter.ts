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

  /**
   * Emit Conv forms that onnxruntime's WebGPU provider (1.30) computes correctly: a grouped Conv with a channel
   * multiplier above 1 (wrong there) becomes a Gather of the input channels and a Conv with one output per group.
   * Off for the cpu provider (the gathered input is larger). Set before emitting.
   */
  gpuSafeConv = false;

  /** Dims of the constants emitted here, by name. */
  private readonly constantDims = new Map<string, readonly number[]>();

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
    if (opType === 'Conv' && outputs === 1) {
      const out = this.paddedOneByOne(inputs, attrs) ?? (this.gpuSafeConv ? this.groupedWithMultiplier(inputs, attrs) : undefined);
      if (out) return [out];
    }
    const outs = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push(makeNode(opType, inputs, outs, attrs, this.fresh(`${opType}_node`)));
    return outs;
  }

  /**
   * A 1×1 Conv with padding, emitted without pads on the Conv: onnxruntime's WebGPU provider (1.30) computes a 1×1 Conv
   * whose pads sit only at the end (bottom/right) wrongly. Without bias and with stride 1 the zero border is padded on
   * the output (Conv then Pad: onnxruntime's Pad→Conv fusion cannot fold it back); otherwise on the input. Both are
   * the same function on every provider.
   */
  private paddedOneByOne(inputs: string[], attrs: Record<string, AttrValue>): string | undefined {
    const kernel = attrs['kernel_shape'];
    const pads = attrs['pads'];
    if (!Array.isArray(kernel) || !Array.isArray(pads) || !kernel.every((k) => k === 1) || !pads.some((p) => p !== 0)) return undefined;
    const d = kernel.length;
    const border = this.ints([0, 0, ...(pads as number[]).slice(0, d), 0, 0, ...(pads as number[]).slice(d)]);
    const unpadded = { ...attrs, pads: new Array<number>(2 * d).fill(0) };
    const strides = attrs['strides'];
    const unitStride = !Array.isArray(strides) || strides.every((v) => v === 1);
    if (inputs.length === 2 && unitStride) return this.op('Pad', [this.op('Conv', inputs, unpadded), border]);
    return this.op('Conv', [this.op('Pad', [inputs[0]!, border]), ...inputs.slice(1)], unpadded);
  }

  /**
   * Conv(x, W, group g) with W `[M, C/g, kh, kw]` a constant of this emitter and M/g > 1 equals
   * Conv(Gather(x, idx, axis 1), W, group M) where output o reads the C/g channels of its group ⌊o·g/M⌋.
   */
  private groupedWithMultiplier(inputs: string[], attrs: Record<string, AttrValue>): string | undefined {
    const group = typeof attrs['group'] === 'number' ? attrs['group'] : 1;
    const dims = this.constantDims.get(inputs[1]!);
    if (group <= 1 || !dims || dims.length !== 4) return undefined;
    const [m, perGroup] = dims as [number, number];
    const multiplier = m / group;
    if (!(multiplier > 1) || !Number.isInteger(multiplier)) return undefined;
    const idx: number[] = [];
    for (let o = 0; o < m; o++) for (let i = 0; i < perGroup; i++) idx.push(Math.floor(o / multiplier) * perGroup + i);
    const gathered = this.op('Gather', [inputs[0]!, this.ints(idx)], { axis: 1 });
    return this.op('Conv', [gathered, ...inputs.slice(1)], { ...attrs, group: m });
  }

  /** Emits a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.ops(opType, inputs, attrs, 1)[0]!;
  }

  /** Adds a constant initializer and returns its name. */
  constant(dataType: number, dims: readonly number[], values: ArrayLike<number>, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(makeTensor(name, dataType, dims, values));
    this.constantDims.set(name, dims.slice());
    return name;
  }

  /** Adds a constant initializer holding `buffer`'s elements as they are (no conversion) and returns its name. */
  constantBuffer(buffer: TensorBuffer, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(makeTensor(name, buffer.dataType, buffer.dims, buffer));
    this.constantDims.set(name, buffer.dims.slice());
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
