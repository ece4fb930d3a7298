import { afterEach, describe, expect, it } from 'vitest';
import { createStrategy, hasStrategy, listStrategies, registerStrategy, unregisterStrategy } from './registry.js';
import { gradmax } from './gradmax.js';
import { UnknownNameError } from './errors.js';

describe('strategy registry', () => {
  afterEach(() => unregisterStrategy('test-gradmax'));

  it('registers, creates with options, lists and rejects unknown names', () => {
    registerStrategy('test-gradmax', gradmax);
    expect(hasStrategy('test-gradmax')).toBe(true);
    expect(listStrategies()).toContain('test-gradmax');
    expect(createStrategy('test-gradmax', { scale: 1 }).name).toBe('gradmax');
    expect(() => createStrategy('nope')).toThrow(UnknownNameError);
    expect(() => createStrategy('nope')).toThrow(/unknown strategy "nope"; known: .*test-gradmax/);
  });

  it('refuses a different factory under a taken name unless override is set', () => {
    registerStrategy('test-gradmax', gradmax);
    registerStrategy('test-gradmax', gradmax); // same factory: no-op
    const other = () => gradmax({ scale: 2 });
    expect(() => registerStrategy('test-gradmax', other)).toThrow(/already registered/);
    registerStrategy('test-gradmax', other, true);
    expect(() => registerStrategy('bad name!', gradmax)).toThrow(/invalid strategy name/);
  });
});
