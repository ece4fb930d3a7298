// Backend choice in the browser: WebGPU (through @gradmax/tfjs's setupBackend, which reads the adapter and registers
// the tie-correct MaxPoolGrad kernel), else WebGL, else WebAssembly, else plain JavaScript.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Imported here so that the bundler includes it: @gradmax/tfjs then finds the webgpu backend registered.
import '@tensorflow/tfjs-backend-webgpu';
import { adapterLabel, setupBackend } from '@gradmax/tfjs';
// Vite serves the wasm binaries as assets; setWasmPaths gets their URLs.
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

/** The order backends are tried in. */
export const ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'];

const start = {
  /** `software`: whether a software adapter (SwiftShader) is acceptable. */
  async webgpu(software) {
    const setup = await setupBackend('webgpu', { log: false });
    if (setup.adapter.software && !software) {
      throw new Error(`only a software adapter (${adapterLabel(setup.adapter)}); choose "webgpu" to use it anyway`);
    }
    return setup.adapter;
  },
  async webgl() {
    await import('@tensorflow/tfjs-backend-webgl');
    if (!(await tf.setBackend('webgl'))) throw new Error('the webgl backend failed to initialise (no WebGL2?)');
  },
  async wasm() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd });
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  },
  async cpu() {
    if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  },
};

/**
 * Starts `preferred` (one of {@link ORDER}, or `auto`), falling back along {@link ORDER}. `auto` skips a software
 * WebGPU adapter (slower than WebGL or wasm); asking for `webgpu` accepts it.
 * @param {string} preferred
 * @returns {Promise<{ backend: string, adapter?: { vendor: string, architecture: string, description: string, software: boolean }, skipped: { backend: string, reason: string }[] }>}
 */
export async function chooseBackend(preferred) {
  const first = preferred === 'auto' ? 0 : Math.max(0, ORDER.indexOf(preferred));
  const skipped = [];
  for (const name of ORDER.slice(first)) {
    try {
      const adapter = await start[name](preferred === 'webgpu');
      return { backend: tf.getBackend(), ...(adapter ? { adapter } : {}), skipped };
    } catch (error) {
      skipped.push({ backend: name, reason: String(error?.message ?? error).split('\n')[0] });
    }
  }
  throw new Error(`no backend started: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}

/** One line saying what runs, e.g. `webgpu on google swiftshader, software`. */
export function describeBackend({ backend, adapter }) {
  return adapter ? `${backend} on ${adapterLabel(adapter)}` : backend;
}
