import { expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example
import { main } from './resnet.mjs';

it('resnet example grows the residual stage and the Concatenate branches as groups, preserving the function', async () => {
  const lines: string[] = [];
  const result = await main({ steps: 60, log: (l: string) => lines.push(l) });
  expect(result.groups).toEqual([
    'stem+block1_conv2+block2_conv2->block1_conv1+block2_conv1+left+right',
    'left->mix',
    'right->mix',
  ]);
  expect(result.widths['stem+block1_conv2+block2_conv2->block1_conv1+block2_conv1+left+right']).toBe(12);
  expect(result.change).toBeLessThan(1e-5);
  expect(lines.some((l) => l.startsWith('group:'))).toBe(true);
});
