/**
 * Expected output that tests would otherwise print on every run, so that real warnings stand out. Used by the vitest
 * config (`onConsoleLog`) and by the setup file of the projects that run onnxruntime.
 */

/** Console messages that are known and expected in tests (matched against the whole message). */
export const EXPECTED_CONSOLE_NOISE: readonly RegExp[] = [
  // tfjs-core's banner whenever a backend starts in Node without @tensorflow/tfjs-node (not installable here)
  /^\s*=+\s*Hi, looks like you are running TensorFlow\.js in Node\.js\. To speed things up dramatically, install our node backend[^\n]*\s*=+\s*$/,
];

/** Whether a console message is expected noise (dropped) rather than something to show. */
export function isExpectedNoise(message: string): boolean {
  return EXPECTED_CONSOLE_NOISE.some((re) => re.test(message));
}
