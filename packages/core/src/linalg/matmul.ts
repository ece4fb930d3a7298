/**
 * Dense matrix products on row-major float64 data: a·b, aᵀ·b and a·bᵀ, without materialising transposes.
 * The kernels are cache-blocked and register-blocked (i-k-j order with 4×4 register tiles for a·b and aᵀ·b;
 * 4×2 tiles of dot products for a·bᵀ). Products above a small size run in an embedded WebAssembly SIMD
 * (f64x2) version of the same kernels when the runtime supports it (Node ≥ 16, current browsers), with the
 * TypeScript kernels as fallback; results agree to rounding (summation order differs).
 */
import { ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { checkMatrix } from './checks.js';
import { wasmGemm, wasmTransB } from './wasm-kernels.js';

/** Products with fewer multiply-adds than this stay in TypeScript (WebAssembly set-up would dominate). */
const WASM_MIN_WORK = 32768;

const K_BLOCK = 128;
const J_BLOCK = 512;

/**
 * c (m×n) += A·B where B is p×n row-major and A(i, k) = a[i·ars + k·acs]. Internal kernel: the strides
 * let the same code serve a·b (ars = p, acs = 1) and aᵀ·b (ars = 1, acs = m). Loops are i-k-j over
 * (K_BLOCK × J_BLOCK) panels of B with a 4-row × 4-k register tile.
 */
export function gemmAccumulate(
  m: number, n: number, p: number,
  a: Float64Array, ars: number, acs: number,
  b: Float64Array, c: Float64Array,
): void {
  if (m * n * p >= WASM_MIN_WORK && wasmGemm(m, n, p, a, ars, acs, b, c)) return;
  const m4 = m - (m % 4);
  for (let jj = 0; jj < n; jj += J_BLOCK) {
    const je = Math.min(jj + J_BLOCK, n);
    for (let kk = 0; kk < p; kk += K_BLOCK) {
      const ke = Math.min(kk + K_BLOCK, p);
      const ke4 = ke - ((ke - kk) % 4);
      for (let i = 0; i < m4; i += 4) {
        const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
        const a0 = i * ars, a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (let k = kk; k < ke4; k += 4) {
          const o0 = k * acs, o1 = o0 + acs, o2 = o1 + acs, o3 = o2 + acs;
          const x00 = a[a0 + o0]!, x01 = a[a0 + o1]!, x02 = a[a0 + o2]!, x03 = a[a0 + o3]!;
          const x10 = a[a1 + o0]!, x11 = a[a1 + o1]!, x12 = a[a1 + o2]!, x13 = a[a1 + o3]!;
          const x20 = a[a2 + o0]!, x21 = a[a2 + o1]!, x22 = a[a2 + o2]!, x23 = a[a2 + o3]!;
          const x30 = a[a3 + o0]!, x31 = a[a3 + o1]!, x32 = a[a3 + o2]!, x33 = a[a3 + o3]!;
          const b0 = k * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
          for (let j = jj; j < je; j++) {
            const y0 = b[b0 + j]!, y1 = b[b1 + j]!, y2 = b[b2 + j]!, y3 = b[b3 + j]!;
            c[c0 + j] = c[c0 + j]! + x00 * y0 + x01 * y1 + x02 * y2 + x03 * y3;
            c[c1 + j] = c[c1 + j]! + x10 * y0 + x11 * y1 + x12 * y2 + x13 * y3;
            c[c2 + j] = c[c2 + j]! + x20 * y0 + x21 * y1 + x22 * y2 + x23 * y3;
            c[c3 + j] = c[c3 + j]! + x30 * y0 + x31 * y1 + x32 * y2 + x33 * y3;
          }
        }
        for (let k = ke4; k < ke; k++) {
          const o = k * acs;
          const x0 = a[a0 + o]!, x1 = a[a1 + o]!, x2 = a[a2 + o]!, x3 = a[a3 + o]!;
          const b0 = k * n;
          for (let j = jj; j < je; j++) {
            const y = b[b0 + j]!;
            c[c0 + j] = c[c0 + j]! + x0 * y;
            c[c1 + j] = c[c1 + j]! + x1 * y;
            c[c2 + j] = c[c2 + j]! + x2 * y;
            c[c3 + j] = c[c3 + j]! + x3 * y;
          }
        }
      }
      for (let i = m4; i < m; i++) {
        const c0 = i * n;
        const a0 = i * ars;
        let k = kk;
        for (; k + 3 < ke; k += 4) {
          const x0 = a[a0 + k * acs]!, x1 = a[a0 + (k + 1) * acs]!, x2 = a[a0 + (k + 2) * acs]!, x3 = a[a0 + (k + 3) * acs]!;
          const b0 = k * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
          for (let j = jj; j < je; j++) {
            c[c0 + j] = c[c0 + j]! + x0 * b[b0 + j]! + x1 * b[b1 + j]! + x2 * b[b2 + j]! + x3 * b[b3 + j]!;
          }
        }
        for (; k < ke; k++) {
          const x = a[a0 + k * acs]!;
          const b0 = k * n;
          for (let j = jj; j < je; j++) c[c0 + j] = c[c0 + j]! + x * b[b0 + j]!;
        }
      }
    }
  }
}

const P_BLOCK = 256;
const R_BLOCK = 128;

/** Adds rows i..i+3 × columns j, j+1 of a·bᵀ over k ∈ [pp, pe) into c (4×2 register tile). */
function tile42(a: Float64Array, b: Float64Array, c: Float64Array, p: number, n: number, i: number, j: number, pp: number, pe: number): void {
  const a0 = i * p, a1 = a0 + p, a2 = a1 + p, a3 = a2 + p;
  const b0 = j * p, b1 = b0 + p;
  let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
  for (let k = pp; k < pe; k++) {
    const y0 = b[b0 + k]!, y1 = b[b1 + k]!;
    let x = a[a0 + k]!;
    s00 += x * y0; s01 += x * y1;
    x = a[a1 + k]!;
    s10 += x * y0; s11 += x * y1;
    x = a[a2 + k]!;
    s20 += x * y0; s21 += x * y1;
    x = a[a3 + k]!;
    s30 += x * y0; s31 += x * y1;
  }
  const c0 = i * n + j;
  c[c0] = c[c0]! + s00; c[c0 + 1] = c[c0 + 1]! + s01;
  const c1 = c0 + n;
  c[c1] = c[c1]! + s10; c[c1 + 1] = c[c1 + 1]! + s11;
  const c2 = c1 + n;
  c[c2] = c[c2]! + s20; c[c2 + 1] = c[c2 + 1]! + s21;
  const c3 = c2 + n;
  c[c3] = c[c3]! + s30; c[c3 + 1] = c[c3 + 1]! + s31;
}

/** Adds the single entry (i, j) of a·bᵀ over k ∈ [pp, pe) into c. */
function dotInto(a: Float64Array, b: Float64Array, c: Float64Array, p: number, n: number, i: number, j: number, pp: number, pe: number): void {
  const a0 = i * p, b0 = j * p;
  let s = 0;
  for (let k = pp; k < pe; k++) s += a[a0 + k]! * b[b0 + k]!;
  c[i * n + j] = c[i * n + j]! + s;
}

/**
 * c (m×n) += a·bᵀ where a is m×p and b is n×p, both row-major (internal kernel: 4×2 register tiles, blocked
 * over p and over rows of b). With `symmetric` (a and b the same array, m = n), only tiles touching the upper
 * triangle are computed and then mirrored: the exactly symmetric Gram matrix a·aᵀ at about half the cost.
 */
export function gemmTransBAccumulate(
  m: number, n: number, p: number, a: Float64Array, b: Float64Array, c: Float64Array, symmetric = false,
): void {
  if (m * n * p >= WASM_MIN_WORK && wasmTransB(m, n, p, a, b, c, symmetric)) return;
  const tmp = symmetric ? new Float64Array(m * n) : c;
  const m4 = m - (m % 4);
  for (let pp = 0; pp < p; pp += P_BLOCK) {
    const pe = Math.min(pp + P_BLOCK, p);
    for (let jj = 0; jj < n; jj += R_BLOCK) {
      const je = Math.min(jj + R_BLOCK, n);
      const iEnd = symmetric ? Math.min(je, m) : m;
      for (let i = 0; i < iEnd; i += 4) {
        const full = i < m4;
        // In symmetric mode, start at the first column pair that reaches the upper triangle of this row block.
        let j = symmetric ? Math.max(jj, i & ~1) : jj;
        if (symmetric && j > jj && ((j - jj) & 1)) j--;
        for (; j + 1 < je; j += 2) {
          if (full) tile42(a, b, tmp, p, n, i, j, pp, pe);
          else for (let ii = i; ii < m; ii++) { dotInto(a, b, tmp, p, n, ii, j, pp, pe); dotInto(a, b, tmp, p, n, ii, j + 1, pp, pe); }
        }
        if (j < je) for (let ii = i; ii < Math.min(i + 4, m); ii++) dotInto(a, b, tmp, p, n, ii, j, pp, pe);
      }
    }
  }
  if (symmetric) {
    for (let i = 0; i < m; i++) {
      for (let j = i; j < n; j++) {
        const v = tmp[i * n + j]!;
        c[i * n + j] = c[i * n + j]! + v;
        if (j !== i) c[j * n + i] = c[j * n + i]! + v;
      }
    }
  }
}

function target(what: string, rows: number, cols: number, into: Matrix | undefined): Matrix {
  if (!into) return new Matrix(rows, cols);
  checkMatrix(`${what} accumulator`, into);
  if (into.rows !== rows || into.cols !== cols) throw new ShapeMismatchError(`${what} accumulator`, [rows, cols], into.shape);
  return into;
}

/**
 * The product a·b (a m×p, b p×n → m×n).
 * @param into - optional m×n accumulator: when given, the product is ADDED to it (`into += a·b`) and it is returned.
 * @throws ShapeMismatchError when `a.cols !== b.rows` (the message names both shapes)
 * @throws NonFiniteError when an argument holds NaN or ±Infinity
 */
export function matmul(a: Matrix, b: Matrix, into?: Matrix): Matrix {
  checkMatrix('matmul argument a', a);
  checkMatrix('matmul argument b', b);
  if (a.cols !== b.rows) {
    throw new ShapeMismatchError(`matmul(a [${a.rows}×${a.cols}], b [${b.rows}×${b.cols}]): b.rows must equal a.cols`, [a.cols, b.cols], b.shape, { a: a.shape, b: b.shape });
  }
  const out = target('matmul', a.rows, b.cols, into);
  gemmAccumulate(a.rows, b.cols, a.cols, a.data, a.cols, 1, b.data, out.data);
  return out;
}

/**
 * The product aᵀ·b (a p×m, b p×n → m×n) without forming aᵀ. This is the shape of gradient statistics
 * `M += Gᵀ·H` over a batch.
 * @param into - optional m×n accumulator: when given, the product is ADDED to it and it is returned.
 * @throws ShapeMismatchError when `a.rows !== b.rows`
 * @throws NonFiniteError when an argument holds NaN or ±Infinity
 */
export function matmulTransA(a: Matrix, b: Matrix, into?: Matrix): Matrix {
  checkMatrix('matmulTransA argument a', a);
  checkMatrix('matmulTransA argument b', b);
  if (a.rows !== b.rows) {
    throw new ShapeMismatchError(`matmulTransA(a [${a.rows}×${a.cols}], b [${b.rows}×${b.cols}]): b.rows must equal a.rows`, [a.rows, b.cols], b.shape, { a: a.shape, b: b.shape });
  }
  const out = target('matmulTransA', a.cols, b.cols, into);
  gemmAccumulate(a.cols, b.cols, a.rows, a.data, 1, a.cols, b.data, out.data);
  return out;
}

/**
 * The product a·bᵀ (a m×p, b n×p → m×n) without forming bᵀ. When `a` and `b` are the same object the
 * (exactly symmetric) Gram matrix a·aᵀ is computed at half the cost.
 * @param into - optional m×n accumulator: when given, the product is ADDED to it and it is returned.
 * @throws ShapeMismatchError when `a.cols !== b.cols`
 * @throws NonFiniteError when an argument holds NaN or ±Infinity
 */
export function matmulTransB(a: Matrix, b: Matrix, into?: Matrix): Matrix {
  checkMatrix('matmulTransB argument a', a);
  checkMatrix('matmulTransB argument b', b);
  if (a.cols !== b.cols) {
    throw new ShapeMismatchError(`matmulTransB(a [${a.rows}×${a.cols}], b [${b.rows}×${b.cols}]): b.cols must equal a.cols`, [b.rows, a.cols], b.shape, { a: a.shape, b: b.shape });
  }
  const out = target('matmulTransB', a.rows, b.rows, into);
  gemmTransBAccumulate(a.rows, b.rows, a.cols, a.data, b.data, out.data, a === b);
  return out;
}
