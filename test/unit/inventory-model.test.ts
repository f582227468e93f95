import { describe, expect, it } from 'vitest';
import { ChangeError, checkNodeChanges } from '../../src/inventory/changes.ts';
import { normalizeMac } from '../../src/domain/mac.ts';
import { isValidHostname, isValidLabelKey, isValidTalosVersion } from '../../src/domain/node.ts';
import { roleForNewMachine } from '../../src/inventory/policy.ts';

describe('normalizeMac', () => {
  it.each([
    ['aa:bb:cc:dd:ee:0f', 'aa:bb:cc:dd:ee:0f'],
    ['AA:BB:CC:DD:EE:0F', 'aa:bb:cc:dd:ee:0f'],
    ['aa-bb-cc-dd-ee-0f', 'aa:bb:cc:dd:ee:0f'],
    ['AABBCCDDEE0F', 'aa:bb:cc:dd:ee:0f'],
    ['aabb.ccdd.ee0f', 'aa:bb:cc:dd:ee:0f'],
    [' 52:54:00:12:34:56 ', '52:54:00:12:34:56'],
  ])('%s → %s', (input, want) => expect(normalizeMac(input)).toBe(want));

  it.each(['', 'aa:bb:cc:dd:ee', 'aa:bb:cc:dd:ee:ff:00', 'aa:bb-cc:dd:ee:ff', 'gg:bb:cc:dd:ee:ff', '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', 'aabbccddeef', '../../etc/passwd'])(
    'rejects %j',
    (input) => expect(normalizeMac(input)).toBeUndefined(),
  );
});

describe('field rules', () => {
  it('hostnames: RFC 1123, lower case', () => {
    expect(isValidHostname('cp-1')).toBe(true);
    expect(isValidHostname('node1.lab.example')).toBe(true);
    for (const bad of ['', '-a', 'a-', 'A1', 'a b', 'a_b', 'a\nkernel x', 'x'.repeat(64), 'a..b', '${mac}']) expect(isValidHostname(bad)).toBe(false);
  });
  it('label keys: optional DNS prefix, 63-char name', () => {
    expect(isValidLabelKey('zone')).toBe(true);
    expect(isValidLabelKey('topology.kubernetes.io/zone')).toBe(true);
    for (const bad of ['', '/x', 'a/', 'a b', 'x'.repeat(64), 'Bad_Prefix/x']) expect(isValidLabelKey(bad)).toBe(false);
  });
  it('Talos versions are release tags', () => {
    expect(isValidTalosVersion('v1.13.9')).toBe(true);
    expect(isValidTalosVersion('v1.13.0-beta.1')).toBe(true);
    for (const bad of ['1.13.9', 'v1.13', 'latest', 'v1.13.9 x', 'v1.13.9/../../']) expect(isValidTalosVersion(bad)).toBe(false);
  });
});

describe('checkNodeChanges', () => {
  it('passes valid changes through', () => {
    const c = { role: 'worker' as const, hostname: 'w-1', installDisk: '/dev/nvme0n1', labels: { 'example.com/rack': 'r1' }, talosVersion: 'v1.12.0' };
    expect(checkNodeChanges(c)).toEqual(c);
    expect(checkNodeChanges({ hostname: null, installDisk: null, diskSelector: null })).toEqual({ hostname: null, installDisk: null, diskSelector: null });
  });
  it.each([
    [{ hostname: 'Bad Host' }, /hostname/],
    [{ installDisk: 'sda' }, /installDisk/],
    [{ installDisk: '/dev/../etc/passwd' }, /installDisk/],
    [{ installDisk: '/dev/sda', diskSelector: { size: '>= 100GB' } }, /not both/],
    [{ diskSelector: {} }, /at least one/],
    [{ diskSelector: { colour: 'red' } }, /not a Talos disk selector field/],
    [{ diskSelector: { model: 'a\nb' } }, /characters/],
    [{ labels: { 'bad key': 'x' } }, /label key/],
    [{ labels: { zone: 'bad value' } }, /label zone/],
    [{ talosVersion: 'latest' }, /talosVersion/],
  ])('rejects %j', (changes, message) => {
    expect(() => checkNodeChanges(changes)).toThrow(ChangeError);
    expect(() => checkNodeChanges(changes)).toThrow(message);
  });
});

describe('auto-assign rule', () => {
  it('off: everyone waits', () => expect(roleForNewMachine({ enabled: false, controlplanes: 3 }, 0)).toBe('unassigned'));
  it('on: control planes until the count is reached, then workers', () => {
    const p = { enabled: true, controlplanes: 3 };
    expect([0, 1, 2, 3, 4].map((n) => roleForNewMachine(p, n))).toEqual(['controlplane', 'controlplane', 'controlplane', 'worker', 'worker']);
  });
});
