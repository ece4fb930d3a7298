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

/** {@link TestEvaluator} for an evaluation that reads its tensors asynchronously (every backend, webgpu in Node included). */
export interface AsyncTestEvaluator extends Omit<TestEvaluator, 'evaluate'> {
  /** Evaluates at `step`, records both curves, and returns the result. */
  evaluate(step: number): Promise<{ loss: number; accuracy: number }>;
}

type Evaluation = { loss: number; accuracy: number };

function evaluatorOf<R extends Evaluation | Promise<Evaluation>>(run: () => R, then: (r: R, done: (v: Evaluation) => Evaluation) => R) {
  let ms = 0;
  const tracker = {
    testLoss: { step: [], value: [] } as Curve,
    testAccuracy: { step: [], value: [] } as Curve,
    get ms() {
      return ms;
    },
    evaluate(step: number): R {
      const t = performance.now();
      return then(run(), (r) => {
        pushPoint(tracker.testLoss, step, r.loss);
        pushPoint(tracker.testAccuracy, step, r.accuracy);
        ms += performance.now() - t;
        return r;
      });
    },
  };
  return tracker;
}

/** Wraps a test-set evaluation so every call is recorded on the test curves and timed. */
export function testEvaluator(run: () => Evaluation): TestEvaluator {
  return evaluatorOf(run, (r, done) => done(r));
}

/** {@link testEvaluator} for an asynchronous evaluation. */
export function asyncTestEvaluator(run: () => Promise<Evaluation>): AsyncTestEvaluator {
  return evaluatorOf(run, (r, done) => r.then(done));
}
