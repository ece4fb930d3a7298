/**
 * The one mapping between ONNX element types and onnxruntime tensor type names (internal), shared by the probe
 * and verification.
 */
import { TensorProto_DataType } from 'onnx-buf';
import type { Tensor } from 'onnxruntime-node';

const ORT_TYPE_NAMES: ReadonlyMap<number, Tensor.Type> = new Map<number, Tensor.Type>([
  [TensorProto_DataType.FLOAT, 'float32'],
  [TensorProto_DataType.DOUBLE, 'float64'],
  [TensorProto_DataType.FLOAT16, 'float16'],
  [TensorProto_DataType.INT64, 'int64'],
  [TensorProto_DataType.INT32, 'int32'],
  [TensorProto_DataType.BOOL, 'bool'],
  [TensorProto_DataType.UINT8, 'uint8'],
  [TensorProto_DataType.INT8, 'int8'],
]);

const ONNX_ELEM_TYPES: ReadonlyMap<string, number> = new Map([...ORT_TYPE_NAMES].map(([elem, name]) => [name, elem]));

/** onnxruntime tensor type name of an ONNX element type, or `undefined` when this package does not map it. */
export function ortTypeName(elemType: number): Tensor.Type | undefined {
  return ORT_TYPE_NAMES.get(elemType);
}

/** ONNX element type of an onnxruntime tensor type name, or `undefined` when this package does not map it. */
export function onnxElemType(ortType: string): number | undefined {
  return ONNX_ELEM_TYPES.get(ortType);
}
