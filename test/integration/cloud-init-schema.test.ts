// Every user-data Genesis renders passes the real `cloud-init schema --config-file` (Debian's
// cloud-init package), whatever the values: quotes, newlines and YAML syntax in a variable stay
// inside their scalar. And Genesis's own check (cloud-init's schema, copied) refuses what the
// real one refuses, so an invalid template keeps a machine waiting instead of reaching it.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderUserData, templateVars } from '../../src/cloud-init/documents.ts';
import { builtInProfiles, parseProfile, type LinuxProfile } from '../../src/cloud-init/profile.ts';
import { TemplateError } from '../../src/cloud-init/template.ts';
import { cloudConfigProblems } from '../../src/cloud-init/user-data-schema.ts';
import { blankNode } from '../../src/domain/node.ts';

const work = mkdtempSync(path.join(tmpdir(), 'genesis-cloud-init-schema-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** The real cloud-init's verdict on a document: exit status and what it printed. */
function cloudInitSchema(text: string): { ok: boolean; output: string } {
  const file = path.join(work, `user-data-${n++}`);
  writeFileSync(file, text);
  const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const HOSTILE = [
  `it's "quoted"`,
  'line one\nline two',
  'key: value # comment',
  '---\nnew: document',
  '{ a: b } [c] &x *y !!str | >',
  "'; reboot; echo '",
  '$(reboot) `id` ${HOME}',
];

const k3s = builtInProfiles().find((p) => p.name === 'k3s')!;
const node = blankNode('52:54:00:12:34:56', { role: 'controlplane', arch: 'amd64', hostname: 'cp-1', labels: { 'topology.kubernetes.io/zone': 'rack-1' }, lastIp: '192.0.2.21' });
const base = { node, cluster: 'lab', genesisUrl: 'http://192.0.2.2:8080', token: 'ab'.repeat(32), joinToken: 'gjt_x', k3sToken: 'K10' + 'c'.repeat(64) };

describe('the built-in k3s recipe', () => {
  it('renders user-data the real cloud-init accepts, for a server and an agent', () => {
    for (const role of ['controlplane', 'worker'] as const) {
      const text = renderUserData(k3s, templateVars({ ...base, node: { ...node, role }, profile: k3s }));
      const verdict = cloudInitSchema(text);
      expect(verdict.output).toContain('Valid cloud-config');
      expect(verdict.ok).toBe(true);
      const doc = parseYaml(text) as { hostname: string; phone_home: { url: string }; write_files: Array<{ path: string; content: string }> };
      expect(doc.hostname).toBe('cp-1');
      expect(doc.phone_home.url).toBe(`http://192.0.2.2:8080/cloud-init/52:54:00:12:34:56/${'ab'.repeat(32)}/phone-home`);
      const k3sConfig = parseYaml(doc.write_files.find((f) => f.path === '/etc/rancher/k3s/config.yaml')!.content);
      expect(k3sConfig).toEqual({ token: base.k3sToken, 'node-name': 'cp-1', 'node-label': ['topology.kubernetes.io/zone=rack-1'] });
      const env = doc.write_files.find((f) => f.path === '/etc/genesis/k3s.env')!.content;
      // The env file is sourced by sh: read it back the way the claim script does.
      const envFile = path.join(work, `k3s-${role}.env`);
      writeFileSync(envFile, env);
      expect(execFileSync('sh', ['-c', `. ${envFile}; printf '%s|%s|%s' "$GENESIS_MAC" "$GENESIS_ROLE" "$GENESIS_CLAIM_URL"`], { encoding: 'utf8' })).toBe(
        `52:54:00:12:34:56|${role}|http://192.0.2.2:8080/api/v1/bootstrap/claim`,
      );
    }
  });

  it.each(HOSTILE)('with %j in every free-text value: still one document the real cloud-init accepts, the value intact', (v) => {
    const profile: LinuxProfile = { ...k3s, vars: { ...k3s.vars, k3s_version: v, k3s_install_url: v }, sshAuthorizedKeys: [`ssh-ed25519 AAAAC3Nz ${v}`] };
    const hostile = { ...node, labels: { 'example.com/note': v } };
    const text = renderUserData(profile, templateVars({ ...base, node: hostile, profile, joinToken: v, k3sToken: v }));
    const verdict = cloudInitSchema(text);
    expect(verdict.ok, verdict.output).toBe(true);
    const doc = parseYaml(text) as { ssh_authorized_keys: string[]; runcmd: string[][]; write_files: Array<{ path: string; content: string }> };
    expect(Object.keys(doc)).toEqual(['hostname', 'preserve_hostname', 'ssh_authorized_keys', 'write_files', 'runcmd', 'phone_home']);
    expect(doc.ssh_authorized_keys).toEqual([`ssh-ed25519 AAAAC3Nz ${v}`]);
    expect(parseYaml(doc.write_files.find((f) => f.path === '/etc/rancher/k3s/config.yaml')!.content)).toMatchObject({ token: v, 'node-label': [`example.com/note=${v}`] });
    const envFile = path.join(work, 'hostile.env');
    writeFileSync(envFile, doc.write_files.find((f) => f.path === '/etc/genesis/k3s.env')!.content);
    expect(execFileSync('sh', ['-c', `. ${envFile}; printf '%s' "$GENESIS_JOIN_TOKEN"`], { encoding: 'utf8' })).toBe(v);
    // The install command: the value is one shell word wherever it is used.
    // Run it with curl and sh replaced by functions that report what they were given.
    const install = doc.runcmd[1]![2]!;
    const urlFile = path.join(work, 'install-url');
    const fakes = `curl() { printf '%s' "$2" > ${urlFile}; }; sh() { printf '%s|%s' "$INSTALL_K3S_VERSION" "$INSTALL_K3S_EXEC"; }; `;
    expect(execFileSync('sh', ['-c', fakes + install], { encoding: 'utf8' })).toBe(`${v}|server`);
    expect(readFileSync(urlFile, 'utf8')).toBe(v);
  });
});

describe("Genesis's own check agrees with the real cloud-init", () => {
  const cases: Array<[string, string]> = [
    ['a valid document', '#cloud-config\nhostname: a\npackages: [curl]\nruncmd:\n  - [sh, -c, "echo hi"]\n'],
    ['hostname not a string', '#cloud-config\nhostname: 5\n'],
    ['runcmd not a list', '#cloud-config\nruncmd: echo hi\n'],
    ['write_files entry without a path', '#cloud-config\nwrite_files:\n  - content: x\n'],
    ['an unknown ssh_pwauth type', '#cloud-config\nssh_pwauth: [1]\n'],
    ['phone_home without a url', '#cloud-config\nphone_home:\n  post: all\n'],
  ];
  it.each(cases)('%s', (_name, text) => {
    const real = cloudInitSchema(text).ok;
    expect(cloudConfigProblems(parseYaml(text)).length === 0).toBe(real);
  });

  it('a profile whose template cloud-init would refuse is refused before any machine gets it, with the reason', () => {
    const broken = parseProfile('bad', { profileYaml: 'kind: cloud-init\n', userData: '#cloud-config\nhostname: {{ hostname }}\nruncmd: echo {{ mac }}\n' }, 'profiles/bad');
    let problems: string[] = [];
    try {
      renderUserData(broken, templateVars({ ...base, profile: broken }));
    } catch (err) {
      if (err instanceof TemplateError) problems = err.problems;
    }
    expect(problems).toEqual(["bad user-data: cloud-init's schema: runcmd: must be array"]);
    expect(cloudInitSchema('#cloud-config\nruncmd: echo 52:54:00:12:34:56\n').ok).toBe(false);
  });
});
