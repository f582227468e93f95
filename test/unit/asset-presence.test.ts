import { describe, expect, it } from 'vitest';
import { rememberedPresence } from '../../src/assets/presence.ts';

describe('rememberedPresence', () => {
  it('remembers "present" per version and arch for its lifetime, and asks the disk again after it', () => {
    let t = 0;
    let present = true;
    const asked: string[] = [];
    const check = rememberedPresence((v, a) => (asked.push(`${v} ${a}`), present), 1000, () => t);
    expect(check('v1.14.0', 'amd64')).toBe(true);
    present = false;
    t = 999;
    expect(check('v1.14.0', 'amd64')).toBe(true);
    expect(check('v1.14.0', 'arm64')).toBe(false);
    t = 1000;
    expect(check('v1.14.0', 'amd64')).toBe(false);
    expect(asked).toEqual(['v1.14.0 amd64', 'v1.14.0 arm64', 'v1.14.0 amd64']);
  });

  it('never remembers "missing": files added are seen at the next question', () => {
    let present = false;
    const check = rememberedPresence(() => present, 1000, () => 0);
    expect(check('v1.14.0', 'amd64')).toBe(false);
    present = true;
    expect(check('v1.14.0', 'amd64')).toBe(true);
  });
});
