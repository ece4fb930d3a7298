/**
 * Small random-weight builders in the styles of real architectures (ResNet, DenseNet, Inception, MobileNetV2,
 * squeeze-excitation), plus models with every other layer type the groups support. BatchNorm statistics are set
 * away from the identity by the tests that use them.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { RELU1, relu1Layer } from '@gradmax/tfjs';

type T = tfl.SymbolicTensor;
let seed = 1000;
const init = () => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed++ }) });
const conv = (x: T, filters: number, name: string, extra: Record<string, unknown> = {}) =>
  tfl.layers.conv2d({ ...init(), filters, kernelSize: 3, padding: 'same', name, ...extra }).apply(x) as T;
const bn = (x: T, name: string) => tfl.layers.batchNormalization({ name }).apply(x) as T;
const act = (x: T, name: string) => relu1Layer({ name }).apply(x) as T;
const head = (x: T, classes: number, max = false) => {
  const gap = (max ? tfl.layers.globalMaxPooling2d({ name: 'gap' }) : tfl.layers.globalAveragePooling2d({ name: 'gap' })).apply(x) as T;
  return tfl.layers.dense({ ...init(), units: classes, name: 'logits' }).apply(gap) as T;
};

/** ResNet-18-style: stem, a stage of two basic blocks (identity shortcuts), a strided stage with a projection shortcut. */
export function resnetStyle(input = [8, 8, 3], classes = 3): tfl.LayersModel {
  seed = 1000;
  const x0 = tfl.input({ shape: input, name: 'image' });
  let x = act(bn(conv(x0, 4, 'stem'), 'stem_bn'), 'stem_relu');
  for (const b of [1, 2]) {
    let y = act(bn(conv(x, 4, `s1b${b}_conv1`), `s1b${b}_bn1`), `s1b${b}_relu1`);
    y = bn(conv(y, 4, `s1b${b}_conv2`), `s1b${b}_bn2`);
    x = act(tfl.layers.add({ name: `s1b${b}_add` }).apply([x, y]) as T, `s1b${b}_out`);
  }
  let y = act(bn(conv(x, 6, 's2b1_conv1', { strides: 2 }), 's2b1_bn1'), 's2b1_relu1');
  y = bn(conv(y, 6, 's2b1_conv2'), 's2b1_bn2');
  const shortcut = bn(conv(x, 6, 's2b1_proj', { kernelSize: 1, strides: 2 }), 's2b1_proj_bn');
  x = act(tfl.layers.add({ name: 's2b1_add' }).apply([shortcut, y]) as T, 's2b1_out');
  return tfl.model({ inputs: x0, outputs: head(x, classes), name: 'resnet_style' });
}

/** DenseNet-style dense block: each layer's output is concatenated to its input; a transition conv, a global max pooling head. */
export function densenetStyle(input = [8, 8, 3], classes = 3): tfl.LayersModel {
  seed = 2000;
  const x0 = tfl.input({ shape: input, name: 'image' });
  let x = conv(x0, 4, 'stem');
  for (const l of [1, 2, 3]) {
    const y = conv(act(bn(x, `d${l}_bn`), `d${l}_relu`), 3, `d${l}_conv`);
    x = tfl.layers.concatenate({ name: `d${l}_cat` }).apply([x, y]) as T;
  }
  x = conv(act(bn(x, 'trans_bn'), 'trans_relu'), 5, 'trans_conv', { kernelSize: 1 });
  x = tfl.layers.averagePooling2d({ poolSize: 2, name: 'trans_pool' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: head(act(x, 'final_relu'), classes, true), name: 'densenet_style' });
}

/** InceptionV3-style module: 1×1, 1×1→3×3, 1×1→3×3→3×3 and pool (average, then max)→1×1 branches concatenated, twice. */
export function inceptionStyle(input = [8, 8, 3], classes = 3): tfl.LayersModel {
  seed = 3000;
  const x0 = tfl.input({ shape: input, name: 'image' });
  let x = act(conv(x0, 4, 'stem'), 'stem_relu');
  for (const m of [1, 2]) {
    const b1 = act(conv(x, 2, `m${m}_b1`, { kernelSize: 1 }), `m${m}_b1_relu`);
    const b2 = act(conv(act(conv(x, 2, `m${m}_b2a`, { kernelSize: 1 }), `m${m}_b2a_relu`), 3, `m${m}_b2b`), `m${m}_b2b_relu`);
    const b3a = act(conv(x, 2, `m${m}_b3a`, { kernelSize: 1 }), `m${m}_b3a_relu`);
    const b3 = act(conv(act(conv(b3a, 2, `m${m}_b3b`), `m${m}_b3b_relu`), 2, `m${m}_b3c`), `m${m}_b3c_relu`);
    const poolArgs = { poolSize: 3, strides: 1, padding: 'same' as const, name: `m${m}_pool` };
    const pool = (m === 1 ? tfl.layers.averagePooling2d(poolArgs) : tfl.layers.maxPooling2d(poolArgs)).apply(x) as T;
    const b4 = act(conv(pool, 2, `m${m}_b4`, { kernelSize: 1 }), `m${m}_b4_relu`);
    x = tfl.layers.concatenate({ name: `m${m}_cat` }).apply([b1, b2, b3, b4]) as T;
  }
  return tfl.model({ inputs: x0, outputs: head(x, classes), name: 'inception_style' });
}

/** MobileNetV2-style: inverted residual blocks (1×1 expand, ReLU6-style relu1, depthwise 3×3, 1×1 linear project). */
export function mobilenetV2Style(input = [8, 8, 3], classes = 3): tfl.LayersModel {
  seed = 4000;
  const x0 = tfl.input({ shape: input, name: 'image' });
  const relu6 = (x: T, name: string) => relu1Layer({ maxValue: 6, name }).apply(x) as T;
  let x = relu6(bn(conv(x0, 4, 'stem', { strides: 2 }), 'stem_bn'), 'stem_relu6');
  const block = (x: T, name: string, expand: number, out: number, residual: boolean): T => {
    let y = relu6(bn(conv(x, expand, `${name}_expand`, { kernelSize: 1 }), `${name}_expand_bn`), `${name}_expand_relu6`);
    y = tfl.layers.depthwiseConv2d({ depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), kernelSize: 3, padding: 'same', name: `${name}_dw` }).apply(y) as T;
    y = relu6(bn(y, `${name}_dw_bn`), `${name}_dw_relu6`);
    y = bn(conv(y, out, `${name}_project`, { kernelSize: 1 }), `${name}_project_bn`);
    return residual ? (tfl.layers.add({ name: `${name}_add` }).apply([x, y]) as T) : y;
  };
  x = block(x, 'b1', 8, 4, true);
  x = block(x, 'b2', 8, 4, true);
  x = block(x, 'b3', 12, 6, false);
  x = relu6(bn(conv(x, 8, 'last', { kernelSize: 1 }), 'last_bn'), 'last_relu6');
  return tfl.model({ inputs: x0, outputs: head(x, classes), name: 'mobilenet_v2_style' });
}

/** A squeeze-excitation block: x * sigmoid(dense(relu(dense(GAP(x))))) reshaped to [1, 1, C]. */
export function seStyle(input = [6, 6, 3], classes = 3): tfl.LayersModel {
  seed = 5000;
  const x0 = tfl.input({ shape: input, name: 'image' });
  const x = act(conv(x0, 4, 'conv'), 'conv_relu');
  const s = tfl.layers.globalAveragePooling2d({ name: 'se_squeeze' }).apply(x) as T;
  const r = tfl.layers.dense({ ...init(), units: 2, activation: RELU1, name: 'se_reduce' }).apply(s) as T;
  const e = tfl.layers.dense({ ...init(), units: 4, activation: 'sigmoid', name: 'se_expand' }).apply(r) as T;
  const gate = tfl.layers.reshape({ targetShape: [1, 1, 4], name: 'se_reshape' }).apply(e) as T;
  const scaled = tfl.layers.multiply({ name: 'se_scale' }).apply([x, gate]) as T;
  const y = act(conv(scaled, 3, 'next'), 'next_relu');
  return tfl.model({ inputs: x0, outputs: head(y, classes), name: 'se_style' });
}

/** Conv1D → Conv1D → max pooling 1-D → global average pooling 1-D → dense. */
export function conv1dModel(): tfl.LayersModel {
  seed = 6000;
  const x0 = tfl.input({ shape: [12, 2], name: 'seq' });
  let x = tfl.layers.conv1d({ ...init(), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }).apply(x0) as T;
  x = tfl.layers.conv1d({ ...init(), filters: 4, kernelSize: 3, activation: RELU1, name: 'c2' }).apply(x) as T;
  x = tfl.layers.maxPooling1d({ poolSize: 2, name: 'pool' }).apply(x) as T;
  x = tfl.layers.globalAveragePooling1d({ name: 'gap' }).apply(x) as T;
  x = tfl.layers.dense({ ...init(), units: 3, name: 'logits' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: x });
}

/** Conv3D → Conv3D → flatten → dense. */
export function conv3dModel(): tfl.LayersModel {
  seed = 7000;
  const x0 = tfl.input({ shape: [4, 4, 4, 2], name: 'volume' });
  let x = tfl.layers.conv3d({ ...init(), filters: 3, kernelSize: 2, padding: 'same', activation: RELU1, name: 'c1' }).apply(x0) as T;
  x = tfl.layers.conv3d({ ...init(), filters: 2, kernelSize: 2, activation: RELU1, name: 'c2' }).apply(x) as T;
  x = tfl.layers.flatten({ name: 'flat' }).apply(x) as T;
  x = tfl.layers.dense({ ...init(), units: 3, name: 'logits' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: x });
}

/**
 * Image-to-image style: conv (dilated when `dilation` > 1) → separable conv → transposed conv (stride 2) →
 * up-sampling → zero padding → cropping → conv, with a PReLU and a LeakyReLU on the way.
 */
export function imageToImageModel(dilation = 1): tfl.LayersModel {
  seed = 8000;
  const x0 = tfl.input({ shape: [5, 6, 2], name: 'image' });
  let x = tfl.layers.conv2d({ ...init(), filters: 4, kernelSize: 3, dilationRate: dilation, padding: 'same', name: 'dilated' }).apply(x0) as T;
  x = tfl.layers.leakyReLU({ alpha: 0.2, name: 'leaky' }).apply(x) as T;
  x = tfl.layers.separableConv2d({ depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), pointwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'separable' }).apply(x) as T;
  x = tfl.layers.conv2dTranspose({ ...init(), filters: 3, kernelSize: 3, strides: 2, padding: 'same', name: 'transpose' }).apply(x) as T;
  x = tfl.layers.prelu({ alphaInitializer: tfl.initializers.constant({ value: 0.25 }), sharedAxes: [1, 2], name: 'prelu' }).apply(x) as T;
  x = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(x) as T;
  x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(x) as T;
  x = tfl.layers.cropping2D({ cropping: 1, name: 'crop' }).apply(x) as T;
  x = tfl.layers.conv2d({ ...init(), filters: 2, kernelSize: 3, padding: 'same', name: 'to_image' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: x });
}

/**
 * Dense layers joined by Add, Maximum, Minimum and Average, with Dropout, Activation, ReLU and ELU layers (dropout
 * rates 0 keep training-mode outputs deterministic for the comparisons).
 */
export function denseJoinsModel(): tfl.LayersModel {
  seed = 9000;
  const x0 = tfl.input({ shape: [5], name: 'features' });
  const d = (x: T, units: number, name: string, activation = 'linear') => tfl.layers.dense({ ...init(), units, activation: activation as 'relu', name }).apply(x) as T;
  const a = d(x0, 4, 'a', RELU1);
  const b = d(x0, 4, 'b');
  const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as T;
  const c = d(tfl.layers.dropout({ rate: 0, name: 'drop' }).apply(sum) as T, 3, 'c', 'tanh');
  const e = tfl.layers.elu({ name: 'elu' }).apply(d(x0, 3, 'e')) as T;
  const max = tfl.layers.maximum({ name: 'max' }).apply([c, e]) as T;
  const f = tfl.layers.activation({ activation: 'swish', name: 'swish' }).apply(d(max, 3, 'f')) as T;
  const g = tfl.layers.reLU({ name: 'relu' }).apply(d(max, 3, 'g')) as T;
  const min = tfl.layers.minimum({ name: 'min' }).apply([f, g]) as T;
  const h = d(min, 2, 'h', RELU1);
  const avg = tfl.layers.average({ name: 'avg' }).apply([h, d(min, 2, 'i', RELU1)]) as T;
  return tfl.model({ inputs: x0, outputs: d(avg, 3, 'logits') });
}

/** 1-D and 3-D pooling, dropout and spatial dropout layers (rate 0) and a channel-keeping Reshape between growable convs. */
export function poolingZooModel(): tfl.LayersModel {
  seed = 9500;
  const x0 = tfl.input({ shape: [4, 4, 4, 2], name: 'volume' });
  let x = tfl.layers.conv3d({ ...init(), filters: 3, kernelSize: 2, padding: 'same', activation: RELU1, name: 'v1' }).apply(x0) as T;
  x = tfl.layers.dropout({ rate: 0, name: 'drop3' }).apply(x) as T;
  x = tfl.layers.maxPooling3d({ poolSize: 2, name: 'max3' }).apply(x) as T;
  x = tfl.layers.conv3d({ ...init(), filters: 3, kernelSize: 1, activation: RELU1, name: 'v2' }).apply(x) as T;
  x = tfl.layers.averagePooling3d({ poolSize: [2, 2, 1], padding: 'same', name: 'avg3' }).apply(x) as T;
  x = tfl.layers.reshape({ targetShape: [2, 3], name: 'to_seq' }).apply(x) as T;
  x = tfl.layers.conv1d({ ...init(), filters: 4, kernelSize: 1, activation: RELU1, name: 's1' }).apply(x) as T;
  x = tfl.layers.spatialDropout1d({ rate: 0, name: 'sdrop1' }).apply(x) as T;
  x = tfl.layers.averagePooling1d({ poolSize: 2, padding: 'same', name: 'avg1' }).apply(x) as T;
  x = tfl.layers.conv1d({ ...init(), filters: 3, kernelSize: 1, activation: RELU1, name: 's2' }).apply(x) as T;
  x = tfl.layers.globalMaxPooling1d({ name: 'gmp1' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: tfl.layers.dense({ ...init(), units: 3, name: 'logits' }).apply(x) as T });
}
