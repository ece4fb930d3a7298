/**
 * Backend selection for harness runs. `auto` prefers `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`,
 * then wasm, then cpu, and says which one runs and why.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';
import type { BackendInfo, BackendRequest } from './types.js';

/** The backend names accepted by `--backend`. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** Parses a `--backend` value. Throws {@link InvalidArgumentError} naming the accepted values. */
export function parseBackendRequest(value: string): BackendRequest {
  if ((BACKEND_REQUESTS as readonly string[]).includes(value)) return value as BackendRequest;
  throw new InvalidArgumentError(`unknown backend "${value}"; use one of ${BACKEND_REQUESTS.join(', ')}`, { backend: value });
}

let active: BackendInfo | undefined;

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ name);
    return true;
  } catch {
    return false;
  }
}

async function setupTensorflow(): Promise<{ device: string; pkg: string } | undefined> {
  for (const [pkg, device] of [
    ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu (libtensorflow, CUDA)'],
    ['@tensorflow/tfjs-node', 'tfjs-node (libtensorflow, CPU)'],
  ] as const) {
    if (await tryImport(pkg)) {
      if (await tf.setBackend('tensorflow')) return { device, pkg };
    }
  }
  return undefined;
}

async function setupWasm(): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(dir);
  try {
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/**
 * Sets up the tfjs backend for this process (once per process: later calls return the same info when the
 * request matches or is `auto`). Loads `@tensorflow/tfjs-layers` for the gradient registrations.
 * Throws {@link UnsupportedError} when an explicitly requested backend is not available.
 */
export async function setupBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  parseBackendRequest(request);
  if (active && (active.requested === request || request === 'auto' || active.name === request)) return active;
  await import('@tensorflow/tfjs-layers');
  await import('@tensorflow/tfjs-backend-cpu');
  const notes: string[] = [];
  let info: BackendInfo | undefined;
  if (request === 'auto' || request === 'tensorflow') {
    const found = await setupTensorflow();
    if (found) info = { name: 'tensorflow', device: found.device, requested: request, package: found.pkg };
    else if (request === 'tensorflow') {
      throw new UnsupportedError(
        'backend "tensorflow" needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (install one; their install script downloads libtensorflow)',
        { backend: request },
      );
    } else notes.push('@tensorflow/tfjs-node(-gpu) not installed');
  }
  if (!info && (request === 'auto' || request === 'wasm')) {
    if (await setupWasm()) info = { name: 'wasm', device: 'wasm (SIMD, single-threaded)', requested: request, package: '@tensorflow/tfjs-backend-wasm' };
    else if (request === 'wasm') throw new UnsupportedError('backend "wasm" failed to initialise', { backend: request });
    else notes.push('wasm failed to initialise');
  }
  if (!info) {
    await tf.setBackend('cpu');
    info = { name: 'cpu', device: 'cpu (plain JavaScript)', requested: request, package: '@tensorflow/tfjs-backend-cpu' };
  }
  await tf.ready();
  if (notes.length) info.note = notes.join('; ');
  if (tf.getBackend() !== info.name) {
    throw new UnsupportedError(`backend setup chose "${info.name}" but tfjs runs "${tf.getBackend()}"`, { backend: request });
  }
  active = info;
  return info;
}

/** The backend set up in this process, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}
