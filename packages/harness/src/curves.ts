/**
 * Curve bookkeeping shared by the tasks.
 */
import type { Curve } from './types.js';

/** Appends one (step, value) point to a curve. */
export function pushPoint(curve: Curve, step: number, value: number): void {
  curve.step.push(step);
  curve.value.push(value);
}

/** Test-set curves plus the time spent evaluating; see {@link testEvaluator}. */
export interface TestEvaluator {
  /** Test loss per evaluation step. */
  testLoss: Curve;
  /** Test accuracy per evaluation step. */
  testAccuracy: Curve;
  /** Milliseconds spent in `evaluate` so far. */
  readonly ms: number;
  /** Evaluates at `step`, records both curves, and returns the result. */
  evaluate(step: number): { loss: number; accuracy: number };
}

/** Wraps a test-set evaluation so every call is recorded on the test curves and timed. */
export function testEvaluator(run: () => { loss: number; accuracy: number }): TestEvaluator {
  let ms = 0;
  const tracker: TestEvaluator = {
    testLoss: { step: [], value: [] },
    testAccuracy: { step: [], value: [] },
    get ms() {
      return ms;
    },
    evaluate(step: number) {
      const t = performance.now();
      const r = run();
      pushPoint(tracker.testLoss, step, r.loss);
      pushPoint(tracker.testAccuracy, step, r.accuracy);
      ms += performance.now() - t;
      return r;
    },
  };
  return tracker;
}
