import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example
import { main } from './index.mjs';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

it('compare-strategies example runs both strategies and writes the report', async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'gradmax-example-compare-'));
  dirs.push(out);
  const result = await main({ out, preset: 'tiny', seeds: [0, 1], workers: 0, log: () => undefined });
  expect(result.failed).toBe(0);
  expect(result.ok).toBe(8);
  expect(result.gradmax).toHaveLength(2);
  expect(result.random).toHaveLength(2);
  expect(existsSync(result.report)).toBe(true);
  expect(await readFile(result.report, 'utf8')).toContain('# GradMax vs Random on the teacher-student task');
});
