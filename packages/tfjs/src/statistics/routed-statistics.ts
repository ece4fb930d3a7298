/**
 * Conv statistics fed with rows computed by the adapter: each (example, intermediate position) row is the current
 * conv's input patch h and the gradient g of the next layer's taps carried back to that position through any
 * in-between pooling/depthwise/global-pooling layers. Σ gᵀh over the rows is exactly the growth-matrix numerator, so
 * the retained samples keep the core's meaning (`weight · Σ g hᵀ ≈ moment`) also through those layers.
 */
import { ConvStatistics } from '@gradmax/core';

/** {@link ConvStatistics} that also accepts precomputed sample rows (see the module notes). */
export class RoutedConvStatistics extends ConvStatistics {
  /**
   * Adds a chunk: `sum` is Σ over the chunk's rows of g hᵀ in the tap-gradient layout (`[fanIn × fanOut]`, HWIO),
   * `rows` yields each row's (g, h) (rows whose g is all zero are skipped, as the core's naive path does), and
   * `examples` is the number of examples the rows come from.
   */
  accumulateRows(sum: ArrayLike<number>, rows: Iterable<{ g: ArrayLike<number>; h: ArrayLike<number> }>, examples: number): void {
    this.accumulateTapGradient(sum, examples);
    if (this.retainSamples > 0) {
      for (const { g, h } of rows) {
        let any = false;
        for (let i = 0; i < g.length; i++) {
          if (g[i] !== 0) {
            any = true;
            break;
          }
        }
        if (any) this.offer(g, h);
      }
      this.markSampled(examples);
    }
  }
}
