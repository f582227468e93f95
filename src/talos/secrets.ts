// The cluster secrets bundle: the same content and YAML layout as `talosctl gen secrets`, so a
// bundle moves freely between Genesis and talosctl. Pure apart from key generation.

import { createPublicKey, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import { parse as parseYaml, stringify } from 'yaml';
import { certFromPem, CertificateError, createCertificate, generateKey, keyFromPem, keyToPem, type KeyKind, type Name } from './x509.ts';

export type CertAndKey = { crt: string; key: string };

/** PEM strings are stored base64-encoded, as talosctl does. */
export type SecretsBundle = {
  cluster: { id: string; secret: string };
  secrets: { bootstraptoken: string; secretboxencryptionsecret?: string; aescbcencryptionsecret?: string };
  trustdinfo: { token: string };
  certs: {
    etcd: CertAndKey;
    k8s: CertAndKey;
    k8saggregator: CertAndKey;
    k8sserviceaccount: { key: string };
    os: CertAndKey;
  };
};

export class SecretsError extends Error {}

const TOKEN_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Kubernetes bootstrap-token shape: [0-9a-z]{6}.[0-9a-z]{16}. */
export function generateToken(): string {
  const pick = (n: number) => Array.from({ length: n }, () => TOKEN_CHARS[randomInt(TOKEN_CHARS.length)]).join('');
  return `${pick(6)}.${pick(16)}`;
}
export const TOKEN_PATTERN = /^[0-9a-z]{6}\.[0-9a-z]{16}$/;

const b64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

const CA_VALIDITY_YEARS = 10;

type CaSpec = { name: Name; kind: KeyKind };
/** The four CAs and their subjects as Talos creates them. */
export const CA_SPECS = {
  etcd: { name: { organization: ['etcd'] }, kind: 'ecdsa-p256' },
  k8s: { name: { organization: ['kubernetes'] }, kind: 'ecdsa-p256' },
  k8saggregator: { name: { commonName: 'front-proxy' }, kind: 'ecdsa-p256' },
  os: { name: { organization: ['talos'] }, kind: 'ed25519' },
} as const satisfies Record<string, CaSpec>;

async function newCA(spec: CaSpec, now: Date): Promise<CertAndKey> {
  const key = await generateKey(spec.kind);
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const crt = createCertificate(
    {
      subject: spec.name,
      publicKey: createPublicKey(key),
      notBefore: now,
      notAfter,
      isCA: true,
      keyUsage: ['digitalSignature', 'certSign'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    },
    { selfSigned: key },
  );
  return { crt: b64(crt), key: b64(keyToPem(key)) };
}

/** A fresh bundle, as `talosctl gen secrets` would make it for a current Talos. */
export async function generateSecrets(now = new Date()): Promise<SecretsBundle> {
  const [etcd, k8s, k8saggregator, os, sa] = await Promise.all([
    newCA(CA_SPECS.etcd, now),
    newCA(CA_SPECS.k8s, now),
    newCA(CA_SPECS.k8saggregator, now),
    newCA(CA_SPECS.os, now),
    generateKey('rsa-4096'),
  ]);
  return {
    cluster: {
      // Talos: 32 random bytes; the id in URL-safe base64 with padding, the secret in standard base64.
      id: randomBytes(32).toString('base64url') + '=',
      secret: randomBytes(32).toString('base64'),
    },
    secrets: { bootstraptoken: generateToken(), secretboxencryptionsecret: randomBytes(32).toString('base64') },
    trustdinfo: { token: generateToken() },
    certs: { etcd, k8s, k8saggregator, k8sserviceaccount: { key: b64(keyToPem(sa)) }, os },
  };
}

/** YAML in talosctl's layout (4-space indent, no line folding of the long base64 values). */
export function serializeSecrets(bundle: SecretsBundle): string {
  const ordered = {
    cluster: bundle.cluster,
    secrets: bundle.secrets,
    trustdinfo: bundle.trustdinfo,
    certs: bundle.certs,
  };
  return stringify(ordered, { indent: 4, lineWidth: 0 });
}

function str(obj: unknown, path: string): string {
  const v = path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
  if (typeof v !== 'string' || v === '') throw new SecretsError(`secrets bundle: ${path} is missing`);
  return v;
}

/**
 * Parse and check a bundle: every field present, every certificate a valid CA whose key matches
 * it, tokens in the Kubernetes shape. The error names the field and never echoes a value.
 */
export function parseSecrets(text: string): SecretsBundle {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new SecretsError(`secrets bundle is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const pair = (name: string): CertAndKey => ({ crt: str(doc, `certs.${name}.crt`), key: str(doc, `certs.${name}.key`) });
  const secrets = (doc as { secrets?: Record<string, unknown> } | null)?.secrets;
  const secretbox = typeof secrets?.['secretboxencryptionsecret'] === 'string' ? (secrets['secretboxencryptionsecret'] as string) : undefined;
  const aescbc = typeof secrets?.['aescbcencryptionsecret'] === 'string' ? (secrets['aescbcencryptionsecret'] as string) : undefined;
  if (!secretbox && !aescbc) throw new SecretsError('secrets bundle: secrets.secretboxencryptionsecret is missing');
  const bundle: SecretsBundle = {
    cluster: { id: str(doc, 'cluster.id'), secret: str(doc, 'cluster.secret') },
    secrets: {
      bootstraptoken: str(doc, 'secrets.bootstraptoken'),
      ...(secretbox ? { secretboxencryptionsecret: secretbox } : {}),
      ...(aescbc ? { aescbcencryptionsecret: aescbc } : {}),
    },
    trustdinfo: { token: str(doc, 'trustdinfo.token') },
    certs: {
      etcd: pair('etcd'),
      k8s: pair('k8s'),
      k8saggregator: pair('k8saggregator'),
      k8sserviceaccount: { key: str(doc, 'certs.k8sserviceaccount.key') },
      os: pair('os'),
    },
  };
  checkSecrets(bundle);
  return bundle;
}

export function checkSecrets(bundle: SecretsBundle): void {
  for (const [field, value] of [
    ['secrets.bootstraptoken', bundle.secrets.bootstraptoken],
    ['trustdinfo.token', bundle.trustdinfo.token],
  ] as const) {
    if (!TOKEN_PATTERN.test(value)) throw new SecretsError(`secrets bundle: ${field} is not of the form [0-9a-z]{6}.[0-9a-z]{16}`);
  }
  for (const name of ['etcd', 'k8s', 'k8saggregator', 'os'] as const) {
    const { crt, key } = bundle.certs[name];
    try {
      const cert = certFromPem(unb64(crt));
      const k = keyFromPem(unb64(key));
      if (!cert.ca) throw new SecretsError(`secrets bundle: certs.${name}.crt is not a CA certificate`);
      if (!cert.checkPrivateKey(k)) throw new SecretsError(`secrets bundle: certs.${name}.key does not belong to certs.${name}.crt`);
    } catch (err) {
      if (err instanceof SecretsError) throw err;
      if (err instanceof CertificateError) throw new SecretsError(`secrets bundle: certs.${name}: ${err.message}`);
      throw err;
    }
  }
  try {
    keyFromPem(unb64(bundle.certs.k8sserviceaccount.key));
  } catch {
    throw new SecretsError('secrets bundle: certs.k8sserviceaccount.key is not a private key');
  }
}

/** The OS CA, for signing talosctl client certificates. */
export function osCA(bundle: SecretsBundle): { cert: ReturnType<typeof certFromPem>; key: KeyObject } {
  return { cert: certFromPem(unb64(bundle.certs.os.crt)), key: keyFromPem(unb64(bundle.certs.os.key)) };
}

/** The Kubernetes CA, for signing admin kubeconfig client certificates. */
export function kubernetesCA(bundle: SecretsBundle): { cert: ReturnType<typeof certFromPem>; key: KeyObject } {
  return { cert: certFromPem(unb64(bundle.certs.k8s.crt)), key: keyFromPem(unb64(bundle.certs.k8s.key)) };
}

export { b64 as base64Pem, unb64 as pemFromBase64 };
