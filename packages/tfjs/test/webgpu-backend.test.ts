import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@gradmax/strategies/register';
import { describe, expect, it } from 'vitest';
import { RELU1, activeAdapter, grow, growAsync, registerMaxPoolGrad, restoreStockMaxPoolGrad, setupBackend, syncReadsUnavailable, withSyncReads } from '@gradmax/tfjs';
import { skipReason, vulkanDriver } from './backends.js';

const reason = skipReason('webgpu');

describe.skipIf(reason !== undefined)(`webgpu backend${reason ? ` — skipped: ${reason}` : ''}`, () => {
  it('by name: runs on the (software) adapter and reports it', async () => {
    process.env.VK_ICD_FILENAMES = vulkanDriver();
    const setup = await setupBackend('webgpu', { log: false });
    expect(setup.backend).toBe('webgpu');
    expect(setup.adapter).toBeDefined();
    expect(activeAdapter()).toEqual(setup.adapter);
    expect(setup.message).toContain('webgpu on');
    if (/swiftshader/i.test(`${setup.adapter!.architecture} ${setup.adapter!.description}`)) {
      expect(setup.adapter!.software).toBe(true);
      expect(setup.message).toMatch(/software rasteriser/);
    }
  });

  it('auto: a software adapter is skipped, with the reason', async () => {
    const setup = await setupBackend('webgpu', { log: false });
    if (!setup.adapter!.software) return; // a hardware GPU: auto would pick it
    const auto = await setupBackend('auto', { log: false });
    expect(auto.backend).not.toBe('webgpu');
    expect(auto.adapter).toBeUndefined();
    expect(auto.skipped.find((s) => s.backend === 'webgpu')?.reason).toMatch(/only a software adapter/);
    expect(activeAdapter()).toBeUndefined();
  });

  it('auto with skipWebgpu (the harness) does not even try webgpu', async () => {
    const auto = await setupBackend('auto', { log: false, skipWebgpu: true });
    expect(auto.backend).not.toBe('webgpu');
    expect(auto.skipped.some((s) => s.backend === 'webgpu')).toBe(false);
    const plain = await setupBackend('auto', { log: false });
    expect(plain.skipped.some((s) => s.backend === 'webgpu')).toBe(true);
  });

  it('synchronous reads throw on webgpu in Node; withSyncReads downloads, runs on cpu and restores webgpu', async () => {
    await setupBackend('webgpu', { log: false });
    expect(syncReadsUnavailable()).toBe(true);
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.matMul(a, a);
    expect(() => b.dataSync()).toThrow();
    const c = tf.matMul(a, a);
    const values = await withSyncReads([c], () => {
      expect(tf.getBackend()).toBe('cpu');
      return Array.from(tf.tidy(() => tf.add(c, 1).dataSync()));
    });
    expect(values).toEqual([8, 11, 16, 23]);
    expect(tf.getBackend()).toBe('webgpu');
    tf.dispose([a, b, c]);
  });

  it('grow on webgpu in Node: a typed error pointing to growAsync; growAsync grows', async () => {
    await setupBackend('webgpu', { log: false });
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [2], activation: RELU1, name: 'a' }), tfl.layers.dense({ units: 2, name: 'b' })] });
    expect(() => grow(model, { site: 'a->b', units: 1, strategy: 'random' })).toThrow(/use growAsync/);
    const { report } = await growAsync(model, { site: 'a->b', units: 1, strategy: 'random' });
    expect(report.widthAfter).toBe(4);
    expect(tf.getBackend()).toBe('webgpu');
    model.dispose();
  });

  it("the registered MaxPoolGrad keeps the gradient of windows tied at 0 (the stock webgpu kernel does not)", async () => {
    await setupBackend('webgpu', { log: false });
    // A new, all-zero channel after growth: every 2×2 window is tied at 0.
    const x = tf.zeros([1, 4, 4, 1]);
    const dy = tf.ones([1, 2, 2, 1]);
    const gradOf = async (): Promise<Float32Array> => {
      const g = tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'))(x, dy);
      const values = (await g.data()) as Float32Array;
      g.dispose();
      return values;
    };
    // TF's rule: the first element of each window in row-major order gets the window's gradient.
    const expected = [1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0];
    expect(Array.from(await gradOf())).toEqual(expected);
    restoreStockMaxPoolGrad('webgpu');
    try {
      expect(Array.from(await gradOf())).not.toEqual(expected);
    } finally {
      registerMaxPoolGrad('webgpu');
    }
    tf.dispose([x, dy]);
  });
});
