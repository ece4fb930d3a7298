import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example
import { main } from './index.mjs';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

it('onnx-widen example widens the hidden layer with GradMax and onnxruntime confirms the same function', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gradmax-example-onnx-'));
  dirs.push(dir);
  const lines: string[] = [];
  const result = await main({ dir, log: (l: string) => lines.push(l) });
  expect(result.unitsBefore).toBe(6);
  expect(result.unitsAfter).toBe(10);
  expect(result.ok).toBe(true);
  expect(result.maxAbs).toBeLessThan(1e-5);
  expect(existsSync(result.widened)).toBe(true);
  expect(lines.some((l) => l.includes('same function'))).toBe(true);
});
