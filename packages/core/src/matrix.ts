/**
 * The dense matrix type used throughout gradmax: row-major, float64.
 */
import { InvalidArgumentError, ShapeMismatchError } from './errors.js';

/** A dense row-major matrix of float64 values. `data[i * cols + j]` is entry (i, j). */
export class Matrix {
  /** Number of rows. */
  readonly rows: number;
  /** Number of columns. */
  readonly cols: number;
  /** Row-major storage of length `rows * cols`. */
  readonly data: Float64Array;

  /**
   * @param rows - row count (non-negative integer)
   * @param cols - column count (non-negative integer)
   * @param data - optional row-major storage of length rows·cols; used as is (not copied). Zeros when omitted.
   */
  constructor(rows: number, cols: number, data?: Float64Array) {
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
      throw new InvalidArgumentError(`matrix dimensions must be non-negative integers, got ${rows}×${cols}`, { rows, cols });
    }
    if (data && data.length !== rows * cols) throw new ShapeMismatchError('matrix data length', [rows * cols], [data.length]);
    this.rows = rows;
    this.cols = cols;
    this.data = data ?? new Float64Array(rows * cols);
  }

  /** A rows×cols matrix of zeros. */
  static zeros(rows: number, cols: number): Matrix {
    return new Matrix(rows, cols);
  }

  /** The n×n identity. */
  static identity(n: number): Matrix {
    const m = new Matrix(n, n);
    for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
    return m;
  }

  /** Builds a matrix from nested arrays (all rows must have the same length). */
  static fromArray(values: readonly (readonly number[])[]): Matrix {
    const rows = values.length;
    const cols = rows ? values[0]!.length : 0;
    const m = new Matrix(rows, cols);
    values.forEach((row, i) => {
      if (row.length !== cols) throw new ShapeMismatchError(`row ${i} of nested array`, [cols], [row.length]);
      m.data.set(row, i * cols);
    });
    return m;
  }

  /** Copies row-major data of any numeric array type (e.g. a tfjs `dataSync()` Float32Array) into a new matrix. */
  static from(rows: number, cols: number, values: ArrayLike<number>): Matrix {
    if (values.length !== rows * cols) throw new ShapeMismatchError('matrix source data', [rows, cols], [values.length]);
    return new Matrix(rows, cols, Float64Array.from(values));
  }

  /** Copies row-major Float32Array data into a new float64 matrix. */
  static fromFloat32(rows: number, cols: number, values: Float32Array): Matrix {
    return Matrix.from(rows, cols, values);
  }

  /** Entry (i, j). */
  get(i: number, j: number): number {
    return this.data[i * this.cols + j]!;
  }

  /** Sets entry (i, j). */
  set(i: number, j: number, value: number): void {
    this.data[i * this.cols + j] = value;
  }

  /** The shape as `[rows, cols]`. */
  get shape(): [number, number] {
    return [this.rows, this.cols];
  }

  /** A deep copy. */
  clone(): Matrix {
    return new Matrix(this.rows, this.cols, this.data.slice());
  }

  /** Row i as a new Float64Array. */
  row(i: number): Float64Array {
    return this.data.slice(i * this.cols, (i + 1) * this.cols);
  }

  /** Column j as a new Float64Array. */
  col(j: number): Float64Array {
    const out = new Float64Array(this.rows);
    for (let i = 0; i < this.rows; i++) out[i] = this.data[i * this.cols + j]!;
    return out;
  }

  /** Rounds to a new row-major Float32Array. */
  toFloat32(): Float32Array {
    return Float32Array.from(this.data);
  }

  /** Nested-array copy, handy for JSON and debugging. */
  toArray(): number[][] {
    const out: number[][] = [];
    for (let i = 0; i < this.rows; i++) out.push(Array.from(this.data.subarray(i * this.cols, (i + 1) * this.cols)));
    return out;
  }
}
