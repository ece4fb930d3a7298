/**
 * Picks and initialises a TensorFlow.js backend: native (`@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node`,
 * optional peers loaded lazily), then wasm, then cpu.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { InvalidArgumentError, UnknownNameError } from '@gradmax/core';
import { registerConvBackpropFilter } from './conv2d-backprop-filter.js';
import { registerDepthwiseBackprop } from './depthwise-backprop.js';
import { registerMaxPoolGrad } from './max-pool-grad.js';

/** Backend requested from {@link setupBackend}. `auto` tries native GPU, native CPU, wasm, then cpu. */
export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

/** Options of {@link setupBackend}. */
export interface SetupBackendOptions {
  /**
   * Register the conv2d-based `Conv2DBackpropFilter` kernel on the cpu backend too (the stock cpu kernel is
   * about 20× slower). Off by default: the stock kernel stays in place unless asked.
   */
  fastCpuConvBackward?: boolean;
  /** Print the one-line message saying which backend runs (default true). */
  log?: boolean | ((message: string) => void);
}

/** What {@link setupBackend} chose. */
export interface BackendSetup {
  /** The tfjs backend name now active (`"tensorflow"`, `"wasm"`, `"cpu"`). */
  backend: string;
  /** The native package that was loaded, when the backend is `"tensorflow"`. */
  nativePackage?: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
  /** Backends tried before this one, with why each was not used. */
  skipped: { backend: string; reason: string }[];
  /** Human-readable summary (also printed unless `log: false`). */
  message: string;
}

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.slice(0, 200);
}

/** The dist folder of `@tensorflow/tfjs-backend-wasm` (holding the `.wasm` binaries), with a trailing slash. */
export function wasmDistPath(): string {
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`;
}

async function tryNative(pkg: (typeof NATIVE_PACKAGES)[number]): Promise<void> {
  // A variable specifier keeps bundlers and tsc from resolving the optional peer.
  const specifier: string = pkg;
  await import(specifier);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('the "tensorflow" backend failed to initialise');
}

let wasmPathsSet = false;

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet) {
    wasm.setWasmPaths(wasmDistPath());
    wasmPathsSet = true;
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  registerConvBackpropFilter('wasm');
  registerMaxPoolGrad('wasm');
  registerDepthwiseBackprop('wasm');
}

async function tryCpu(options: SetupBackendOptions): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  if (options.fastCpuConvBackward) registerConvBackpropFilter('cpu');
}

/**
 * Selects a backend and waits until it is ready.
 *
 * - `"auto"`: `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node` (optional peers, imported lazily), then
 *   wasm, then cpu. The first that initialises wins; the message lists what was skipped and why.
 * - `"tensorflow"`: a native package or an error (no silent fallback when asked explicitly).
 * - `"wasm"`: also registers a `Conv2DBackpropFilter` kernel, which the wasm backend lacks (conv training needs it),
 *   a `MaxPoolGrad` kernel that keeps the gradient of windows tied at 0 (the stock one drops it), and the two
 *   depthwise conv backprop kernels it lacks (training and statistics of MobileNet-style models).
 * - `"cpu"`: the pure-JS backend; with `fastCpuConvBackward` the conv weight gradient uses the conv2d-based kernel.
 *
 * @throws `UnknownNameError` (from `@gradmax/core`) for an unknown choice; {@link InvalidArgumentError} when an explicitly requested
 *   backend cannot start.
 */
export async function setupBackend(choice: BackendChoice = 'auto', options: SetupBackendOptions = {}): Promise<BackendSetup> {
  const known = ['auto', 'tensorflow', 'wasm', 'cpu'];
  if (!known.includes(choice)) throw new UnknownNameError('backend', String(choice), known);
  const skipped: { backend: string; reason: string }[] = [];
  let nativePackage: BackendSetup['nativePackage'];
  let chosen: string | undefined;
  const attempt = async (name: string, run: () => Promise<void>): Promise<boolean> => {
    try {
      await run();
      chosen = name;
      return true;
    } catch (error) {
      skipped.push({ backend: name, reason: errorText(error) });
      return false;
    }
  };
  if (choice === 'auto' || choice === 'tensorflow') {
    for (const pkg of NATIVE_PACKAGES) {
      if (await attempt(pkg, () => tryNative(pkg))) {
        nativePackage = pkg;
        chosen = 'tensorflow';
        break;
      }
    }
  }
  if (!chosen && (choice === 'auto' || choice === 'wasm')) await attempt('wasm', tryWasm);
  if (!chosen && (choice === 'auto' || choice === 'cpu')) await attempt('cpu', () => tryCpu(options));
  if (!chosen) {
    throw new InvalidArgumentError(
      `backend "${choice}" could not be started: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
      { choice, skipped },
    );
  }
  const tried = skipped.length ? ` (not available: ${skipped.map((s) => `${s.backend} — ${s.reason}`).join('; ')})` : '';
  const detail =
    chosen === 'tensorflow'
      ? `native TensorFlow via ${nativePackage}`
      : chosen === 'wasm'
        ? 'wasm (single-threaded, SIMD; conv weight gradient, depthwise conv gradients and max-pool gradient via gradmax kernels)'
        : `cpu (pure JavaScript${options.fastCpuConvBackward ? '; conv weight gradient via the gradmax conv2d-based kernel' : ''})`;
  const message = `@gradmax/tfjs: running on the ${detail}${tried}`;
  if (options.log !== false) {
    if (typeof options.log === 'function') options.log(message);
    else console.info(message);
  }
  return { backend: tf.getBackend(), ...(nativePackage ? { nativePackage } : {}), skipped, message };
}
