/**
 * `relu1`: max(x, 0) with derivative 1 at exactly 0 (tfjs's `relu` has 0 there), as an op, an activation usable
 * in layer configs (`activation: 'relu1'`), and a layer. All are registered for tfjs serialisation, so models
 * using them save and load.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

const relu1Op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  save([x]);
  return {
    value: tf.relu(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.cast(tf.greaterEqual(saved[0]!, 0), dy.dtype)),
  };
});

/** relu1 clipped at `maxValue` (ReLU6-style): forward `min(max(x, 0), maxValue)`, backward `dy · [0 ≤ x ≤ maxValue]`. */
function relu1Max(x: tf.Tensor, maxValue: number): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    save([t]);
    return {
      value: tf.clipByValue(t, 0, maxValue),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.mul(dy, tf.cast(tf.logicalAnd(tf.greaterEqual(saved[0]!, 0), tf.lessEqual(saved[0]!, maxValue)), dy.dtype)),
    };
  })(x);
}

/**
 * ReLU with a derivative of 1 at 0: forward `max(x, 0)`, backward `dy · [x ≥ 0]`. GradMax needs f'(0) ≠ 0 on
 * grown layers, because new units start with zero incoming weights (pre-activation exactly 0).
 */
export function relu1<T extends tf.Tensor>(x: T): T {
  return relu1Op(x) as T;
}

/**
 * Activation name to use in layer configs: `tf.layers.dense({units, activation: RELU1})`. Its value is the string
 * `'relu1'`; it is typed as one of tfjs's built-in identifiers only so that layer configs type-check.
 */
export const RELU1 = 'relu1' as unknown as 'relu';

/**
 * The `relu1` activation object, resolved by tfjs-layers from the string `'relu1'` in any layer config.
 * Registered with `tf.serialization` under the class name `relu1`.
 */
export class Relu1Activation extends tf.serialization.Serializable {
  /** Serialization class name; also the activation identifier. */
  static readonly className = 'relu1';
  /** Applies {@link relu1}. */
  apply(x: tf.Tensor): tf.Tensor {
    return relu1(x);
  }
  /** No configuration. */
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

/** Layer arguments of {@link Relu1Layer}: those of any tfjs layer, plus an optional `maxValue`. */
export type Relu1LayerArgs = ConstructorParameters<typeof tfl.layers.Layer>[0] & {
  /** Clip the output at this value (ReLU6 style: `maxValue: 6`); the derivative is 1 on [0, maxValue]. */
  maxValue?: number;
};

/**
 * A layer applying {@link relu1} element-wise (the relu1 counterpart of `tf.layers.reLU()`); with `maxValue` it is the
 * relu1 counterpart of ReLU6 (`tf.layers.reLU({ maxValue: 6 })`, every MobileNet), whose derivative at 0 tfjs sets to 0.
 */
export class Relu1Layer extends tfl.layers.Layer {
  /** Serialization class name. */
  static readonly className = 'Relu1';
  /** Clip value, or undefined for no clipping. */
  readonly maxValue: number | undefined;
  constructor(args?: Relu1LayerArgs) {
    const { maxValue, ...rest } = args ?? {};
    super(rest);
    this.supportsMasking = true;
    this.maxValue = maxValue ?? undefined;
  }
  /** Applies {@link relu1} (clipped at `maxValue` when set) to the single input. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return this.maxValue == null ? relu1(x) : relu1Max(x, this.maxValue);
  }
  /** Layer configuration, with `maxValue` when set. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...(this.maxValue == null ? {} : { maxValue: this.maxValue }) };
  }
  /** Output shape equals the input shape. */
  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }
}

/** Creates a {@link Relu1Layer}. */
export function relu1Layer(args?: Relu1LayerArgs): Relu1Layer {
  return new Relu1Layer(args);
}

tf.serialization.registerClass(Relu1Activation);
tf.serialization.registerClass(Relu1Layer);
