/**
 * Test helper: relative Euclidean error of a result against a reference.
 */

/**
 * `‖a − b‖ / ‖b‖` over the first `a.length` entries, with `‖b‖²` floored at `floorSq` so that an all-zero
 * reference does not divide by zero.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floorSq: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, floorSq));
}
