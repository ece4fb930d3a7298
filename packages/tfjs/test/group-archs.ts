/**
 * The test models of the channel-group suites: every architecture style and the groups each is expected to list, with
 * a grow batch for it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { oneHotTargets, randomTensor } from './helpers.js';
import { conv1dModel, conv3dModel, denseJoinsModel, densenetStyle, imageToImageModel, inceptionStyle, mobilenetV2Style, poolingZooModel, resnetStyle, seStyle } from './architectures.js';

/** Softmax cross-entropy on logits. */
export const logits = (a: tf.Tensor, b: tf.Tensor) => tf.losses.softmaxCrossEntropy(a, b);
/** Mean squared error. */
export const mse = (a: tf.Tensor, b: tf.Tensor) => tf.losses.meanSquaredError(a, b);

/** An architecture style of the group suites. */
export interface Arch {
  name: string;
  build: () => tfl.LayersModel;
  input: number[];
  /** Target shape per example (classes for one-hot logits). */
  target: number[];
  loss: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  /** Group names expected (checked exactly). */
  groups: string[];
}

/** Every architecture style the group suites build. */
export const ARCHS: Arch[] = [
  { name: 'ResNet-18-style (two identity blocks, a projection block)', build: resnetStyle, input: [8, 8, 3], target: [3], loss: logits, groups: ['stem+s1b1_conv2+s1b2_conv2->s1b1_conv1+s1b2_conv1+s2b1_conv1+s2b1_proj', 's2b1_proj+s2b1_conv2->logits'] },
  { name: 'DenseNet-style dense block (Concatenate)', build: densenetStyle, input: [8, 8, 3], target: [3], loss: logits, groups: ['stem->d1_conv+d2_conv+d3_conv+trans_conv', 'd1_conv->d2_conv+d3_conv+trans_conv', 'd2_conv->d3_conv+trans_conv', 'd3_conv->trans_conv'] },
  { name: 'InceptionV3-style modules (four-branch Concatenate)', build: inceptionStyle, input: [8, 8, 3], target: [3], loss: logits, groups: ['stem->m1_b3a+m1_b2a+m1_b1+m1_b4', 'm1_b1->m2_b3a+m2_b2a+m2_b1+m2_b4', 'm1_b2b->m2_b3a+m2_b2a+m2_b1+m2_b4', 'm1_b3c->m2_b3a+m2_b2a+m2_b1+m2_b4', 'm1_b4->m2_b3a+m2_b2a+m2_b1+m2_b4', 'm2_b1->logits', 'm2_b2b->logits', 'm2_b3c->logits', 'm2_b4->logits'] },
  { name: 'MobileNetV2-style inverted residuals (depthwise, ReLU6-style)', build: mobilenetV2Style, input: [8, 8, 3], target: [3], loss: logits, groups: ['stem+b1_project+b2_project->b1_expand+b2_expand+b3_expand'] },
  { name: 'squeeze-excitation block (Multiply gate)', build: seStyle, input: [6, 6, 3], target: [3], loss: logits, groups: ['conv+se_expand->se_reduce+next'] },
  { name: 'Conv1D', build: conv1dModel, input: [12, 2], target: [3], loss: logits, groups: ['c1->c2', 'c2->logits'] },
  { name: 'Conv3D', build: conv3dModel, input: [4, 4, 4, 2], target: [3], loss: logits, groups: ['c1->c2', 'c2->logits'] },
  { name: 'image-to-image (SeparableConv2D, Conv2DTranspose, UpSampling2D, padding, cropping, PReLU, LeakyReLU)', build: imageToImageModel, input: [5, 6, 2], target: [20, 24, 2], loss: mse, groups: ['dilated->separable', 'separable->transpose', 'transpose->to_image'] },
  { name: 'Dense joins (Add, Maximum, Minimum, Average)', build: denseJoinsModel, input: [5], target: [3], loss: logits, groups: ['a+b->c', 'e+c->f+g', 'f+g->h+i', 'h+i->logits'] },
  { name: '1-D and 3-D pooling, spatial dropout, Reshape', build: poolingZooModel, input: [4, 4, 4, 2], target: [3], loss: logits, groups: ['v1->v2', 'v2->s1', 's1->s2', 's2->logits'] },
];


/** A deterministic grow batch of `size` examples for `arch`. */
export function batchFor(arch: Arch, size: number, seed: number): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = randomTensor([size, ...arch.input], seed);
  const ys = arch.target.length === 1 ? oneHotTargets(size, arch.target[0]!, seed + 1) : randomTensor([size, ...arch.target], seed + 1);
  return { xs, ys };
}

/**
 * The image-to-image style with a dilated first conv (dilation 2): its groups' statistics go through the dilated-conv
 * gradients. Not in {@link ARCHS}, whose GradMax check takes autodiff through `model.predict`, which runs a dilated
 * Conv2D through tfjs's fused op (no dilated gradient); `dilated-statistics.test.ts` checks the gradient instead.
 */
export const DILATED_ARCH: Arch = { ...ARCHS[7]!, name: 'image-to-image with a dilated conv (dilation 2)', build: () => imageToImageModel(2) };
