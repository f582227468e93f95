// Keys and certificates in the forms Talos writes them: P-256 keys as SEC1 "EC PRIVATE KEY",
// RSA as PKCS#1 "RSA PRIVATE KEY", Ed25519 as a PKCS#8 body under Talos's own label
// "ED25519 PRIVATE KEY". Certificates are built with der.ts and signed by node:crypto.

import { createHash, createPrivateKey, generateKeyPair, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as der from './der.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export type KeyKind = 'ecdsa-p256' | 'ed25519' | 'rsa-4096';

const ED25519_LABEL = 'ED25519 PRIVATE KEY';

export class CertificateError extends Error {}

/** New private key. RSA 4096 takes a second or more, so generation runs off the event loop. */
export async function generateKey(kind: KeyKind): Promise<KeyObject> {
  switch (kind) {
    case 'ecdsa-p256':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
    case 'ed25519':
      return (await generateKeyPairAsync('ed25519')).privateKey;
    case 'rsa-4096':
      return (await generateKeyPairAsync('rsa', { modulusLength: 4096 })).privateKey;
  }
}

export function keyToPem(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return key.export({ type: 'sec1', format: 'pem' }) as string;
    case 'rsa':
      return key.export({ type: 'pkcs1', format: 'pem' }) as string;
    case 'ed25519':
      return (key.export({ type: 'pkcs8', format: 'pem' }) as string).replaceAll('PRIVATE KEY', ED25519_LABEL);
    default:
      throw new CertificateError(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

/** Reads every label Talos writes (and plain PKCS#8, which other tools write). */
export function keyFromPem(pem: string): KeyObject {
  const text = pem.replaceAll(ED25519_LABEL, 'PRIVATE KEY');
  try {
    return createPrivateKey(text);
  } catch (err) {
    throw new CertificateError(`not a private key: ${(err as Error).message}`);
  }
}

export type Name = { organization?: string[]; commonName?: string };

function encodeName(n: Name): Buffer {
  const rdns: Buffer[] = [];
  for (const o of n.organization ?? []) rdns.push(der.set(der.sequence(der.oid('2.5.4.10'), der.directoryString(o))));
  if (n.commonName) rdns.push(der.set(der.sequence(der.oid('2.5.4.3'), der.directoryString(n.commonName))));
  return der.sequence(...rdns);
}

const KEY_USAGE_BITS = { digitalSignature: 0, keyEncipherment: 2, certSign: 5 } as const;
const EXT_KEY_USAGE_OIDS = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const;

export type CertificateTemplate = {
  subject: Name;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  keyUsage: Array<keyof typeof KEY_USAGE_BITS>;
  extKeyUsage: Array<keyof typeof EXT_KEY_USAGE_OIDS>;
  /** Subject alternative names: what TLS clients check a server certificate against. */
  dnsNames?: string[];
  ipAddresses?: string[];
};

export type Issuer = { certificate: X509Certificate; key: KeyObject } | { selfSigned: KeyObject };

function signatureAlgorithm(key: KeyObject): { id: Buffer; digest: string | null } {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return { id: der.sequence(der.oid('1.2.840.10045.4.3.2')), digest: 'sha256' };
    case 'ed25519':
      return { id: der.sequence(der.oid('1.3.101.112')), digest: null };
    case 'rsa':
      return { id: der.sequence(der.oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])), digest: 'sha256' };
    default:
      throw new CertificateError(`cannot sign with a ${key.asymmetricKeyType} key`);
  }
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo: what RFC 5280's key identifier hashes. */
function publicKeyBits(spki: Buffer): Buffer {
  // SPKI = SEQUENCE { AlgorithmIdentifier, BIT STRING }: skip the outer header and the algorithm.
  const alg = der.element(spki, der.element(spki, 0).body);
  const bits = der.element(spki, alg.end);
  return spki.subarray(bits.body + 1, bits.end); // +1: the unused-bits byte
}

export function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKeyBits(publicKey.export({ type: 'spki', format: 'der' }))).digest();
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** Create and sign a certificate; returns PEM. */
export function createCertificate(t: CertificateTemplate, issuer: Issuer): string {
  const signingKey = 'selfSigned' in issuer ? issuer.selfSigned : issuer.key;
  const alg = signatureAlgorithm(signingKey);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const ski = keyIdentifier(t.publicKey);
  const issuerName = 'selfSigned' in issuer ? encodeName(t.subject) : issuer.certificate.raw.subarray(...subjectSpan(issuer.certificate.raw));
  const extensions = [
    extension('2.5.29.15', true, der.namedBits(t.keyUsage.map((u) => KEY_USAGE_BITS[u]))),
    ...(t.extKeyUsage.length ? [extension('2.5.29.37', false, der.sequence(...t.extKeyUsage.map((u) => der.oid(EXT_KEY_USAGE_OIDS[u]))))] : []),
    extension('2.5.29.19', true, t.isCA ? der.sequence(der.boolean(true)) : der.sequence()),
    extension('2.5.29.14', false, der.octetString(ski)),
  ];
  const altNames = [
    ...(t.dnsNames ?? []).map((n) => der.implicit(2, Buffer.from(n, 'ascii'))),
    ...(t.ipAddresses ?? []).map((ip) => der.implicit(7, ipBytes(ip))),
  ];
  if (altNames.length) extensions.push(extension('2.5.29.17', false, der.sequence(...altNames)));
  if (!('selfSigned' in issuer)) {
    const parentKeyId = keyIdentifier(issuer.certificate.publicKey);
    extensions.push(extension('2.5.29.35', false, der.sequence(der.implicit(0, parentKeyId))));
  }
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)),
    der.unsignedInteger(serial),
    alg.id,
    issuerName,
    der.sequence(der.time(t.notBefore), der.time(t.notAfter)),
    encodeName(t.subject),
    t.publicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign(alg.digest, tbs, signingKey);
  const cert = der.sequence(tbs, alg.id, der.bitString(signature));
  const b64 = cert.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new CertificateError(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts);
}

/** Byte span of the subject Name inside a DER certificate, to copy it verbatim as an issuer. */
function subjectSpan(cert: Buffer): [number, number] {
  // TBSCertificate: version [0], serial, signature, issuer, validity, then subject.
  let at = der.element(cert, der.element(cert, 0).body).body;
  for (let i = 0; i < 5; i++) at = der.element(cert, at).end;
  return [at, der.element(cert, at).end];
}

export function certFromPem(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new CertificateError(`not a certificate: ${(err as Error).message}`);
  }
}
