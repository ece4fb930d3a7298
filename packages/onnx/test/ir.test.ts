import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { create, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { GradmaxError, Rng } from '@gradmax/core';
import { ExternalDataError, FileAccessError, OnnxFormatError, halfToNumber, loadModel, numberToHalf, saveModel, serializeChunks, serializeModel } from '@gradmax/onnx';
import { F16, F32, F64, GraphBuilder, tmpDir } from './helpers.js';

function mlp(dtype = F32, typed = false) {
  const b = new GraphBuilder(new Rng(3), dtype, typed);
  const x = b.input('x', ['N', 4]);
  const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])]);
  const r = b.op('Relu', [h]);
  const y = b.op('MatMul', [r, b.constantWeight([5, 3])]);
  b.output(y, ['N', 3]);
  return b;
}

describe('fp16', () => {
  it('round-trips every non-NaN half bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = halfToNumber(bits);
      if (Number.isNaN(v)) continue;
      expect(numberToHalf(v)).toBe(bits);
    }
  });
  it('rounds like numpy float16 (round to nearest even)', () => {
    const rng = new Rng(7);
    const values = Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? rng.normal() * 1e-5 : i % 3 === 1 ? rng.normal() * 100 : rng.normal() * 1e5));
    values.push(65504, 65520, 65519.99, 2 ** -25, 2 ** -24 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11);
    let expected: number[];
    try {
      const out = execFileSync('python3', ['-c', 'import sys,json,numpy as np; v=np.array(json.load(sys.stdin),dtype=np.float64).astype(np.float32).astype(np.float16); print(json.dumps(v.view(np.uint16).tolist()))'], {
        input: JSON.stringify(values),
        encoding: 'utf8',
      });
      expected = JSON.parse(out) as number[];
    } catch {
      console.warn('python3 with numpy not available: skipping the numpy fp16 comparison');
      return;
    }
    expect(values.map(numberToHalf)).toEqual(expected);
  });
});

describe('load / save', () => {
  for (const [label, dtype, typed] of [
    ['FLOAT raw', F32, false],
    ['FLOAT typed', F32, true],
    ['FLOAT16 raw', F16, false],
    ['FLOAT16 typed', F16, true],
    ['DOUBLE typed', F64, true],
  ] as const) {
    it(`round-trips byte-identically (${label})`, () => {
      const model = mlp(dtype, typed).model();
      model.proto.docString = 'doc';
      model.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'k', value: 'v' }));
      const bytes = toBinary(ModelProtoSchema, model.proto);
      expect(serializeModel(model)).toEqual(bytes);
      const dir = tmpDir();
      const file = path.join(dir, 'm.onnx');
      fs.writeFileSync(file, bytes);
      const loaded = loadModel(file);
      const out = path.join(dir, 'out.onnx');
      saveModel(loaded, out);
      expect(new Uint8Array(fs.readFileSync(out))).toEqual(bytes);
      expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'out.onnx']);
      // weights readable in their own type
      const w = loaded.weight(loaded.graph.node[0]!.input[1]!)!;
      expect(w.kind).toBe('initializer');
      expect(loaded.readTensor(w.tensor).dataType).toBe(dtype);
      const c = loaded.weight(loaded.graph.node.find((n) => n.opType === 'MatMul')!.input[1]!)!;
      expect(c.kind).toBe('constant');
      expect(loaded.readNumbers(c.tensor).length).toBe(15);
    });
  }

  it('keeps unknown fields and large raw tensors byte-identical (chunked writer)', () => {
    const b = new GraphBuilder(new Rng(4));
    const x = b.input('x', [1, 300]);
    const y = b.op('MatMul', [x, b.weight([300, 100])]);
    b.output(y, [1, 100]);
    const model = b.model();
    const plain = toBinary(ModelProtoSchema, model.proto);
    // append an unknown field (number 99, varint 5) to the model
    const withUnknown = new Uint8Array([...plain, 0x98, 0x06, 0x05]);
    const loaded = loadModel(withUnknown);
    const chunks = serializeChunks(loaded.proto);
    expect(chunks.length).toBeGreaterThan(3);
    expect(serializeModel(loaded)).toEqual(withUnknown);
  });

  it('refuses to overwrite the input and writes atomically', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, serializeModel(mlp().model()));
    const before = fs.readFileSync(file);
    const model = loadModel(file);
    expect(() => saveModel(model, file)).toThrow(FileAccessError);
    fs.symlinkSync(file, path.join(dir, 'link.onnx'));
    expect(() => saveModel(model, path.join(dir, 'link.onnx'))).toThrow(FileAccessError);
    expect(fs.readFileSync(file)).toEqual(before);
    expect(() => saveModel(model, path.join(dir, 'missing', 'o.onnx'))).toThrow(FileAccessError);
    expect(fs.readdirSync(dir).sort()).toEqual(['link.onnx', 'm.onnx']);
  });

  it('wraps garbage in OnnxFormatError and missing files in FileAccessError', () => {
    expect(() => loadModel(new Uint8Array([1, 2, 3, 4, 5]))).toThrow(OnnxFormatError);
    expect(() => loadModel(new Uint8Array([]))).toThrow(OnnxFormatError);
    expect(() => loadModel('/nonexistent/m.onnx')).toThrow(FileAccessError);
  });
});

describe('external data', () => {
  function external(dir: string, location = 'w.bin', dataFile = path.join(dir, 'w.bin')) {
    const model = mlp().model();
    const t = model.graph.initializer[0]!;
    const bytes = model.tensorBytes(t).slice();
    fs.writeFileSync(dataFile, Buffer.concat([Buffer.alloc(16), Buffer.from(bytes)]));
    t.rawData = new Uint8Array(0);
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: location }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: '16' }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.length) }),
    ];
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, serializeModel(model));
    return { file, bytes, name: t.name };
  }

  it('reads external data and writes it beside the output', () => {
    const dir = tmpDir();
    const { file, bytes, name } = external(dir);
    const model = loadModel(file);
    const t = model.graph.initializer.find((i) => i.name === name)!;
    expect(model.tensorBytes(t)).toEqual(bytes);
    const outDir = tmpDir();
    saveModel(model, path.join(outDir, 'o.onnx'));
    expect(fs.readdirSync(outDir).sort()).toEqual(['o.onnx', 'o.onnx.data']);
    const again = loadModel(path.join(outDir, 'o.onnx'));
    const t2 = again.graph.initializer.find((i) => i.name === name)!;
    expect(t2.dataLocation).toBe(TensorProto_DataLocation.EXTERNAL);
    expect(again.tensorBytes(t2)).toEqual(bytes);
  });

  it('rejects absolute, ".." and symlinked-outside locations', () => {
    const outside = tmpDir();
    const dir1 = tmpDir();
    const a = external(dir1, path.join(outside, 'w.bin'), path.join(outside, 'w.bin'));
    expect(() => loadModel(a.file)).toThrow(/absolute/);
    const dir2 = tmpDir();
    fs.mkdirSync(path.join(dir2, 'sub'));
    const b = external(path.join(dir2, 'sub'), '../w.bin', path.join(dir2, 'w.bin'));
    expect(() => loadModel(b.file)).toThrow(/"\.\."/);
    const dir3 = tmpDir();
    fs.writeFileSync(path.join(outside, 'real.bin'), Buffer.alloc(4096));
    fs.symlinkSync(path.join(outside, 'real.bin'), path.join(dir3, 'link.bin'));
    const m = mlp().model();
    const t = m.graph.initializer[0]!;
    t.rawData = new Uint8Array(0);
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: 'link.bin' }), create(StringStringEntryProtoSchema, { key: 'length', value: '80' })];
    fs.writeFileSync(path.join(dir3, 'm.onnx'), serializeModel(m));
    expect(() => loadModel(path.join(dir3, 'm.onnx'))).toThrow(/outside the model folder/);
    const err = (() => {
      try {
        loadModel(path.join(dir3, 'm.onnx'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ExternalDataError);
    expect(err).toBeInstanceOf(GradmaxError);
  });

  it('rejects ranges outside the data file and loading from bytes without baseDir', () => {
    const dir = tmpDir();
    const { file } = external(dir);
    fs.truncateSync(path.join(dir, 'w.bin'), 20);
    expect(() => loadModel(file)).toThrow(ExternalDataError);
    expect(() => loadModel(new Uint8Array(fs.readFileSync(file)))).toThrow(/baseDir/);
  });
});
