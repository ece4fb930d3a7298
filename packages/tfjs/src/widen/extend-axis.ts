/**
 * Appending entries along one axis of a flat row-major array viewed as `[outer, C, inner]`.
 */

/**
 * Describes how an array grows: `[outer, channels, inner]` → `[outer, channels + added, inner]`, the new channels
 * inserted before channel `at` (default: appended after the last one).
 */
export interface AxisExtension {
  outer: number;
  channels: number;
  inner: number;
  added: number;
  /** Insertion point on the channel axis (0 … channels); default `channels`. */
  at?: number;
}

/** The old channel at new channel position c, or −1 for an inserted one. */
function oldChannel(e: AxisExtension, c: number): number {
  const at = e.at ?? e.channels;
  if (c < at) return c;
  if (c < at + e.added) return -1;
  return c - e.added;
}

/**
 * Index map of an extension: for each new flat index, the old flat index it copies, or −1 for a new entry.
 */
export function extensionSourceIndex(e: AxisExtension): Int32Array {
  const width = e.channels + e.added;
  const out = new Int32Array(e.outer * width * e.inner);
  for (let o = 0; o < e.outer; o++) {
    for (let c = 0; c < width; c++) {
      for (let i = 0; i < e.inner; i++) {
        const old = oldChannel(e, c);
        out[(o * width + c) * e.inner + i] = old >= 0 ? (o * e.channels + old) * e.inner + i : -1;
      }
    }
  }
  return out;
}

/**
 * Builds the extended array: old entries copied (old channel c multiplied by `oldScale[c]` when given), new entries
 * from `fill(outer, newChannel, inner)` (newChannel counts the inserted channels from 0).
 */
export function extendAxis(
  old: ArrayLike<number>,
  e: AxisExtension,
  fill: (outer: number, newChannel: number, inner: number) => number,
  oldScale?: ArrayLike<number>,
): Float32Array {
  const width = e.channels + e.added;
  const out = new Float32Array(e.outer * width * e.inner);
  for (let o = 0; o < e.outer; o++) {
    for (let c = 0; c < width; c++) {
      const oc = oldChannel(e, c);
      const s = oc >= 0 && oldScale ? oldScale[oc]! : 1;
      for (let i = 0; i < e.inner; i++) {
        const dst = (o * width + c) * e.inner + i;
        out[dst] = oc >= 0 ? old[(o * e.channels + oc) * e.inner + i]! * s : fill(o, c - (e.at ?? e.channels), i);
      }
    }
  }
  return out;
}

/** Pads a slot (optimizer state) array along the same extension: old entries copied, new ones `value`. */
export function padLike(old: ArrayLike<number>, source: Int32Array, value = 0): Float32Array {
  const out = new Float32Array(source.length);
  for (let i = 0; i < source.length; i++) {
    const s = source[i]!;
    out[i] = s >= 0 ? old[s]! : value;
  }
  return out;
}
