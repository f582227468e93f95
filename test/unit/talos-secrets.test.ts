// The secrets bundle and the certificates Genesis makes: checked with node:crypto and with
// openssl, the way a peer would check them.

import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { generateSecrets, parseSecrets, SecretsError, serializeSecrets, TOKEN_PATTERN, type SecretsBundle } from '../../src/talos/secrets.ts';
import { loadOrCreateSecrets, SecretsStore, secretsPath, writeSecrets } from '../../src/talos/secrets-store.ts';
import { issueAdminCertificate, renderTalosconfig } from '../../src/talos/talosconfig.ts';
import { keyFromPem } from '../../src/talos/x509.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/talos/stability');
const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'genesis-secrets-'));
/** A PEM block of this label, start to end. */
const pemBlock = (label: string) => new RegExp(`^-{5}BEGIN ${label}-{5}\\n[A-Za-z0-9+/=\\n]+-{5}END ${label}-{5}\\n$`);
const openssl = (args: string[], input?: string) => execFileSync('openssl', args, { input, encoding: 'utf8' });

let bundle: SecretsBundle;
const generatedAt = new Date();
beforeAll(async () => {
  bundle = await generateSecrets(generatedAt);
});

describe('a generated bundle', () => {
  it('has the talosctl gen secrets layout and value shapes', () => {
    const doc = parseYaml(serializeSecrets(bundle));
    expect(Object.keys(doc)).toEqual(['cluster', 'secrets', 'trustdinfo', 'certs']);
    expect(Object.keys(doc.certs)).toEqual(['etcd', 'k8s', 'k8saggregator', 'k8sserviceaccount', 'os']);
    expect(Buffer.from(bundle.cluster.id, 'base64url')).toHaveLength(32);
    expect(bundle.cluster.id).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(Buffer.from(bundle.cluster.secret, 'base64')).toHaveLength(32);
    expect(bundle.cluster.secret).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(bundle.secrets.bootstraptoken).toMatch(TOKEN_PATTERN);
    expect(bundle.trustdinfo.token).toMatch(TOKEN_PATTERN);
    expect(Buffer.from(bundle.secrets.secretboxencryptionsecret!, 'base64')).toHaveLength(32);
    // The YAML looks like talosctl's: 4-space indent, base64 values on one line.
    expect(serializeSecrets(bundle)).toMatch(/^cluster:\n {4}id: \S+\n {4}secret: \S+\nsecrets:\n {4}bootstraptoken: /);
  });

  it.each([
    ['etcd', 'O = etcd', 'ec'],
    ['k8s', 'O = kubernetes', 'ec'],
    ['k8saggregator', 'CN = front-proxy', 'ec'],
    ['os', 'O = talos', 'ed25519'],
  ] as const)('%s CA: self-signed, 10 years, CA=true, CertSign+DigitalSignature, ServerAuth+ClientAuth, key matches', (name, subject, keyType) => {
    const crtPem = pem(bundle.certs[name].crt);
    const cert = new X509Certificate(crtPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe(subject.replace(' = ', '='));
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe(keyType);
    if (keyType === 'ec') expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365.25 * 86_400_000);
    expect(years).toBeGreaterThan(9.99);
    expect(years).toBeLessThan(10.01);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.checkPrivateKey(keyFromPem(pem(bundle.certs[name].key)))).toBe(true);

    const dir = tmp();
    writeFileSync(path.join(dir, 'ca.pem'), crtPem);
    expect(openssl(['verify', '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'ca.pem')])).toContain(': OK');
    const text = openssl(['x509', '-noout', '-text'], crtPem);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toContain('X509v3 Subject Key Identifier');
  });

  it('writes keys with the labels Talos uses: EC, ED25519 (PKCS#8 body), RSA 4096 PKCS#1', () => {
    expect(pem(bundle.certs.etcd.key)).toMatch(pemBlock('EC PRIVATE KEY'));
    const os = pem(bundle.certs.os.key);
    expect(os).toMatch(pemBlock('ED25519 PRIVATE KEY'));
    // The body is PKCS#8: relabelled, any PKCS#8 reader takes it.
    expect(createPrivateKey(os.replaceAll('ED25519 PRIVATE KEY', 'PRIVATE KEY')).asymmetricKeyType).toBe('ed25519');
    const sa = pem(bundle.certs.k8sserviceaccount.key);
    expect(sa).toMatch(pemBlock('RSA PRIVATE KEY'));
    expect(createPrivateKey(sa).asymmetricKeyDetails?.modulusLength).toBe(4096);
  });

  it('round-trips through its YAML', () => {
    expect(parseSecrets(serializeSecrets(bundle))).toEqual(bundle);
  });
});

describe('reading bundles', () => {
  it.each(['secrets.yaml', 'gen-secrets-example.yaml'])("reads talosctl's %s", (file) => {
    const b = parseSecrets(readFileSync(path.join(FIXTURES, file), 'utf8'));
    expect(b.certs.os.key).toBeTruthy();
    expect(parseSecrets(serializeSecrets(b))).toEqual(b);
  });

  it('names the missing or broken field, never a value', () => {
    const good = readFileSync(path.join(FIXTURES, 'secrets.yaml'), 'utf8');
    expect(() => parseSecrets(good.replace(/ {4}bootstraptoken: .*\n/, ''))).toThrow('secrets bundle: secrets.bootstraptoken is missing');
    expect(() => parseSecrets(good.replace(/(trustdinfo:\n {4}token: ).*/, '$1NOT-A-TOKEN'))).toThrow('secrets bundle: trustdinfo.token is not of the form');
    // The etcd key with the k8s CA's certificate: a key that does not belong.
    const doc = parseYaml(good);
    doc.certs.etcd.key = doc.certs.k8s.key;
    let message = '';
    try {
      parseSecrets(JSON.stringify(doc)); // JSON is YAML
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('secrets bundle: certs.etcd.key does not belong to certs.etcd.crt');
    expect(message).not.toContain(doc.certs.k8s.key);
    expect(() => parseSecrets('certs: [')).toThrow(SecretsError);
  });
});

describe('the bundle on disk', () => {
  it('is created once, mode 0600, and a second start adopts it', async () => {
    const dir = tmp();
    const first = await loadOrCreateSecrets(dir);
    expect(first.created).toBe(true);
    expect(statSync(secretsPath(dir)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateSecrets(dir);
    expect(second.created).toBe(false);
    expect(second.bundle).toEqual(first.bundle);
  });

  it('two processes racing on an empty data dir end with one bundle', async () => {
    const dir = tmp();
    const [a, b] = await Promise.all([loadOrCreateSecrets(dir), loadOrCreateSecrets(dir)]);
    expect(a.bundle).toEqual(b.bundle);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });

  it('a group- or world-readable file is tightened to 0600', async () => {
    const dir = tmp();
    writeFileSync(secretsPath(dir), readFileSync(path.join(FIXTURES, 'secrets.yaml')), { mode: 0o644 });
    const r = await loadOrCreateSecrets(dir);
    expect(r.modeFixed).toBe(true);
    expect(statSync(secretsPath(dir)).mode & 0o777).toBe(0o600);
  });

  it('recentStamp: the identity of the file, looked at again once it is maxAge old', () => {
    const dir = tmp();
    const fixture = parseSecrets(readFileSync(path.join(FIXTURES, 'secrets.yaml'), 'utf8'));
    writeSecrets(dir, fixture);
    const store = new SecretsStore(dir, fixture);
    const first = store.recentStamp(1000, 0);
    expect(first).toBe(store.statStamp());
    writeSecrets(dir, bundle);
    expect(store.recentStamp(1000, 999)).toBe(first);
    expect(store.recentStamp(1000, 1000)).toBe(store.statStamp());
    expect(store.statStamp()).not.toBe(first);
  });

  it('the store picks up a replaced bundle, and keeps reporting a broken one', () => {
    const dir = tmp();
    const fixture = parseSecrets(readFileSync(path.join(FIXTURES, 'secrets.yaml'), 'utf8'));
    writeSecrets(dir, fixture);
    const store = new SecretsStore(dir, fixture);
    expect(store.current()).toEqual(fixture);
    writeSecrets(dir, bundle);
    expect(store.current()).toEqual(bundle);
    writeFileSync(secretsPath(dir), 'cluster: {}\n');
    expect(() => store.current()).toThrow('the secrets bundle changed on disk and cannot be used: ');
  });
});

describe('talosconfig', () => {
  it('carries an os:admin client certificate signed by the OS CA: Ed25519, ClientAuth only, one year', async () => {
    const now = new Date();
    const admin = await issueAdminCertificate(bundle, now);
    const cert = new X509Certificate(admin.crt);
    const ca = new X509Certificate(pem(bundle.certs.os.crt));
    expect(cert.subject).toBe('O=os:admin');
    expect(cert.issuer).toBe('O=talos');
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000)).toBe(365);
    expect(cert.checkPrivateKey(keyFromPem(admin.key))).toBe(true);
    expect(admin.key).toMatch(pemBlock('ED25519 PRIVATE KEY'));

    const dir = tmp();
    writeFileSync(path.join(dir, 'ca.pem'), ca.toString());
    writeFileSync(path.join(dir, 'admin.pem'), admin.crt);
    expect(openssl(['verify', '-CAfile', path.join(dir, 'ca.pem'), '-purpose', 'sslclient', path.join(dir, 'admin.pem')])).toContain(': OK');
    expect(openssl(['x509', '-noout', '-text'], admin.crt)).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);

    const text = renderTalosconfig({ context: 'lab', endpoints: ['192.0.2.11', '192.0.2.12'], caCrt: bundle.certs.os.crt, admin });
    const doc = parseYaml(text);
    expect(doc.context).toBe('lab');
    expect(doc.contexts.lab.endpoints).toEqual(['192.0.2.11', '192.0.2.12']);
    expect(doc.contexts.lab.ca).toBe(bundle.certs.os.crt);
    expect(pem(doc.contexts.lab.crt)).toBe(admin.crt);
    expect(pem(doc.contexts.lab.key)).toBe(admin.key);
  });
});
