/**
 * Optional WebAssembly (f64x2 SIMD) versions of the two product kernels (internal). The module is tiny,
 * embedded as bytes (see wasm/generate-kernels.mjs and wasm/kernels.wat) and compiled lazily; when
 * WebAssembly or SIMD is unavailable, or a product does not fit in 32-bit memory, callers fall back to the
 * plain TypeScript kernels, which compute the same sums in a different order.
 */
import { KERNELS_WASM_BASE64 } from './wasm/kernels-binary.js';

/** The exported kernels (see wasm/kernels.wat for their parameters). */
export interface Kernels {
  tb_4_2: (...args: number[]) => void;
  tb_1_2: (...args: number[]) => void;
  tb_4_1: (...args: number[]) => void;
  tb_1_1: (...args: number[]) => void;
  ax_4_2: (...args: number[]) => void;
  ax_1_2: (...args: number[]) => void;
  ax_4_1: (...args: number[]) => void;
  ax_1_1: (...args: number[]) => void;
  trid: (...args: number[]) => void;
  refl: (...args: number[]) => void;
  rotseq: (...args: number[]) => void;
}

/** The slice of the WebAssembly JS API used here (declared locally: the build has no DOM typings). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface Instance {
  memory: WasmMemory;
  kernels: Kernels;
}

let compiled: object | null | undefined;
let cached: Instance | undefined;
let enabled = true;
/** Largest memory (bytes) kept alive between calls; bigger products use a throw-away instance. */
const CACHE_LIMIT = 32 * 1024 * 1024;
const PAGE = 65536;

/** Turns the WebAssembly kernels on or off (for tests and benchmarks); returns the previous setting. */
export function setWasmKernelsEnabled(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

function compile(): object | null {
  if (compiled !== undefined) return compiled;
  if (!wasmApi) return (compiled = null);
  try {
    const text = atob(KERNELS_WASM_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    compiled = new wasmApi.Module(bytes);
  } catch {
    compiled = null;
  }
  return compiled;
}

/** Whether the embedded WebAssembly kernels compile and run on this runtime (independent of the switch). */
export function wasmKernelsAvailable(): boolean {
  return compile() !== null;
}

/** An instance whose memory holds at least `bytes` bytes, or undefined when WebAssembly cannot be used. */
function instanceFor(bytes: number): Instance | undefined {
  if (!enabled || bytes > 2 ** 31) return undefined;
  const mod = compile();
  if (!mod || !wasmApi) return undefined;
  const pages = Math.ceil(bytes / PAGE) + 1;
  try {
    if (bytes <= CACHE_LIMIT && cached) {
      const have = cached.memory.buffer.byteLength / PAGE;
      if (have < pages) cached.memory.grow(pages - have);
      return cached;
    }
    const memory = new wasmApi.Memory({ initial: pages });
    const inst = new wasmApi.Instance(mod, { env: { memory } });
    const made = { memory, kernels: inst.exports as unknown as Kernels };
    if (bytes <= CACHE_LIMIT) cached = made;
    return made;
  } catch {
    return undefined;
  }
}

/**
 * A float64 view of (at least) `doubles` values of WebAssembly memory plus the kernels working on it, or
 * undefined when WebAssembly cannot be used. The view is valid until the next call into this module.
 */
export function wasmWorkspace(doubles: number): { heap: Float64Array; kernels: Kernels } | undefined {
  const inst = instanceFor(doubles * 8);
  if (!inst) return undefined;
  return { heap: new Float64Array(inst.memory.buffer), kernels: inst.kernels };
}

const P_BLOCK = 512;
const R_BLOCK = 256;

/**
 * c (m×n) += a·bᵀ with a m×p and b n×p (row-major), or the symmetric Gram a·aᵀ (upper-triangle tiles only,
 * then mirrored) when `symmetric`. Returns false (and does nothing) when WebAssembly cannot be used.
 */
export function wasmTransB(m: number, n: number, p: number, a: Float64Array, b: Float64Array, c: Float64Array, symmetric: boolean): boolean {
  const aLen = m * p;
  const bLen = symmetric ? 0 : n * p;
  const cLen = m * n;
  const inst = instanceFor((aLen + bLen + cLen) * 8);
  if (!inst) return false;
  const heap = new Float64Array(inst.memory.buffer);
  // Callers may pass longer arrays (e.g. the first rows of a block): copy exactly the operands.
  heap.set(a.subarray(0, aLen), 0);
  const bOff = symmetric ? 0 : aLen;
  if (!symmetric) heap.set(b.subarray(0, bLen), bOff);
  const cOff = aLen + bLen;
  if (symmetric) heap.fill(0, cOff, cOff + cLen);
  else heap.set(c.subarray(0, cLen), cOff);
  const k = inst.kernels;
  const A = 0, B = bOff * 8, C = cOff * 8;
  const m4 = m - (m % 4);
  for (let pp = 0; pp < p; pp += P_BLOCK) {
    const pe = Math.min(pp + P_BLOCK, p);
    for (let jj = 0; jj < n; jj += R_BLOCK) {
      const je = Math.min(jj + R_BLOCK, n);
      if (symmetric) {
        for (let i = 0; i < Math.min(je, m); i += 4) {
          const j0 = Math.max(jj, i);
          const j2 = j0 + ((je - j0) & ~1);
          if (i + 4 <= m) {
            k.tb_4_2(A, B, C, p, n, i, i + 4, j0, j2, pp, pe);
            if (j2 < je) k.tb_4_1(A, B, C, p, n, i, i + 4, j2, je, pp, pe);
          } else {
            for (let r = i; r < m; r++) {
              const r0 = Math.max(jj, r);
              const r2 = r0 + ((je - r0) & ~1);
              k.tb_1_2(A, B, C, p, n, r, r + 1, r0, r2, pp, pe);
              if (r2 < je) k.tb_1_1(A, B, C, p, n, r, r + 1, r2, je, pp, pe);
            }
          }
        }
      } else {
        const j2 = jj + ((je - jj) & ~1);
        k.tb_4_2(A, B, C, p, n, 0, m4, jj, j2, pp, pe);
        if (j2 < je) k.tb_4_1(A, B, C, p, n, 0, m4, j2, je, pp, pe);
        if (m4 < m) {
          k.tb_1_2(A, B, C, p, n, m4, m, jj, j2, pp, pe);
          if (j2 < je) k.tb_1_1(A, B, C, p, n, m4, m, j2, je, pp, pe);
        }
      }
    }
  }
  const out = heap.subarray(cOff, cOff + cLen);
  if (symmetric) {
    for (let i = 0; i < m; i++) {
      for (let j = i; j < n; j++) {
        const v = out[i * n + j]!;
        c[i * n + j] = c[i * n + j]! + v;
        if (j !== i) c[j * n + i] = c[j * n + i]! + v;
      }
    }
  } else {
    c.set(out, 0);
  }
  return true;
}

const K_BLOCK = 128;
const J_BLOCK = 512;

/**
 * c (m×n) += A·B with B p×n row-major and A(i, k) = a[i·ars + k·acs] (`a` holds m·p values). Returns false
 * (and does nothing) when WebAssembly cannot be used.
 */
export function wasmGemm(m: number, n: number, p: number, a: Float64Array, ars: number, acs: number, b: Float64Array, c: Float64Array): boolean {
  const aLen = m * p;
  const bLen = p * n;
  const cLen = m * n;
  const inst = instanceFor((aLen + bLen + cLen) * 8);
  if (!inst) return false;
  const heap = new Float64Array(inst.memory.buffer);
  heap.set(a.subarray(0, aLen), 0);
  heap.set(b.subarray(0, bLen), aLen);
  heap.set(c.subarray(0, cLen), aLen + bLen);
  const k = inst.kernels;
  const A = 0, B = aLen * 8, C = (aLen + bLen) * 8;
  const m4 = m - (m % 4);
  for (let jj = 0; jj < n; jj += J_BLOCK) {
    const je = Math.min(jj + J_BLOCK, n);
    for (let kk = 0; kk < p; kk += K_BLOCK) {
      const ke = Math.min(kk + K_BLOCK, p);
      const k2 = kk + ((ke - kk) & ~1);
      if (m4 > 0) {
        k.ax_4_2(A, ars, acs, B, C, n, 0, m4, kk, k2, jj, je);
        if (k2 < ke) k.ax_4_1(A, ars, acs, B, C, n, 0, m4, k2, ke, jj, je);
      }
      if (m4 < m) {
        k.ax_1_2(A, ars, acs, B, C, n, m4, m, kk, k2, jj, je);
        if (k2 < ke) k.ax_1_1(A, ars, acs, B, C, n, m4, m, k2, ke, jj, je);
      }
    }
  }
  c.set(heap.subarray(aLen + bLen, aLen + bLen + cLen));
  return true;
}
