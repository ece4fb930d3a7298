import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng } from '../index.js';
import { matmulTransB, svd, symmetricEigen, topKSvd } from './index.js';

const script = `
import json, sys
import numpy as np
m, n = int(sys.argv[2]), int(sys.argv[3])
a = np.fromfile(sys.argv[1], dtype='<f8').reshape(m, n)
u, s, vt = np.linalg.svd(a, full_matrices=False)
w, v = np.linalg.eigh(a @ a.T)
print(json.dumps({'u': u.tolist(), 's': s.tolist(), 'v': vt.T.tolist(), 'w': w[::-1].tolist(), 'ev': v[:, ::-1].tolist()}))
`;

function numpyAvailable(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = numpyAvailable();
if (!available) console.warn('numpy cross-check skipped: python3 with numpy is not available');

/** ±1 per column so that, once multiplied in, each column's largest-magnitude entry is positive (the library's convention). */
function signFlips(x: number[][]): number[] {
  return x[0]!.map((_, j) => {
    let best = 0;
    for (let i = 1; i < x.length; i++) if (Math.abs(x[i]![j]!) > Math.abs(x[best]![j]!)) best = i;
    return x[best]![j]! < 0 ? -1 : 1;
  });
}

describe.skipIf(!available)('cross-check against numpy (LAPACK)', () => {
  it('svd, symmetricEigen and topKSvd match numpy.linalg.svd / eigh on a fixed matrix', () => {
    const m = 12;
    const n = 30;
    const a = new Matrix(m, n, new Rng(42).fillNormal(new Float64Array(m * n)));
    const dir = mkdtempSync(join(tmpdir(), 'gradmax-numpy-'));
    try {
      const file = join(dir, 'a.f64');
      writeFileSync(file, new Uint8Array(a.data.buffer));
      const ref = JSON.parse(execFileSync('python3', ['-c', script, file, String(m), String(n)], { encoding: 'utf8' })) as {
        u: number[][]; s: number[]; v: number[][]; w: number[]; ev: number[][];
      };
      const ours = svd(a);
      const flips = signFlips(ref.u);
      for (let j = 0; j < m; j++) {
        expect(Math.abs(ours.s[j]! - ref.s[j]!) / ref.s[0]!).toBeLessThan(1e-13);
        for (let i = 0; i < m; i++) expect(Math.abs(ours.u.get(i, j) - flips[j]! * ref.u[i]![j]!)).toBeLessThan(1e-11);
        for (let i = 0; i < n; i++) expect(Math.abs(ours.v.get(i, j) - flips[j]! * ref.v[i]![j]!)).toBeLessThan(1e-11);
      }
      const eig = symmetricEigen(matmulTransB(a, a));
      const eigFlips = signFlips(ref.ev);
      for (let j = 0; j < m; j++) {
        expect(Math.abs(eig.values[j]! - ref.w[j]!) / ref.w[0]!).toBeLessThan(1e-13);
        for (let i = 0; i < m; i++) expect(Math.abs(eig.vectors.get(i, j) - eigFlips[j]! * ref.ev[i]![j]!)).toBeLessThan(1e-11);
      }
      const top = topKSvd(a, 4);
      for (let j = 0; j < 4; j++) {
        expect(Math.abs(top.s[j]! - ref.s[j]!) / ref.s[0]!).toBeLessThan(1e-12);
        for (let i = 0; i < m; i++) expect(Math.abs(top.u.get(i, j) - flips[j]! * ref.u[i]![j]!)).toBeLessThan(1e-10);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
