import * as tfl from '@tensorflow/tfjs-layers';
import { RELU1, relu1Layer } from '@gradmax/tfjs';

/** Seeded kernel initializer, so that test models are the same on every run. */
const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });

/** 5 → h1(6, relu1) → BN → h2(5, relu1) → out(3, softmax). */
export function mlpWithBn(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ ...seeded(1), units: 6, inputShape: [5], activation: RELU1, name: 'h1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.dense({ ...seeded(2), units: 5, activation: RELU1, name: 'h2' }),
      tfl.layers.dense({ ...seeded(3), units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
}

/** [8,8,2] → c1(3×3, 4, same, relu1) → BN → maxPool 2 → c2(3×3, 3, valid) → relu1 layer → flatten → out(3). */
export function cnnWithBnPool(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ ...seeded(4), inputShape: [8, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.conv2d({ ...seeded(5), filters: 3, kernelSize: 3, padding: 'valid', name: 'c2' }),
      relu1Layer({ name: 'act2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ ...seeded(6), units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
}

/** [7,7,2] → c1(3×3, 3, same, relu1) → depthwise(3×3, same, relu1) → avgPool 2 same → c2(1×1, 4) → flatten → out(2). */
export function cnnWithDepthwise(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ ...seeded(7), inputShape: [7, 7, 2], filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
      tfl.layers.depthwiseConv2d({ depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 99 }), kernelSize: 3, padding: 'same', activation: RELU1, name: 'dw' }),
      tfl.layers.averagePooling2d({ poolSize: 2, padding: 'same', name: 'avg' }),
      tfl.layers.conv2d({ ...seeded(8), filters: 4, kernelSize: 1, activation: RELU1, name: 'c2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ ...seeded(9), units: 2, name: 'out' }),
    ],
  });
}

/** Residual block: stem → a(relu1) → b → add(stem, b) → flatten → out. Inner width (a) grows. */
export function residual(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2], name: 'x' });
  const stem = tfl.layers.conv2d({ ...seeded(10), filters: 3, kernelSize: 3, padding: 'same', name: 'stem' }).apply(input) as tfl.SymbolicTensor;
  const a = tfl.layers.conv2d({ ...seeded(11), filters: 4, kernelSize: 3, padding: 'same', activation: RELU1, name: 'a' }).apply(stem) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'bn_a' }).apply(a) as tfl.SymbolicTensor;
  const b = tfl.layers.conv2d({ ...seeded(12), filters: 3, kernelSize: 3, padding: 'same', name: 'b' }).apply(bn) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'add' }).apply([stem, b]) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(sum) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ ...seeded(13), units: 2, name: 'out' }).apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** [6,6,2] → c1(3×3, 4, same, relu1) → c2(3×3, 3, same, relu1) → global pooling → (dropout) → out(3, softmax). */
export function cnnWithGlobalPool(max = false, dropout = true): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ ...seeded(20), inputShape: [6, 6, 2], filters: 4, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
      tfl.layers.conv2d({ ...seeded(21), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c2' }),
      max ? tfl.layers.globalMaxPooling2d({ name: 'gp' }) : tfl.layers.globalAveragePooling2d({ name: 'gp' }),
      ...(dropout ? [tfl.layers.dropout({ rate: 0.3, name: 'drop' })] : []),
      tfl.layers.dense({ ...seeded(22), units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
}
