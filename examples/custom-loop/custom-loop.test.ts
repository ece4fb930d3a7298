import { expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example
import { main } from './index.mjs';

it('custom-loop example grows both hidden layers 8 → 32 and learns the spirals', async () => {
  const lines: string[] = [];
  const result = await main({ steps: 240, log: (l: string) => lines.push(l) });
  expect(result.widths).toEqual([32, 32]);
  expect(result.growths).toBe(6);
  expect(result.accuracy).toBeGreaterThan(0.5);
  expect(lines.filter((l) => l.includes('grew'))).toHaveLength(3);
});
