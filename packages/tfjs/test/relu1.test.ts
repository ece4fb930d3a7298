import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { RELU1, findGrowthSites, grow, relu1, relu1Layer, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';

/** Saves to memory and loads back (model.json + weights through tf.io). */
async function roundTrip(model: tfl.LayersModel): Promise<{ loaded: tfl.LayersModel; topology: unknown }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
  return { loaded, topology: artifacts!.modelTopology };
}

describe('relu1', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('is max(x, 0) with derivative 1 at exactly 0 (tfjs relu has 0 there)', () => {
    const x = tf.tensor1d([-2, -1e-7, 0, 1e-7, 3]);
    expect(Array.from(relu1(x).dataSync())).toEqual(Array.from(tf.relu(x).dataSync()));
    expect(Array.from(tf.grad((t: tf.Tensor) => tf.sum(relu1(t)))(x).dataSync())).toEqual([0, 0, 1, 1, 1]);
    expect(tf.grad((t: tf.Tensor) => tf.sum(tf.relu(t)))(x).dataSync()[2]).toBe(0);
  });

  it('works as a layer activation and as a layer, and both survive save/load', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 101 }), units: 4, inputShape: [3], activation: RELU1, name: 'h' }), relu1Layer({ name: 'r' }), tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 102 }), units: 2, name: 'o' })],
    });
    const xs = randomTensor([5, 3], 3);
    const { loaded, topology } = await roundTrip(model);
    expect(JSON.stringify(topology)).toContain('"relu1"');
    expect(JSON.stringify(topology)).toContain('"Relu1"');
    expect(Array.from((loaded.predict(xs) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(xs) as tf.Tensor).dataSync()));
    model.dispose();
    loaded.dispose();
    xs.dispose();
  });

  it("GradMax on a site with f'(0) = 0 (tfjs relu) is a clear error naming the site and the fix", () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 103 }), units: 4, inputShape: [3], activation: 'relu', name: 'a' }), tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 104 }), units: 2, name: 'b' })] });
    const site = findGrowthSites(model).sites[0]!;
    expect(site.activation).toEqual({ name: 'relu', f0: 0, df0: 0 });
    const xs = randomTensor([4, 3], 1);
    const ys = oneHotTargets(4, 2, 1);
    expect(() => grow(model, { site: 'a->b', units: 1, strategy: 'gradmax', batch: { xs, ys }, loss: 'meanSquaredError' })).toThrow(/site "a->b".*f'\(0\) = 0.*relu1/);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
