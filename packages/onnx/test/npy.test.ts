import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, ShapeMismatchError } from '@gradmax/core';
import { NpyFormatError, encodeNpy, parseNpy, readNpy, statisticsFromNpy, writeNpy } from '@gradmax/onnx';
import { tmpDir } from './helpers.js';

function numpy(script: string, cwd: string): boolean {
  try {
    execFileSync('python3', ['-c', `import numpy as np\n${script}`], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    return true;
  } catch {
    console.warn('python3 with numpy not available: skipping the numpy cross-check');
    return false;
  }
}

describe('.npy', () => {
  it('reads what numpy writes (float32/float64, little/big endian, v1/v2 headers)', () => {
    const dir = tmpDir();
    const ok = numpy(
      [
        'a = np.arange(12, dtype=np.float64).reshape(3, 4) / 7',
        "np.save('f8.npy', a)",
        "np.save('f4.npy', a.astype(np.float32))",
        "np.save('be.npy', a.astype('>f8'))",
        "np.lib.format.write_array(open('v2.npy', 'wb'), a, version=(2, 0))",
        "np.save('i8.npy', np.arange(5, dtype=np.int64))",
        "np.save('scalar.npy', np.float64(2.5))",
        "np.save('fortran.npy', np.asfortranarray(a))",
      ].join('\n'),
      dir,
    );
    if (!ok) return;
    const expected = Array.from({ length: 12 }, (_, i) => i / 7);
    for (const f of ['f8.npy', 'be.npy', 'v2.npy']) {
      const a = readNpy(path.join(dir, f));
      expect(a.shape, f).toEqual([3, 4]);
      expect(Array.from(a.data as Float64Array), f).toEqual(expected);
    }
    const f4 = readNpy(path.join(dir, 'f4.npy'));
    expect(Array.from(f4.data as Float32Array)).toEqual(expected.map(Math.fround));
    expect(Array.from(readNpy(path.join(dir, 'i8.npy')).data as BigInt64Array)).toEqual([0n, 1n, 2n, 3n, 4n]);
    expect(readNpy(path.join(dir, 'scalar.npy')).shape).toEqual([]);
    expect(() => readNpy(path.join(dir, 'fortran.npy'))).toThrow(/Fortran-order/);
  });

  it('numpy reads what we write', () => {
    const dir = tmpDir();
    const data = new Rng(1).fillNormal(new Float32Array(6));
    writeNpy(path.join(dir, 'w.npy'), data, [2, 3]);
    writeNpy(path.join(dir, 'v.npy'), Float64Array.from([1, 2, 3]), [3]);
    const ok = numpy(
      ["a = np.load('w.npy'); assert a.dtype == np.float32 and a.shape == (2, 3)", `assert np.array_equal(a.ravel(), np.array(${JSON.stringify(Array.from(data))}, dtype=np.float32))`, "v = np.load('v.npy'); assert v.shape == (3,) and v.tolist() == [1, 2, 3]"].join('\n'),
      dir,
    );
    if (ok) expect(fs.readdirSync(dir).sort()).toEqual(['v.npy', 'w.npy']);
    // header is padded to a multiple of 64 bytes
    const bytes = encodeNpy(data, [2, 3]);
    expect((bytes.length - data.byteLength) % 64).toBe(0);
    expect(Array.from(parseNpy(bytes).data as Float32Array)).toEqual(Array.from(data));
  });

  it('rejects malformed files with NpyFormatError', () => {
    const good = encodeNpy(Float64Array.from([1, 2, 3, 4]), [2, 2]);
    expect(() => parseNpy(good.subarray(0, good.length - 1))).toThrow(NpyFormatError);
    expect(() => parseNpy(good.subarray(0, 8))).toThrow(NpyFormatError);
    expect(() => parseNpy(new Uint8Array(20))).toThrow(/bad magic/);
    const text = new TextDecoder('latin1').decode(good).replace("'<f8'", "'<c8'");
    expect(() => parseNpy(Uint8Array.from(text, (c) => c.charCodeAt(0)))).toThrow(/unsupported dtype/);
  });
});

describe('statistics from .npy', () => {
  it('reads M, samples and count; shape errors name the site and file', () => {
    const dir = tmpDir();
    const rng = new Rng(2);
    const m = rng.fillNormal(new Float64Array(3 * 4));
    writeNpy(path.join(dir, 'M.npy'), m, [3, 4]);
    writeNpy(path.join(dir, 'Mt.npy'), m, [4, 3]);
    writeNpy(path.join(dir, 'h.npy'), rng.fillNormal(new Float32Array(5 * 4)), [5, 4]);
    writeNpy(path.join(dir, 'g.npy'), rng.fillNormal(new Float32Array(5 * 3)), [5, 3]);
    const target = { name: 'a->b', fanIn: 4, fanOut: 3 };
    const s = statisticsFromNpy(target, { moment: path.join(dir, 'M.npy'), h: path.join(dir, 'h.npy'), g: path.join(dir, 'g.npy') });
    expect(s.moment.shape).toEqual([3, 4]);
    expect(Array.from(s.moment.data)).toEqual(Array.from(m));
    expect(s.count).toBe(5);
    expect(s.samples!.weight).toBeCloseTo(0.2);
    let err: unknown;
    try {
      statisticsFromNpy(target, { moment: path.join(dir, 'Mt.npy') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect((err as Error).message).toMatch(/site "a->b" growth matrix M from ".*Mt.npy" \(it looks transposed\): expected shape \[3, 4\], got \[4, 3\]/);
    expect(() => statisticsFromNpy(target, { moment: path.join(dir, 'M.npy'), h: path.join(dir, 'h.npy') })).toThrow(/both h and g/);
  });
});
