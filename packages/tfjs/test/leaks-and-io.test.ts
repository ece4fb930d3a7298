import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { findGrowthSites, grow, setupBackend } from '@gradmax/tfjs';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor } from './helpers.js';
import { cnnWithBnPool, residual } from './models.js';

describe('no tensor leaks; grown models save and load', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('tf.memory().numTensors is stable across repeated grow + train (CNN with BN, Adam)', async () => {
    const model = cnnWithBnPool();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const xs = randomTensor([6, 8, 8, 2], 1);
    const ys = oneHotTargets(6, 3, 2);
    await model.trainOnBatch(xs, ys); // creates the optimizer slots
    const baseline = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      for (const site of findGrowthSites(model).sites) grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs, ys }, seed: round });
      await model.trainOnBatch(xs, ys);
      expect(tf.memory().numTensors).toBe(baseline);
    }
    expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([7, 6]);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('saves with new widths (model.json) and loads back with identical outputs (files via tf.io handlers)', async () => {
    const model = residual();
    const xs = randomTensor([3, 6, 6, 2], 3);
    const ys = oneHotTargets(3, 2, 4);
    grow(model, { site: 'a->b', units: 3, strategy: 'random', seed: 1 });
    const expected = outputOf(model, xs);
    const dir = mkdtempSync(join(tmpdir(), 'gradmax-tfjs-'));
    try {
      await model.save(tf.io.withSaveHandler(async (artifacts) => {
        const { weightData, ...rest } = artifacts;
        const data = tf.io.CompositeArrayBuffer.join(weightData as ArrayBuffer | ArrayBuffer[]);
        writeFileSync(join(dir, 'weights.bin'), Buffer.from(data));
        writeFileSync(join(dir, 'model.json'), JSON.stringify({ modelTopology: rest.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: rest.weightSpecs }] }));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      const layerA = json.modelTopology.config.layers.find((l: { config: { name: string } }) => l.config.name === 'a');
      expect(layerA.config.filters).toBe(7);
      const bnGamma = json.weightsManifest[0].weights.find((w: { name: string }) => w.name === 'bn_a/gamma');
      expect(bnGamma.shape).toEqual([7]);
      const bin = readFileSync(join(dir, 'weights.bin'));
      const loaded = await tfl.loadLayersModel(tf.io.fromMemory(json.modelTopology, json.weightsManifest[0].weights, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)));
      expect(maxAbsDiff(outputOf(loaded, xs), expected)).toBe(0);
      expect(loaded.getLayer('a').name).toBe('a');
      loaded.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
