/**
 * Test helper: a tiny builder for ONNX models on top of the IR's node/tensor/value-info builders.
 */
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { makeNode, makeTensor, makeValueInfo } from '../../model.js';
import type { AttributeValue } from '../../model.js';

export class GraphBuilder {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  inputs: ValueInfoProto[] = [];
  outputs: ValueInfoProto[] = [];
  private n = 0;
  constructor(readonly dtype: number = TensorProto_DataType.FLOAT) {}

  input(name: string, dims: (number | string)[], dtype = this.dtype): string {
    this.inputs.push(makeValueInfo(name, dtype, dims));
    return name;
  }

  init(dims: number[], values: ArrayLike<number>, name = `w${this.n++}`, dtype = this.dtype): string {
    this.inits.push(makeTensor(name, dtype, dims, values));
    return name;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, outputs = 1, name?: string): string[] {
    const id = this.n++;
    const outs = Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}${id}_${i}`);
    this.nodes.push(makeNode(opType, inputs, outs, attrs, name ?? `${opType}_${id}`));
    return outs;
  }

  op1(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, name?: string): string {
    return this.op(opType, inputs, attrs, 1, name)[0]!;
  }

  output(name: string, dims?: (number | string)[], dtype = this.dtype): void {
    this.outputs.push(makeValueInfo(name, dtype, dims));
  }

  build(opset = 17): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: 8n,
      producerName: 'gradmax-test',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
      graph: create(GraphProtoSchema, { name: 'g', node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs }),
    });
  }
}
