// Boot profiles from their files: what a profile.yaml may say, every problem named with its file,
// the built-in k3s replaced by a directory of that name, and a broken profile set apart.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CMDLINE, loadProfiles, parseProfile, ProfileError } from '../../src/cloud-init/profile.ts';
import { problemsOf } from '../helpers/problems.ts';

const work = mkdtempSync(path.join(tmpdir(), 'genesis-profiles-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));


describe('parseProfile', () => {
  it('takes the defaults for what it does not say', () => {
    const p = parseProfile('ubuntu', { profileYaml: 'kind: cloud-init\n', userData: '#cloud-config\n{}\n' }, 'profiles/ubuntu');
    expect(p).toMatchObject({ name: 'ubuntu', kernel: 'vmlinuz', initrd: 'initrd', cmdline: DEFAULT_CMDLINE, recipe: null, sshAuthorizedKeys: [], vars: {}, networkConfig: null, vendorData: null });
  });

  it('recipe: k3s brings the recipe user-data and its variables, which the profile may override', () => {
    const p = parseProfile('k3s', { profileYaml: 'kind: cloud-init\nrecipe: k3s\nvars: {k3s_version: v1.31.4+k3s1}\n' }, 'profiles/k3s');
    expect(p.userData).toContain('genesis-k3s-claim');
    expect(p.vars).toEqual({ k3s_install_url: 'https://get.k3s.io', k3s_version: 'v1.31.4+k3s1' });
    // A user-data file of its own wins over the recipe's.
    expect(parseProfile('k3s', { profileYaml: 'kind: cloud-init\nrecipe: k3s\n', userData: '#cloud-config\n{}\n' }, 'profiles/k3s').userData).toBe('#cloud-config\n{}\n');
  });

  it('names every problem with its file', () => {
    expect(problemsOf(() => parseProfile('x', { profileYaml: 'kind: talos\nkernel: ../vmlinuz\nbogus: 1\n' }, 'profiles/x'), ProfileError)).toEqual([
      'profiles/x/profile.yaml: the document: must NOT have additional properties bogus',
      'profiles/x/profile.yaml: kind: must be equal to constant',
      'profiles/x/profile.yaml: kernel: must match pattern "^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$"',
    ]);
    expect(problemsOf(() => parseProfile('x', { profileYaml: 'kind: cloud-init\ncmdline: [ip=dhcp]\n' }, 'profiles/x'), ProfileError)).toEqual([
      'profiles/x: no user-data template (a file named user-data, or recipe: k3s in profile.yaml)',
      'profiles/x/profile.yaml: cmdline must carry the datasource, as ds=nocloud;s={{ datasource_url }}: without it cloud-init never finds its documents',
    ]);
    expect(problemsOf(() => parseProfile('talos', { profileYaml: 'kind: cloud-init\nrecipe: k3s\n' }, 'profiles/talos'), ProfileError)).toEqual(['profiles/talos: "talos" is Genesis\'s own profile and cannot be redefined']);
    expect(problemsOf(() => parseProfile('x', { profileYaml: 'kind: [\n' }, 'profiles/x'), ProfileError)[0]).toMatch(/^profiles\/x\/profile\.yaml line \d+: /);
  });
});

describe('loadProfiles', () => {
  it('no directory: the built-in k3s only', () => {
    const set = loadProfiles(path.join(work, 'absent'));
    expect([...set.profiles.keys()]).toEqual(['k3s']);
    expect(set.profiles.get('k3s')?.source).toBe('built-in');
  });

  it('a directory of that name replaces k3s; a broken profile is set apart with why; others load', () => {
    const dir = path.join(work, 'profiles');
    for (const [name, files] of Object.entries({
      k3s: { 'profile.yaml': 'kind: cloud-init\nrecipe: k3s\nkernel: linux\n' },
      broken: { 'profile.yaml': 'kind: cloud-init\nunknown: 1\n', 'user-data': '#cloud-config\n{}\n' },
      empty: {},
      unrendered: { 'profile.yaml': 'kind: cloud-init\n', 'user-data': '#cloud-config\nhostname: {{ hostnme }}\n' },
      plain: { 'profile.yaml': 'kind: cloud-init\n', 'user-data': '#cloud-config\n{}\n', 'network-config': 'version: 2\n' },
    })) {
      mkdirSync(path.join(dir, name), { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, name, f), text);
    }
    const set = loadProfiles(dir);
    expect([...set.profiles.keys()].sort()).toEqual(['k3s', 'plain']);
    expect(set.profiles.get('k3s')).toMatchObject({ kernel: 'linux', source: path.join(dir, 'k3s') });
    expect(set.profiles.get('plain')?.networkConfig).toBe('version: 2\n');
    expect(set.broken.get('broken')).toBe(`${path.join(dir, 'broken')}/profile.yaml: the document: must NOT have additional properties unknown`);
    expect(set.broken.get('empty')).toBe(`${path.join(dir, 'empty')}: no profile.yaml`);
    // Rendered for a sample machine when loaded: a template mistake is found now, not at a boot.
    expect(set.broken.get('unrendered')).toBe('unrendered user-data line 2: unknown variable {{ hostnme }} (did you mean hostname?)');
  });
});
