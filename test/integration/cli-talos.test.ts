// `genesis secrets`, `genesis config render`, `genesis talosconfig` and `genesis nodes config`,
// run as real processes against real data dirs and a running Genesis.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { generateSecrets, parseSecrets, serializeSecrets } from '../../src/talos/secrets.ts';
import { FIXTURE_SECRETS, seedSecrets, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/talos/stability');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'genesis-cli-'));
const genesis = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, GENESIS_ADVERTISE_ADDR: '127.0.0.1', ...env } });

describe('genesis secrets', () => {
  it('export prints the data dir bundle; import refuses to replace a different one without --force', async () => {
    const dataDir = tmp();
    const env = { GENESIS_DATA_DIR: dataDir };
    const none = await genesis(['secrets', 'export'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^genesis secrets export: no secrets bundle in .* yet/);

    expect(await genesis(['secrets', 'import', FIXTURE_SECRETS], env)).toMatchObject({ code: 0 });
    expect(statSync(path.join(dataDir, 'secrets.yaml')).mode & 0o777).toBe(0o600);
    const exported = await genesis(['secrets', 'export'], env);
    expect(exported.code).toBe(0);
    expect(parseSecrets(exported.stdout)).toEqual(parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8')));

    const other = path.join(tmp(), 'other.yaml');
    writeFileSync(other, readFileSync(path.join(FIXTURES, 'gen-secrets-example.yaml')));
    const refused = await genesis(['secrets', 'import', other], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already holds a different bundle');
    expect(parseSecrets((await genesis(['secrets', 'export'], env)).stdout)).toEqual(parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8')));
    expect(await genesis(['secrets', 'import', '--force', other], env)).toMatchObject({ code: 0 });
    expect(parseSecrets((await genesis(['secrets', 'export'], env)).stdout).cluster.id).toBe(parseSecrets(readFileSync(other, 'utf8')).cluster.id);
  });

  it('import refuses a broken bundle and names the field', async () => {
    const bad = path.join(tmp(), 'bad.yaml');
    writeFileSync(bad, readFileSync(FIXTURE_SECRETS, 'utf8').replace(/ {4}token: .*\n/, ''));
    const r = await genesis(['secrets', 'import', bad], { GENESIS_DATA_DIR: tmp() });
    expect(r).toMatchObject({ code: 1 });
    expect(r.stderr).toContain('secrets bundle: trustdinfo.token is missing');
  });
});

describe('genesis config render', () => {
  // The oracle through the whole CLI path (config, patch files, renderer, YAML out), per minor and role.
  const ORACLE = [
    ['v1.11', 'v1.11.6'],
    ['v1.12', 'v1.12.11'],
    ['v1.13', 'v1.13.9'],
    ['v1.14', 'v1.14.0'],
  ] as const;
  it.each(ORACLE.flatMap(([minor, tag]) => (['controlplane', 'worker'] as const).map((role) => [minor, role, tag] as const)))(
    '%s %s: --role with --secrets reproduces the oracle without any inventory',
    async (minor, role, tag) => {
      const r = await genesis(['config', 'render', '--role', role, '--secrets', FIXTURE_SECRETS, '--talos-version', tag], {
        GENESIS_DATA_DIR: tmp(),
        GENESIS_CLUSTER_NAME: 'base',
        GENESIS_CLUSTER_ENDPOINT: 'https://base:6443',
        GENESIS_CLUSTER_KUBERNETES_VERSION: '1.28.0',
        // The oracle is talosctl's output: without Genesis's own reporting documents.
        GENESIS_EVENTS_ENABLED: 'false',
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
      const want = parseAllDocuments(readFileSync(path.join(FIXTURES, minor, `base-${role}.yaml`), 'utf8')).map((d) => d.toJS());
      // Genesis always names the install disk and image (talosctl's stability inputs give neither);
      // everything else is talosctl's output.
      if (minor === 'v1.14') {
        const at = docs.findIndex((d) => d.kind === 'UnattendedInstallConfig');
        expect(docs[at]).toEqual({
          apiVersion: 'v1alpha1',
          kind: 'UnattendedInstallConfig',
          installer: { image: `ghcr.io/siderolabs/installer:${tag}` },
          provisioning: { diskSelector: { match: 'disk.dev_path == "/dev/sda"' }, wipe: false },
        });
        // Where Talos's generator puts it: right after the discovery documents.
        expect(docs[at - 1].kind).toBe('DiscoveryIdentityConfig');
        docs.splice(at, 1);
      } else {
        expect(docs[0].machine.install).toMatchObject({ disk: '/dev/sda', image: `ghcr.io/siderolabs/installer:${tag}`, wipe: false });
        docs[0].machine.install = want[0].machine.install;
      }
      expect(docs).toEqual(want);
    },
  );

  it('prints warnings on stderr and the config alone on stdout', async () => {
    const dir = tmp();
    const patch = path.join(dir, 'cluster.yaml');
    writeFileSync(patch, 'machine:\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: "true"\n');
    const r = await genesis(['config', 'render', '--role', 'worker', '--secrets', FIXTURE_SECRETS, '--talos-version', 'v1.14.0'], {
      GENESIS_DATA_DIR: dir,
      GENESIS_CLUSTER_ENDPOINT: 'https://base:6443',
      GENESIS_TALOS_PATCHES_CLUSTER: patch,
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('genesis config render: warning: machine.kubelet → KubeletConfig (where Talos v1.14 reads it)\n');
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(docs.find((d) => d.kind === 'KubeletConfig').extraArgs).toEqual({ 'rotate-server-certificates': 'true' });
  });

  it('with the event sink on (the default) the render adds the reporting documents, at the configured ports', async () => {
    const r = await genesis(['config', 'render', '--role', 'worker', '--secrets', FIXTURE_SECRETS, '--talos-version', 'v1.12.0'], {
      GENESIS_DATA_DIR: tmp(),
      GENESIS_CLUSTER_ENDPOINT: 'https://base:6443',
      GENESIS_ADVERTISE_ADDR: '192.0.2.1',
    });
    expect(r.stderr).toBe('');
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(docs.slice(-2)).toEqual([
      { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.1:8090' },
      { apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'genesis', url: 'tcp://192.0.2.1:8092/' },
    ]);
  });

  it('--mac renders an inventory node; unknown or unassigned nodes are clear errors', async () => {
    const g = await startGenesis();
    try {
      await g.api('PUT', '/nodes/52:54:00:00:0c:01', { role: 'controlplane', hostname: 'cp-c' });
      await g.api('PUT', '/nodes/52:54:00:00:0c:02', {});
      const env = { GENESIS_DATA_DIR: g.dataDir, GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443' };
      const r = await genesis(['config', 'render', '--mac', '52-54-00-00-0c-01'], env);
      expect(r.code).toBe(0);
      const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
      expect(docs[0].machine.type).toBe('controlplane');
      expect(docs.find((d) => d.kind === 'HostnameConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp-c' });
      expect(await genesis(['config', 'render', '--mac', '52:54:00:00:0c:09'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('no node with MAC 52:54:00:00:0c:09') });
      expect(await genesis(['config', 'render', '--mac', '52:54:00:00:0c:02'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('has no role') });
      expect(await genesis(['config', 'render'], env)).toMatchObject({ code: 2, stderr: 'genesis config render: give --mac or --role (one of them)\n' });
    } finally {
      await g.close();
    }
  });
});

describe('genesis talosconfig and nodes config', () => {
  let g: TestGenesis;
  beforeAll(async () => {
    g = await startGenesis({ GENESIS_CLUSTER_NAME: 'lab' });
  });
  afterAll(async () => {
    await g.close();
  });
  const env = () => ({ GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: tmp() });

  it('writes a talosconfig with mode 0600 whose client certificate chains to the OS CA', async () => {
    const out = path.join(tmp(), 'talosconfig');
    const r = await genesis(['talosconfig', '-o', out], env());
    expect(r).toMatchObject({ code: 0, stdout: `wrote ${out} (mode 0600)\n` });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const doc = parseYaml(readFileSync(out, 'utf8'));
    const crt = new X509Certificate(Buffer.from(doc.contexts.lab.crt, 'base64'));
    expect(crt.checkIssued(new X509Certificate(Buffer.from(doc.contexts.lab.ca, 'base64')))).toBe(true);
    expect(crt.subject).toBe('O=os:admin');
    // Without a token the API refuses, and the CLI says how to fix it.
    const denied = await genesis(['talosconfig'], { GENESIS_URL: g.url, GENESIS_DATA_DIR: tmp() });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('GENESIS_API_TOKEN');
  });

  it('writes an admin kubeconfig with mode 0600 that openssl verifies against the Kubernetes CA and kubectl reads', async () => {
    const dir = tmp();
    const out = path.join(dir, 'kubeconfig');
    // An existing file with a looser mode is tightened, not left readable.
    writeFileSync(out, 'old\n', { mode: 0o644 });
    const r = await genesis(['kubeconfig', '-o', out], env());
    expect(r).toMatchObject({ code: 0, stdout: `wrote ${out} (mode 0600)\n` });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const doc = parseYaml(readFileSync(out, 'utf8'));
    expect(doc).toMatchObject({ apiVersion: 'v1', kind: 'Config', 'current-context': 'admin@lab' });
    expect(doc.clusters).toEqual([{ name: 'lab', cluster: { server: 'https://192.0.2.10:6443', 'certificate-authority-data': parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8')).certs.k8s.crt } }]);
    expect(doc.contexts).toEqual([{ name: 'admin@lab', context: { cluster: 'lab', namespace: 'default', user: 'admin@lab' } }]);
    const user = doc.users[0].user;
    const caPem = path.join(dir, 'ca.pem');
    const crtPem = path.join(dir, 'admin.pem');
    writeFileSync(caPem, Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64'));
    writeFileSync(crtPem, Buffer.from(user['client-certificate-data'], 'base64'));
    // openssl: the chain holds and the certificate is fit for TLS client authentication.
    const verify = await run('openssl', ['verify', '-CAfile', caPem, '-purpose', 'sslclient', crtPem]);
    expect(verify).toMatchObject({ code: 0, stdout: `${crtPem}: OK\n` });
    const crt = new X509Certificate(readFileSync(crtPem));
    expect(crt.subject.split('\n').sort()).toEqual(['CN=admin', 'O=system:masters']);
    expect(crt.checkPrivateKey(createPrivateKey(Buffer.from(user['client-key-data'], 'base64').toString()))).toBe(true);
    const days = (Date.parse(crt.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThanOrEqual(365);
    // kubectl reads it as it would to talk to the cluster (no cluster needed for config view).
    const view = await run('kubectl', ['config', 'view', '--kubeconfig', out, '--raw', '-o', 'json']);
    expect(view.code, view.stderr).toBe(0);
    const seen = JSON.parse(view.stdout);
    expect(seen['current-context']).toBe('admin@lab');
    expect(seen.users[0].user['client-certificate-data']).toBe(user['client-certificate-data']);
    const current = await run('kubectl', ['config', 'current-context', '--kubeconfig', out]);
    expect(current).toMatchObject({ code: 0, stdout: 'admin@lab\n' });
  });

  it('nodes assign takes a static address and a patch file; nodes config shows the masked result', async () => {
    const patch = path.join(tmp(), 'p.yaml');
    writeFileSync(patch, 'machine:\n  sysctls:\n    net.core.somaxconn: "65535"\n');
    const a = await genesis(['nodes', 'assign', '52:54:00:00:0d:01', 'worker', '--address', '192.0.2.51/24', '--gateway', '192.0.2.1', '--patch', patch], env());
    // The API's warning about the patch reaches the operator (it was dropped before: found assigning
    // an installer image for another release); stdout keeps the node line alone.
    expect(a.stderr).toBe('genesis nodes assign: warning: machine.sysctls → SysctlConfig (where Talos v1.14 reads it)\n');
    expect(a.stdout).toBe('52:54:00:00:0d:01  role=worker  state=assigned\n');
    const r = await genesis(['nodes', 'config', '52:54:00:00:0d:01'], env());
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    // Talos 1.14 (the default) reads sysctls from a SysctlConfig document: the 1.13-style patch lands
    // there, and the config says so in a comment on top.
    expect(docs.find((d) => d.kind === 'SysctlConfig').params).toEqual({ 'net.core.somaxconn': '65535' });
    expect(docs[0].machine.sysctls).toBeUndefined();
    expect(r.stdout.split('\n')[0]).toBe('# warning: machine.sysctls → SysctlConfig (where Talos v1.14 reads it)');
    expect(docs[0].machine.token).toBe('(redacted)');
    expect(docs.find((d) => d.kind === 'LinkConfig').addresses).toEqual([{ address: '192.0.2.51/24' }]);
  });
});

describe('genesis serve', () => {
  it('creates the secrets bundle on first start, and logs that without its content', async () => {
    const logLines: string[] = [];
    const g = await startGenesis({}, { generateSecrets: true, logLines });
    try {
      const text = readFileSync(path.join(g.dataDir, 'secrets.yaml'), 'utf8');
      const bundle = parseSecrets(text);
      const logs = logLines.join('');
      expect(logs).toContain('generated the cluster secrets bundle');
      for (const secret of [bundle.certs.os.key, bundle.certs.k8s.key, bundle.cluster.secret, bundle.trustdinfo.token]) expect(logs).not.toContain(secret);
      expect(statSync(path.join(g.dataDir, 'secrets.yaml')).mode & 0o777).toBe(0o600);
      expect(bundle.certs.os.key).not.toBe(parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8')).certs.os.key);
    } finally {
      await g.close();
    }
  });

  it('refuses to start on a broken bundle, with one line', async () => {
    const dataDir = tmp();
    seedSecrets(dataDir);
    writeFileSync(path.join(dataDir, 'secrets.yaml'), serializeSecrets(await generateSecrets()).replace(/bootstraptoken: .*/, 'bootstraptoken: nope'));
    const r = await genesis(['serve'], { GENESIS_DATA_DIR: dataDir, GENESIS_HTTP_PORT: '0', GENESIS_TFTP_ENABLED: 'false', GENESIS_EVENTS_ENABLED: 'false', GENESIS_ASSETS_DIR: tmp() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^genesis: cannot use the cluster secrets: .*secrets\.yaml: secrets bundle: secrets\.bootstraptoken is not of the form \[0-9a-z\]\{6\}\.\[0-9a-z\]\{16\}\n$/);
  });
});
