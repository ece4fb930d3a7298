/** Test helpers: build small ONNX models with onnx-buf, run them, check them with Debian's python3-onnx. */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from 'onnx-buf';
import { afterAll } from 'vitest';
import { Rng } from '@gradmax/core';
import { makeNode, makeTensor, makeValueInfo, OnnxModel, type AttributeValue } from '@gradmax/onnx';

export const F32 = TensorProto_DataType.FLOAT;
export const F16 = TensorProto_DataType.FLOAT16;
export const F64 = TensorProto_DataType.DOUBLE;
export const I64 = TensorProto_DataType.INT64;

/** Incrementally builds a graph. */
export class GraphBuilder {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  inputs: ValueInfoProto[] = [];
  outputs: ValueInfoProto[] = [];
  private n = 0;
  constructor(public rng = new Rng(1), public dtype: number = F32, public typed = false) {}
  name(p: string): string {
    return `${p}${this.n++}`;
  }
  input(name: string, shape: (number | string)[], dtype = this.dtype): string {
    this.inputs.push(makeValueInfo(name, dtype, shape));
    return name;
  }
  output(name: string, shape?: (number | string)[], dtype = this.dtype): void {
    this.outputs.push(makeValueInfo(name, dtype, shape));
  }
  /** A random initializer (normal × scale). */
  weight(dims: number[], scale = 0.5, prefix = 'w', dtype = this.dtype): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const v = Array.from({ length: n }, () => this.rng.normal() * scale);
    return this.tensor(dims, v, prefix, dtype);
  }
  tensor(dims: number[], values: number[], prefix = 'c', dtype = this.dtype): string {
    const name = this.name(prefix);
    this.inits.push(makeTensor(name, dtype, dims, values, { typed: this.typed }));
    return name;
  }
  int64(values: number[], prefix = 'shape'): string {
    const name = this.name(prefix);
    this.inits.push(makeTensor(name, I64, [values.length], values));
    return name;
  }
  /** A Constant node holding a random tensor. */
  constantWeight(dims: number[], scale = 0.5): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const v = Array.from({ length: n }, () => this.rng.normal() * scale);
    const out = this.name('const');
    this.nodes.push(makeNode('Constant', [], [out], { value: makeTensor(`${out}_t`, this.dtype, dims, v, { typed: this.typed }) }, this.name('Constant_')));
    return out;
  }
  op(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, nOut = 1, name?: string): string {
    const outs = Array.from({ length: nOut }, () => this.name(opType.toLowerCase() + '_out'));
    this.nodes.push(makeNode(opType, inputs, outs, attrs, name ?? this.name(opType)));
    return outs[0]!;
  }
  model(opset = 13, irVersion = 8): OnnxModel {
    return new OnnxModel(this.proto(opset, irVersion));
  }
  proto(opset = 13, irVersion = 8): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: BigInt(irVersion),
      producerName: 'gradmax-test',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
      graph: create(GraphProtoSchema, { name: 'g', node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs }),
    });
  }
}

/**
 * Moves every initializer's bytes, in order, into the one external data file `dir/location` and points the
 * initializers at it (location, offset, length); the model itself is not written.
 */
export function moveInitializersToExternalFile(model: OnnxModel, dir: string, location: string): void {
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const t of model.graph.initializer) {
    const bytes = Buffer.from(model.tensorBytes(t));
    t.rawData = new Uint8Array(0);
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: location }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.length) }),
    ];
    blobs.push(bytes);
    offset += bytes.length;
  }
  fs.writeFileSync(path.join(dir, location), Buffer.concat(blobs));
}

const tmpDirs: string[] = [];
// Registered while the importing test file is collected, so it runs after that file's tests.
afterAll(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
/** A fresh temporary directory, removed after the test file finishes. */
export function tmpDir(prefix = 'gradmax-onnx-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

let pythonOnnx: boolean | undefined;
/** True when Debian's python3-onnx can be imported by /usr/bin/python3. */
export function hasPythonOnnx(): boolean {
  if (pythonOnnx === undefined) {
    const r = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { encoding: 'utf8' });
    pythonOnnx = r.status === 0;
    if (!pythonOnnx) console.warn('python3-onnx not available (apt-get install python3-onnx): skipping onnx.checker checks');
  }
  return pythonOnnx;
}

/** Runs onnx.checker.check_model(full_check=True) on files in one python process; returns '' on success or the error text per failing file. */
export function checkWithOnnx(...files: string[]): string {
  const script = [
    'import sys, onnx',
    'bad = []',
    'for f in sys.argv[1:]:',
    '    try:',
    '        onnx.checker.check_model(onnx.load(f), full_check=True)',
    '        onnx.checker.check_model(f, full_check=True)',
    '    except Exception as e:',
    '        bad.append(f + ": " + str(e).splitlines()[0] if str(e) else f)',
    'print("\\n".join(bad))',
  ].join('\n');
  const out = execFileSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim();
}

const pending: string[] = [];
/** Queues a file for {@link flushOnnxChecks} (one python process per test file keeps the suite fast). */
export function queueOnnxCheck(file: string): void {
  if (hasPythonOnnx()) pending.push(file);
}
/** Checks every queued file with onnx.checker; returns the failures ('' when all pass or python3-onnx is missing). */
export function flushOnnxChecks(): string {
  if (!pending.length) return '';
  const files = pending.splice(0);
  return checkWithOnnx(...files);
}
