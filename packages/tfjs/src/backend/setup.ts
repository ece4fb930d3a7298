/**
 * Picks and initialises a TensorFlow.js backend: native GPU (`@tensorflow/tfjs-node-gpu`), WebGPU on a hardware
 * adapter (`@tensorflow/tfjs-backend-webgpu`, in Node through the `webgpu` package), native CPU
 * (`@tensorflow/tfjs-node`), then wasm, then cpu. The native and WebGPU packages are optional peers loaded lazily.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { InvalidArgumentError, UnknownNameError } from '@gradmax/core';
import { registerConvBackpropFilter } from './conv2d-backprop-filter.js';
import { registerDepthwiseBackprop } from './depthwise-backprop.js';
import { registerMaxPoolGrad } from './max-pool-grad.js';
import { registerDilatedConvGradients } from './dilated-conv-gradient.js';
import { registerConv3dBackpropInput } from './conv3d-backprop-input.js';

/**
 * The backends {@link setupBackend} knows, in the order `auto` tries them (`webgpu` only on a hardware adapter in
 * `auto`). One table: the CLI, the tests and the messages read it.
 */
export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

/** Backend requested from {@link setupBackend}: one of {@link BACKENDS}, or `auto`. */
export type BackendChoice = 'auto' | (typeof BACKENDS)[number];

/** The WebGPU adapter a `webgpu` backend runs on (from `GPUAdapter.info`). */
export interface GpuAdapterInfo {
  /** Vendor (`"nvidia"`, `"google"` for SwiftShader, ...); empty when the browser hides it. */
  vendor: string;
  /** Architecture (`"ampere"`, `"swiftshader"`, ...); may be empty. */
  architecture: string;
  /** Driver description (`"SwiftShader driver 5.0.0"`); may be empty. */
  description: string;
  /** Whether the adapter is a software rasteriser (SwiftShader, llvmpipe, lavapipe, or flagged as a fallback adapter). */
  software: boolean;
}

/** Options of {@link setupBackend}. */
export interface SetupBackendOptions {
  /**
   * Register the conv2d-based `Conv2DBackpropFilter` kernel on the cpu backend too (the stock cpu kernel is
   * about 20× slower). Off by default: the stock kernel stays in place unless asked.
   */
  fastCpuConvBackward?: boolean;
  /**
   * WebGPU power preference passed to `requestAdapter` (default `"high-performance"`).
   */
  powerPreference?: 'low-power' | 'high-performance';
  /** Print the one-line message saying which backend runs (default true). */
  log?: boolean | ((message: string) => void);
  /**
   * `auto` does not try webgpu (for callers that grow synchronously with `grow`, which webgpu in Node cannot serve;
   * see {@link withSyncReads}). Asking for `"webgpu"` by name is unaffected.
   */
  skipWebgpu?: boolean;
}

/** What {@link setupBackend} chose. */
export interface BackendSetup {
  /** The tfjs backend name now active (`"tensorflow"`, `"webgpu"`, `"wasm"`, `"cpu"`). */
  backend: string;
  /** The WebGPU adapter, when the backend is `"webgpu"`. */
  adapter?: GpuAdapterInfo;
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
  // No static `node:` import in this module: it is also bundled for browsers (Vite's dev server refuses named imports
  // of Node built-ins). Node ≥ 20.16 has process.getBuiltinModule; older Node 20 has a synchronous import.meta.resolve.
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const nodeModule = getBuiltin?.('node:module') as typeof import('node:module') | undefined;
  const entry = nodeModule
    ? nodeModule.createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')
    : decodeURIComponent(new URL(import.meta.resolve('@tensorflow/tfjs-backend-wasm')).pathname);
  return entry.slice(0, Math.max(entry.lastIndexOf('/'), entry.lastIndexOf('\\')) + 1);
}

async function tryNative(pkg: (typeof NATIVE_PACKAGES)[number]): Promise<void> {
  // A variable specifier keeps bundlers and tsc from resolving the optional peer.
  const specifier: string = pkg;
  await import(/* @vite-ignore */ specifier);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('the "tensorflow" backend failed to initialise');
}

/** The part of a WebGPU `GPUAdapter` that {@link describeAdapter} reads. */
export interface GpuAdapterLike {
  /** `GPUAdapter.info` (Chrome ≥ 114, Dawn for Node). */
  info?: { vendor?: string; architecture?: string; description?: string; device?: string; isFallbackAdapter?: boolean };
  /** Older browsers: the fallback flag on the adapter itself. */
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

/** Software rasterisers that expose a WebGPU adapter: fine for tests, not for speed. */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|warp|basic render/i;

/** Reads `GPUAdapter.info` into a {@link GpuAdapterInfo}. */
export function describeAdapter(adapter: GpuAdapterLike): GpuAdapterInfo {
  const info = adapter.info ?? {};
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const description = info.description ?? '';
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE_ADAPTER.test(`${vendor} ${architecture} ${description} ${info.device ?? ''}`);
  return { vendor, architecture, description, software };
}

/** `vendor architecture (description)`, for messages and reports. */
export function adapterLabel(adapter: GpuAdapterInfo): string {
  const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  return `${name}${adapter.description ? ` (${adapter.description})` : ''}${adapter.software ? ', software' : ''}`;
}

function globalGpu(): GpuLike | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  return nav?.gpu;
}

/**
 * Gives Node a `navigator.gpu` from the `webgpu` package (Dawn), once. In a browser `navigator.gpu` exists already.
 */
async function ensureNavigatorGpu(): Promise<GpuLike> {
  const existing = globalGpu();
  if (existing) return existing;
  if (typeof process === 'undefined' || !process.versions?.node) throw new Error('this browser has no navigator.gpu (WebGPU is not enabled)');
  const specifier: string = 'webgpu';
  let dawn: { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
  try {
    dawn = (await import(/* @vite-ignore */ specifier)) as typeof dawn;
  } catch (error) {
    throw new Error(`the optional peer "webgpu" is not installed (${errorText(error)})`);
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const g = globalThis as { navigator?: Record<string, unknown> };
  if (g.navigator && typeof g.navigator === 'object') {
    // Node ≥ 21 has a navigator object of its own: add gpu to it.
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  return gpu;
}

let webgpuAdapter: GpuAdapterInfo | undefined;

async function tryWebgpu(options: SetupBackendOptions, allowSoftware: boolean): Promise<GpuAdapterInfo> {
  const gpu = await ensureNavigatorGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter (no Vulkan/Metal/D3D12 driver found; for a software one set VK_ICD_FILENAMES to SwiftShader)');
  const info = describeAdapter(adapter);
  if (info.software && !allowSoftware) throw new Error(`only a software adapter is available (${adapterLabel(info)}); ask for "webgpu" by name to use it`);
  // A bundled browser app imports the backend itself (a bundler cannot see this variable specifier): then it is
  // registered already and nothing is loaded here.
  if (!tf.findBackendFactory('webgpu')) {
    const specifier: string = '@tensorflow/tfjs-backend-webgpu';
    try {
      await import(/* @vite-ignore */ specifier);
    } catch (error) {
      throw new Error(`the optional peer "@tensorflow/tfjs-backend-webgpu" is not installed (${errorText(error)}); in a bundled app, import it yourself before setupBackend`);
    }
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend failed to initialise');
  // The stock webgpu MaxPoolGrad does not follow TF's tie rule on windows tied at 0 (a new, all-zero channel).
  registerMaxPoolGrad('webgpu');
  webgpuAdapter = info;
  return info;
}

/** The adapter of the active `webgpu` backend (undefined on other backends). */
export function activeAdapter(): GpuAdapterInfo | undefined {
  return tf.getBackend() === 'webgpu' ? webgpuAdapter : undefined;
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
  registerConv3dBackpropInput('wasm');
}

async function tryCpu(options: SetupBackendOptions): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  if (options.fastCpuConvBackward) registerConvBackpropFilter('cpu');
}

/**
 * Selects a backend and waits until it is ready.
 *
 * - `"auto"`: `@tensorflow/tfjs-node-gpu`, then WebGPU on a hardware adapter, then `@tensorflow/tfjs-node` (optional
 *   peers, imported lazily), then wasm, then cpu. The first that initialises wins; the message lists what was
 *   skipped and why. A software WebGPU adapter (SwiftShader) is skipped: it is slower than wasm.
 * - `"tensorflow"`: a native package or an error (no silent fallback when asked explicitly).
 * - `"webgpu"`: `@tensorflow/tfjs-backend-webgpu` on any adapter, software included (registers the tie-correct
 *   `MaxPoolGrad` kernel, as for wasm). It is loaded lazily unless already imported, which a bundled browser app must
 *   do itself (`import '@tensorflow/tfjs-backend-webgpu'`: bundlers cannot follow the lazy import); in Node `navigator.gpu` comes from
 *   the `webgpu` package (Dawn; needs a Vulkan driver). In Node synchronous reads of webgpu tensors are impossible
 *   (no `OffscreenCanvas`): growth runs through {@link withSyncReads}, which moves the growth step to cpu.
 * - `"wasm"`: also registers a `Conv2DBackpropFilter` kernel, which the wasm backend lacks (conv training needs it),
 *   a `MaxPoolGrad` kernel that keeps the gradient of windows tied at 0 (the stock one drops it), and the two
 *   depthwise conv backprop kernels it lacks (training and statistics of MobileNet-style models).
 * - `"cpu"`: the pure-JS backend; with `fastCpuConvBackward` the conv weight gradient uses the conv2d-based kernel.
 *
 * On every backend it also extends the gradients of dilated 2-D and depthwise convolutions, which tfjs lacks
 * ({@link registerDilatedConvGradients}).
 *
 * @throws `UnknownNameError` (from `@gradmax/core`) for an unknown choice; {@link InvalidArgumentError} when an explicitly requested
 *   backend cannot start.
 */
export async function setupBackend(choice: BackendChoice = 'auto', options: SetupBackendOptions = {}): Promise<BackendSetup> {
  const known: string[] = ['auto', ...BACKENDS];
  if (!known.includes(choice)) throw new UnknownNameError('backend', String(choice), known);
  const skipped: { backend: string; reason: string }[] = [];
  let nativePackage: BackendSetup['nativePackage'];
  let adapter: GpuAdapterInfo | undefined;
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
  const native = async (pkg: (typeof NATIVE_PACKAGES)[number]): Promise<void> => {
    if (await attempt(pkg, () => tryNative(pkg))) {
      nativePackage = pkg;
      chosen = 'tensorflow';
    }
  };
  if (choice === 'auto' || choice === 'tensorflow') await native('@tensorflow/tfjs-node-gpu');
  if (!chosen && (choice === 'webgpu' || (choice === 'auto' && !options.skipWebgpu))) {
    await attempt('webgpu', async () => {
      adapter = await tryWebgpu(options, choice === 'webgpu');
    });
  }
  if (!chosen && (choice === 'auto' || choice === 'tensorflow')) await native('@tensorflow/tfjs-node');
  if (!chosen && (choice === 'auto' || choice === 'wasm')) await attempt('wasm', tryWasm);
  if (!chosen && (choice === 'auto' || choice === 'cpu')) await attempt('cpu', () => tryCpu(options));
  if (!chosen) {
    throw new InvalidArgumentError(
      `backend "${choice}" could not be started: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
      { choice, skipped },
    );
  }
  // Dilated Conv1D/Conv2D/separable/depthwise gradients (tfjs has none), for statistics and for training.
  registerDilatedConvGradients();
  const tried = skipped.length ? ` (not available: ${skipped.map((s) => `${s.backend} — ${s.reason}`).join('; ')})` : '';
  const detail =
    chosen === 'tensorflow'
      ? `native TensorFlow via ${nativePackage}`
      : chosen === 'webgpu'
        ? `webgpu on ${adapterLabel(adapter!)}${adapter!.software ? ' — a software rasteriser: correct but slow, not a GPU speed' : ''}`
      : chosen === 'wasm'
        ? 'wasm (single-threaded, SIMD; conv weight gradient, depthwise conv gradients, 3-D conv input gradient and max-pool gradient via gradmax kernels)'
        : `cpu (pure JavaScript${options.fastCpuConvBackward ? '; conv weight gradient via the gradmax conv2d-based kernel' : ''})`;
  const message = `@gradmax/tfjs: running on the ${detail}${tried}`;
  if (options.log !== false) {
    if (typeof options.log === 'function') options.log(message);
    else console.info(message);
  }
  return { backend: tf.getBackend(), ...(nativePackage ? { nativePackage } : {}), ...(adapter ? { adapter } : {}), skipped, message };
}
