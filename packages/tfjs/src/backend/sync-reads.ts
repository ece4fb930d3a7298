/**
 * The growth path (statistics, widening, optimizer slots) reads tensors synchronously. In Node the webgpu backend
 * cannot (its synchronous read needs `OffscreenCanvas`), and in a browser it reads through a canvas, which tfjs warns
 * is slow and which lost the WebGPU device in headless chromium on SwiftShader (later reads gave zeros or
 * "A valid external Instance reference no longer exists"). So on webgpu the async growth path ({@link withSyncReads},
 * used by `growAsync` and the `GrowthController`) moves the growth step to the cpu backend deliberately, in Node and
 * in browsers: the tensors it reads are downloaded asynchronously first (tfjs then keeps their values on the CPU
 * side, so moving them is synchronous), the step runs on cpu, and the webgpu backend is restored. Training steps
 * stay on the GPU; grown variables move back to it on their first use.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedError } from '@gradmax/core';
import { optimizerSlotVariables } from '../optimizer/slots.js';
import type { Batch } from '../statistics/batch.js';

/** Whether synchronous reads (`dataSync`, `arraySync`, moves to another backend) of the active backend's tensors throw. */
export function syncReadsUnavailable(): boolean {
  return tf.getBackend() === 'webgpu' && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined';
}

/**
 * Throws `UnsupportedError` (from `@gradmax/core`) naming `what` and the async alternative when the active backend cannot read
 * synchronously (webgpu in Node), instead of tfjs's `OffscreenCanvas is not defined` from deep inside the step.
 */
export function assertSyncReads(what: string, alternative: string): void {
  if (syncReadsUnavailable()) {
    throw new UnsupportedError(`${what} reads tensors synchronously, which the webgpu backend cannot do in Node (no OffscreenCanvas): use ${alternative}`, { backend: 'webgpu' });
  }
}

/** The tensors a growth step reads: every model weight, the optimizer's slots, and the given batches. */
export function growthTensors(model: tfl.LayersModel, ...batches: (Batch | undefined)[]): tf.Tensor[] {
  const tensors: tf.Tensor[] = model.weights.map((w) => w.read());
  if (model.optimizer) tensors.push(...optimizerSlotVariables(model.optimizer));
  for (const b of batches) if (b) tensors.push(b.xs, b.ys);
  return tensors;
}

/**
 * Runs `fn`, which reads tensors synchronously. On backends other than webgpu this is just `fn()`. On webgpu (in Node,
 * where synchronous reads are impossible, and in browsers, where they go through a canvas): downloads `tensors` with
 * `await t.data()`, runs `fn` on the cpu backend, then restores webgpu (also when `fn` throws).
 *
 * @throws `UnsupportedError` (from `@gradmax/core`) when `fn` touches a webgpu tensor that was not downloaded (name it in `tensors`).
 */
export async function withSyncReads<T>(tensors: readonly tf.Tensor[], fn: () => T): Promise<T> {
  if (tf.getBackend() !== 'webgpu') return fn();
  const previous = tf.getBackend();
  await Promise.all(tensors.filter((t) => !t.isDisposed).map((t) => t.data()));
  if (!(await tf.setBackend('cpu'))) throw new UnsupportedError('the cpu backend failed to initialise for the growth step of a webgpu model');
  try {
    return fn();
  } catch (error) {
    if (error instanceof ReferenceError && /OffscreenCanvas/.test(error.message)) {
      throw new UnsupportedError('the growth step read a webgpu tensor that was not downloaded first (pass it to withSyncReads)', { cause: error.message });
    }
    throw error;
  } finally {
    await tf.setBackend(previous);
  }
}
