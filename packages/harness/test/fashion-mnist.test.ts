import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectResults, getTask, hasFashionMnist, loadImages, loadMnist, runBenchmark } from '@gradmax/harness';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('Fashion-MNIST (Debian dataset-fashion-mnist)', () => {
  it('a missing directory fails with a message naming the Debian package, never a download', () => {
    const before = process.env['GRADMAX_FASHION_MNIST_DIR'];
    process.env['GRADMAX_FASHION_MNIST_DIR'] = path.join(os.tmpdir(), 'no-such-fashion-dir');
    try {
      expect(hasFashionMnist()).toBe(false);
      expect(() => loadImages('fashion-mnist', 'test')).toThrow(/apt-get install dataset-fashion-mnist/);
    } finally {
      if (before === undefined) delete process.env['GRADMAX_FASHION_MNIST_DIR'];
      else process.env['GRADMAX_FASHION_MNIST_DIR'] = before;
    }
  });

  it.skipIf(!hasFashionMnist())('loads 60 000 / 10 000 balanced 28×28 images that differ from MNIST', () => {
    const train = loadImages('fashion-mnist', 'train');
    const test = loadImages('fashion-mnist', 'test');
    expect(train.count).toBe(60000);
    expect(test.count).toBe(10000);
    // Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    const counts = (labels: Uint8Array) => Array.from({ length: 10 }, (_, k) => labels.filter((l) => l === k).length);
    expect(counts(train.labels)).toEqual(Array(10).fill(6000));
    expect(counts(test.labels)).toEqual(Array(10).fill(1000));
    let min = Infinity, max = -Infinity;
    for (const v of test.images) { if (v < min) min = v; if (v > max) max = v; }
    expect(min).toBe(0);
    expect(max).toBe(1);
    const mnist = loadMnist('test');
    expect(Array.from(test.images.subarray(0, 784))).not.toEqual(Array.from(mnist.images.subarray(0, 784)));
  });

  it.skipIf(!hasFashionMnist())('fashion-mnist-mlp runs end to end (tiny) and its card names the data set', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'gradmax-fashion-'));
    dirs.push(out);
    const s = await runBenchmark({ tasks: ['fashion-mnist-mlp'], arms: ['gradmax', 'small'], seeds: [0], preset: 'tiny', backend: 'wasm', workers: 0, out });
    expect(s.failures).toEqual([]);
    const results = (await collectResults([out])).results;
    const g = results.find((r) => r.arm === 'gradmax')!;
    expect(g.summary!['finalWidth']).toBe(32);
    expect(g.summary!['finalTestAccuracy']).toBeGreaterThan(0.2);
    const task = getTask('fashion-mnist-mlp');
    expect(task.describe(task.resolveConfig('tiny'))).toContain("Fashion-MNIST from Debian's `dataset-fashion-mnist`");
    expect(getTask('fashion-mnist-cnn').description).toContain('Fashion-MNIST');
  });
});
