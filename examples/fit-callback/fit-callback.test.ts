import { expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example
import { main } from './index.mjs';

it('fit-callback example grows during model.fit and keeps training', async () => {
  const lines: string[] = [];
  const result = await main({ epochs: 8, log: (l: string) => lines.push(l) });
  expect(result.widths).toEqual([32, 32]);
  expect(result.growths).toBe(6);
  expect(result.accuracy).toBeGreaterThan(0.5);
  expect(lines.filter((l) => l.startsWith('epoch'))).toHaveLength(8);
});
