/**
 * Backend selection for harness runs, through `@gradmax/tfjs`'s `setupBackend`: `auto` prefers
 * `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`, then wasm, then cpu, and says which one runs and why.
 * `webgpu` runs only when asked by name (any adapter, SwiftShader included), and only for tasks that read
 * asynchronously ({@link Task.asyncReads}). On cpu the conv2d-based conv weight-gradient kernel is registered (the
 * stock one is ~20× slower).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';
import { adapterLabel, setupBackend as setupTfjsBackend } from '@gradmax/tfjs';
import type { BackendInfo, BackendRequest, Task } from './types.js';

/** The backend names accepted by `--backend`. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '');
}

/**
 * The key that separates results by backend: the backend name, plus vendor, architecture and description of the
 * adapter on webgpu (`webgpu-google-swiftshader-swiftshader-driver-5.0.0`). Result ids and report tables use it, so
 * runs on different backends or adapters never share a file or a table.
 */
export function backendKey(backend: Pick<BackendInfo, 'name' | 'adapter'>): string {
  const a = backend.adapter;
  if (!a) return backend.name;
  const parts = [a.vendor, a.architecture, a.description].map(slug).filter(Boolean);
  return [backend.name, ...(parts.length ? parts : ['unknown-adapter'])].join('-');
}

/** The backend for headings and progress lines: `webgpu on google swiftshader (SwiftShader driver 5.0.0), software`. */
export function backendLabel(backend: Pick<BackendInfo, 'name' | 'adapter'>): string {
  return backend.adapter ? `${backend.name} on ${adapterLabel(backend.adapter)}` : backend.name;
}

/**
 * Throws `UnsupportedError` (from `@gradmax/core`) when `task` cannot run on `backend`: on webgpu in Node every read must be
 * asynchronous, which only tasks with {@link Task.asyncReads} guarantee.
 */
export function assertTaskRunsOn(task: Pick<Task, 'name' | 'asyncReads'>, backend: Pick<BackendInfo, 'name'>): void {
  if (backend.name === 'webgpu' && !task.asyncReads) {
    throw new UnsupportedError(
      `task "${task.name}" cannot run on webgpu: it reads tensors synchronously, which webgpu in Node cannot serve (no OffscreenCanvas); the mnist-cnn and fashion-mnist-cnn tasks run on webgpu`,
      { task: task.name, backend: backend.name },
    );
  }
}

/** Parses a `--backend` value. Throws {@link InvalidArgumentError} naming the accepted values. */
export function parseBackendRequest(value: string): BackendRequest {
  if ((BACKEND_REQUESTS as readonly string[]).includes(value)) return value as BackendRequest;
  throw new InvalidArgumentError(`unknown backend "${value}"; use one of ${BACKEND_REQUESTS.join(', ')}`, { backend: value });
}

let active: BackendInfo | undefined;

const PACKAGES: Record<string, string> = { webgpu: '@tensorflow/tfjs-backend-webgpu', wasm: '@tensorflow/tfjs-backend-wasm', cpu: '@tensorflow/tfjs-backend-cpu' };
const DEVICES: Record<string, string> = {
  webgpu: 'webgpu',
  wasm: 'wasm (SIMD, single-threaded)',
  cpu: 'cpu (plain JavaScript)',
};

/**
 * Sets up the tfjs backend for this process (once per process: later calls return the same info when the
 * request matches or is `auto`). Loads `@tensorflow/tfjs-layers` for the gradient registrations.
 * Throws {@link UnsupportedError} when an explicitly requested backend is not available.
 */
export async function setupBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  parseBackendRequest(request);
  if (active && (active.requested === request || request === 'auto' || active.name === request)) return active;
  await import('@tensorflow/tfjs-layers');
  let setup;
  try {
    // Most tasks grow synchronously (grow), which webgpu in Node cannot serve: auto never picks webgpu.
    setup = await setupTfjsBackend(request, { log: false, fastCpuConvBackward: true, skipWebgpu: true });
  } catch (error) {
    throw new UnsupportedError(`backend "${request}" is not available: ${(error as Error).message}`, { backend: request });
  }
  const name = setup.backend;
  const info: BackendInfo = {
    name,
    device: setup.nativePackage
      ? `${setup.nativePackage} (libtensorflow)`
      : setup.adapter
        ? `webgpu on ${adapterLabel(setup.adapter)}${setup.adapter.software ? ' (a software rasteriser: correct, but its speed says nothing about a GPU)' : ''}`
        : (DEVICES[name] ?? name),
    requested: request,
    package: setup.nativePackage ?? PACKAGES[name] ?? name,
    ...(setup.adapter ? { adapter: setup.adapter } : {}),
  };
  if (setup.skipped.length) {
    const why = (reason: string) => (/Cannot find (package|module)/.test(reason) ? 'not installed' : reason);
    info.note = `not available: ${setup.skipped.map((s) => `${s.backend} (${why(s.reason)})`).join('; ')}`;
  }
  if (tf.getBackend() !== name) throw new UnsupportedError(`backend setup chose "${name}" but tfjs runs "${tf.getBackend()}"`, { backend: request });
  active = info;
  return info;
}

/** The backend set up in this process, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}
