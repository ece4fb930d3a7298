/**
 * Gradients of dilated 2-D convolutions (Conv1D, Conv2D, SeparableConv2D, DepthwiseConv2D), which tfjs 4.22 refuses
 * ("dilation rates greater than 1 are not yet supported in gradients"). The space-to-batch identity: a conv with
 * dilation d (stride 1, which tfjs requires with d > 1) on the input padded as tfjs pads it equals an undilated
 * 'valid' conv applied to each of the d_h·d_w phases `x_pad[r::d_h, c::d_w]` (`spaceToBatchND`), the phase outputs
 * interleaved back (`batchToSpaceND`, cropping the rows and columns added to make the phases equal in size). So the
 * gradient is tfjs's own undilated gradient on the phases: the output gradient is split into phases the same way
 * (the adjoint of `batchToSpaceND`), the filter gradient is the undilated one as is (every phase shares the filter),
 * and the input gradient is interleaved back and the padding sliced off.
 *
 * {@link registerDilatedConvGradients} wraps the registered gradients of the `Conv2D` and `DepthwiseConv2dNative`
 * kernels: dilation 1 goes to tfjs's gradient unchanged, dilation > 1 through the identity above. It is idempotent and
 * only turns an error into a gradient; the statistics entry points call it, and it can be called to train dilated
 * models with `model.fit` too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@gradmax/core';

/** The kernels whose gradient is extended (both take inputs `x`, `filter` and attributes `strides`, `pad`, `dilations`). */
const KERNELS = ['Conv2D', 'DepthwiseConv2dNative'] as const;

type GradFunc = tf.GradConfig['gradFunc'];

/** Our wrappers, to recognise them (registration is idempotent; a later re-registration by tfjs is wrapped again). */
const wrappers = new WeakSet<GradFunc>();

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v ?? 1), Number(v ?? 1)];
}

/** The dilated gradient of `kernel` through `original` (its undilated gradient), see the module notes. */
function dilatedGradient(kernel: string, original: GradFunc): GradFunc {
  const wrapped: GradFunc = (dy, saved, attrs) => {
    const a = attrs as Record<string, unknown>;
    const [dh, dw] = pair(a['dilations']);
    if (dh === 1 && dw === 1) return original(dy, saved, attrs);
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const format = a['dataFormat'];
    if (format !== undefined && format !== 'NHWC' && format !== 'channelsLast') {
      throw new UnsupportedError(`gradient of a dilated ${kernel}: only NHWC is supported, got ${String(format)}`, { kernel });
    }
    const strides = pair(a['strides']);
    if (strides[0] !== 1 || strides[1] !== 1) throw new UnsupportedError(`gradient of a dilated ${kernel} with strides ${strides.join('×')} (tfjs allows dilation only with stride 1)`, { kernel });
    const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape as [number, number, number, number], [1, 1], [dh, dw], a['pad'] as 'valid' | 'same' | number, a['dimRoundingMode'] as 'floor' | undefined, kernel === 'DepthwiseConv2dNative', 'channelsLast');
    const { top, bottom, left, right } = info.padInfo;
    const [, H, W] = x.shape;
    // Extra rows/columns at the end so that every phase has the same size; cropped from the interleaved output.
    const eh = (dh - ((H + top + bottom) % dh)) % dh;
    const ew = (dw - ((W + left + right) % dw)) % dw;
    const block = [dh, dw];
    const ends: [number, number][] = [
      [0, eh],
      [0, ew],
    ];
    // Built inside each closure so that the engine's backward scope disposes the intermediates.
    const inner = () => {
      const xs = tf.spaceToBatchND(tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]), block, ends);
      const dys = tf.spaceToBatchND(dy as tf.Tensor4D, block, ends);
      return original(dys, [xs, filter], { ...a, strides: [1, 1], pad: 'valid', dilations: [1, 1] } as unknown as tf.NamedAttrMap) as Record<string, () => tf.Tensor>;
    };
    return {
      x: () => tf.slice(tf.batchToSpaceND(inner()['x']!(), block, ends), [0, top, left, 0], x.shape),
      filter: () => inner()['filter']!(),
    };
  };
  wrappers.add(wrapped);
  return wrapped;
}

/**
 * Extends the gradients of tfjs's `Conv2D` and `DepthwiseConv2dNative` kernels to dilations > 1 (see the module
 * notes). Idempotent; returns the kernels whose gradient is now the extended one (a kernel whose gradient tfjs has not
 * registered yet — `@tensorflow/tfjs-layers` not imported — is skipped and picked up by a later call).
 */
export function registerDilatedConvGradients(): string[] {
  const done: string[] = [];
  for (const kernel of KERNELS) {
    const config = tf.getGradient(kernel);
    if (!config) continue;
    if (!wrappers.has(config.gradFunc)) tf.registerGradient({ ...config, gradFunc: dilatedGradient(kernel, config.gradFunc) });
    done.push(kernel);
  }
  return done;
}
