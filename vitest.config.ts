import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { isExpectedNoise } from './test/noise.js';

const packages = ['core', 'strategies', 'tfjs', 'onnx', 'harness', 'cli'];
const root = fileURLToPath(new URL('.', import.meta.url));

// Tests import the public entry points (`@gradmax/x`, `@gradmax/x/sub`) resolved to sources, so no build is needed.
const alias = [
  { find: /^@gradmax\/([a-z]+)$/, replacement: `${root}packages/$1/src/index.ts` },
  { find: /^@gradmax\/([a-z]+)\/([a-z-]+)$/, replacement: `${root}packages/$1/src/$2/index.ts` },
];

// CI sets GRADMAX_TEST_REPORT to a path: a JSON report is written there beside the usual console output.
const jsonReport = process.env.GRADMAX_TEST_REPORT;

export default defineConfig({
  resolve: { alias },
  test: {
    ...(jsonReport ? { reporters: ['default', 'json'], outputFile: { json: jsonReport } } : {}),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // known, expected console output (tfjs's Node.js banner) is dropped; everything else is shown
    onConsoleLog: (log) => (isExpectedNoise(log) ? false : undefined),
    projects: [
      ...packages.map((name) => ({
        resolve: { alias },
        test: {
          name,
          root: `${root}packages/${name}`,
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          ...(name === 'onnx' || name === 'cli' ? { setupFiles: [`${root}test/setup-onnxruntime.ts`] } : {}),
        },
      })),
      {
        resolve: { alias },
        test: { name: 'examples', root: `${root}examples`, include: ['**/*.test.ts'], exclude: ['**/node_modules/**'], testTimeout: 300_000 },
      },
    ],
  },
});
