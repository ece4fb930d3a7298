import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { findGrowthSites } from '../sites/find.js';
import { convTapGradientFolded, convTapParts, tapGradientOf } from './conv-tap.js';
import { outputShapeOf, siteLayers } from '../sites/core-site.js';

function random(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

type Between = (name: string) => tfl.layers.Layer;

const cases: { label: string; size: [number, number]; conv1: { k: number; s: number; pad: 'valid' | 'same' }; between: Between[]; conv2: { k: number; s: number; pad: 'valid' | 'same' } }[] = [
  { label: 'no layer in between, next conv stride 1 same', size: [9, 8], conv1: { k: 3, s: 1, pad: 'same' }, between: [], conv2: { k: 3, s: 1, pad: 'same' } },
  { label: 'max pool 2 (valid, odd map: remainder row), next conv stride 2 same', size: [11, 10], conv1: { k: 3, s: 1, pad: 'valid' }, between: [(n) => tfl.layers.maxPooling2d({ poolSize: 2, name: n })], conv2: { k: 3, s: 2, pad: 'same' } },
  { label: 'max pool 2 same padding, conv1 stride 2', size: [14, 13], conv1: { k: 3, s: 2, pad: 'same' }, between: [(n) => tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same', name: n })], conv2: { k: 2, s: 1, pad: 'valid' } },
  { label: 'average pool 2', size: [10, 10], conv1: { k: 3, s: 1, pad: 'same' }, between: [(n) => tfl.layers.averagePooling2d({ poolSize: 2, name: n })], conv2: { k: 3, s: 1, pad: 'same' } },
  { label: 'overlapping max pool 3 stride 2 (general routing)', size: [11, 11], conv1: { k: 3, s: 1, pad: 'same' }, between: [(n) => tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, name: n })], conv2: { k: 3, s: 1, pad: 'same' } },
  { label: 'depthwise 3 same (general routing)', size: [8, 9], conv1: { k: 3, s: 1, pad: 'same' }, between: [(n) => tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: n })], conv2: { k: 3, s: 2, pad: 'same' } },
];

describe('folded conv tap gradient (routing folded into the patches, next conv weight gradient)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const c of cases) {
    it(`equals Σ patchesᵀ · tap-scattered routed gradient: ${c.label}`, () => {
      const model = tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [c.size[0], c.size[1], 2], filters: 3, kernelSize: c.conv1.k, strides: c.conv1.s, padding: c.conv1.pad, activation: 'relu', name: 'c1' }),
          ...c.between.map((make, i) => make(`b${i}`)),
          tfl.layers.conv2d({ filters: 4, kernelSize: c.conv2.k, strides: c.conv2.s, padding: c.conv2.pad, name: 'c2' }),
          tfl.layers.flatten({ name: 'flat' }),
          tfl.layers.dense({ units: 2, name: 'out' }),
        ],
      });
      const site = findGrowthSites(model).sites.find((s) => s.name === 'c1->c2')!;
      expect(site.kind).toBe('conv');
      const x = random([3, c.size[0], c.size[1], 2], 11) as tf.Tensor4D;
      const g = random([3, ...outputShapeOf(siteLayers(model, site).next).slice(1).map(Number)], 12) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const folded = convTapGradientFolded(model, site, x, g);
      expect(tf.memory().numTensors).toBe(before + 1);
      const parts = convTapParts(model, site, x, g);
      const reference = tapGradientOf(parts);
      expect(folded.shape).toEqual(reference.shape);
      const a = folded.dataSync();
      const b = reference.dataSync();
      let scale = 0;
      for (const v of b) scale = Math.max(scale, Math.abs(v));
      expect(scale).toBeGreaterThan(0);
      for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * scale);
      tf.dispose([x, g, folded, reference, parts.patches, parts.routed]);
      model.dispose();
    });
  }
});
