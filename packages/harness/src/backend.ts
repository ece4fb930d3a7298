/**
 * Backend selection for harness runs, through `@gradmax/tfjs`'s `setupBackend`: `auto` prefers
 * `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`, then wasm, then cpu, and says which one runs and why.
 * On cpu the conv2d-based conv weight-gradient kernel is registered (the stock one is ~20× slower).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';
import { setupBackend as setupTfjsBackend } from '@gradmax/tfjs';
import type { BackendInfo, BackendRequest } from './types.js';

/** The backend names accepted by `--backend`. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** Parses a `--backend` value. Throws {@link InvalidArgumentError} naming the accepted values. */
export function parseBackendRequest(value: string): BackendRequest {
  if ((BACKEND_REQUESTS as readonly string[]).includes(value)) return value as BackendRequest;
  throw new InvalidArgumentError(`unknown backend "${value}"; use one of ${BACKEND_REQUESTS.join(', ')}`, { backend: value });
}

let active: BackendInfo | undefined;

const PACKAGES: Record<string, string> = { wasm: '@tensorflow/tfjs-backend-wasm', cpu: '@tensorflow/tfjs-backend-cpu' };
const DEVICES: Record<string, string> = {
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
    // The harness grows synchronously (grow), which webgpu in Node cannot serve: auto never picks webgpu.
    setup = await setupTfjsBackend(request, { log: false, fastCpuConvBackward: true, skipWebgpu: true });
  } catch (error) {
    throw new UnsupportedError(`backend "${request}" is not available: ${(error as Error).message}`, { backend: request });
  }
  const name = setup.backend;
  const info: BackendInfo = {
    name,
    device: setup.nativePackage ? `${setup.nativePackage} (libtensorflow)` : (DEVICES[name] ?? name),
    requested: request,
    package: setup.nativePackage ?? PACKAGES[name] ?? name,
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
