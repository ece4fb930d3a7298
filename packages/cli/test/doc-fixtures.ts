/**
 * Fixture files the command lines in the docs refer to: `model.onnx` (an MLP with sites `fc1->fc2` and
 * `fc2->fc3`, symbolic batch `batch`), `x.npy` (inputs) and `y.npy` (integer class labels).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '@gradmax/core';
import { encodeNpy, serializeModel } from '@gradmax/onnx';
import { GraphBuilder } from '../../onnx/test/helpers.js';

/** Writes model.onnx, x.npy and y.npy into `dir`. */
export function writeDocFixtures(dir: string, seed = 3): void {
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', ['batch', 6]);
  const h1 = b.op('Relu', [b.op('Gemm', [x, b.weight([6, 8]), b.weight([8])], {}, 1, 'fc1')]);
  const h2 = b.op('Relu', [b.op('Gemm', [h1, b.weight([8, 8]), b.weight([8])], {}, 1, 'fc2')]);
  const y = b.op('Gemm', [h2, b.weight([8, 3]), b.weight([3])], {}, 1, 'fc3');
  b.output(y, ['batch', 3]);
  fs.writeFileSync(path.join(dir, 'model.onnx'), serializeModel(b.model()));
  const rng = new Rng(seed + 1);
  const n = 64;
  fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(Float32Array.from({ length: n * 6 }, () => rng.normal()), [n, 6]));
  fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(Float64Array.from({ length: n }, () => rng.int(3)), [n]));
}
