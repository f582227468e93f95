// The Talos API client against a fake apid over real gRPC and mutual TLS: it only talks to nodes
// whose certificate our OS CA signed, and only an os:admin certificate of that CA gets answers.

import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TalosApiClient, type TalosApiCredentials } from '../../src/talos/api-client.ts';
import { base64Pem, osCA, parseSecrets, pemFromBase64, type SecretsBundle } from '../../src/talos/secrets.ts';
import { issueAdminCertificate } from '../../src/talos/talosconfig.ts';
import { createCertificate, generateKey, keyToPem } from '../../src/talos/x509.ts';
import { FakeTalos } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS } from '../helpers/genesis-app.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const HOST = '127.0.3.2';

async function adminCreds(b: SecretsBundle): Promise<TalosApiCredentials> {
  const admin = await issueAdminCertificate(b);
  return { ca: pemFromBase64(b.certs.os.crt), crt: admin.crt, key: admin.key };
}

/** A bundle whose OS CA is a different one: another cluster's nodes. */
async function otherCluster(): Promise<SecretsBundle> {
  const key = await generateKey('ed25519');
  const now = new Date();
  const crt = createCertificate(
    {
      subject: { organization: ['talos'] },
      publicKey: createPublicKey(key),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      isCA: true,
      keyUsage: ['digitalSignature', 'certSign'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    },
    { selfSigned: key },
  );
  return { ...bundle, certs: { ...bundle.certs, os: { crt: base64Pem(crt), key: base64Pem(keyToPem(key)) } } };
}

const open: Array<{ close(): void } | FakeTalos> = [];
afterEach(() => {
  for (const o of open.splice(0)) {
    if (o instanceof FakeTalos) o.die();
    else o.close();
  }
});

async function fake(opts: { bundle?: SecretsBundle } = {}): Promise<FakeTalos> {
  const f = await FakeTalos.start({ host: HOST, port: 0, bundle: opts.bundle ?? bundle, hostname: 'cp-1' });
  open.push(f);
  return f;
}

function client(f: FakeTalos, creds: TalosApiCredentials): TalosApiClient {
  const c = new TalosApiClient(HOST, f.port, creds, { timeoutMs: 5000 });
  open.push(c);
  return c;
}

describe('Talos API client (gRPC over mTLS)', () => {
  it('reads Version, ServiceList and EtcdMemberList, and Bootstrap starts etcd on the fake', async () => {
    const f = await fake();
    const c = client(f, await adminCreds(bundle));
    expect(await c.version()).toEqual({ tag: 'v1.13.9', hostname: 'cp-1' });
    expect((await c.services()).find((s) => s.id === 'etcd')).toEqual({ id: 'etcd', state: 'Preparing', healthy: false });
    await expect(c.etcdMembers()).rejects.toMatchObject({ code: 14, message: expect.stringContaining('etcd is not running') });
    await c.bootstrap();
    expect(f.bootstrapCalls).toBe(1);
    expect(await c.etcdMembers()).toEqual([{ id: '1000', hostname: 'cp-1', isLearner: false }]);
    expect((await c.services()).find((s) => s.id === 'etcd')?.state).toBe('Running');
  });

  it('gives the gRPC status of a refused Bootstrap', async () => {
    const f = await FakeTalos.start({ host: HOST, port: 0, bundle, bootstrap: ['not-yet', 'already'] });
    open.push(f);
    const c = client(f, await adminCreds(bundle));
    await expect(c.bootstrap()).rejects.toMatchObject({ code: 9 });
    await expect(c.bootstrap()).rejects.toMatchObject({ code: 6, message: expect.stringContaining('etcd data directory is not empty') });
  });

  it('does not talk to a node whose certificate another cluster signed', async () => {
    const f = await fake({ bundle: await otherCluster() });
    const c = client(f, await adminCreds(bundle));
    await expect(c.version()).rejects.toMatchObject({ code: 14 });
    expect(f.versionCalls).toBe(0);
  });

  it('does not talk to a node whose certificate names another address', async () => {
    const f = await FakeTalos.start({ host: HOST, port: 0, bundle, certIp: '127.0.3.99' });
    open.push(f);
    const c = client(f, await adminCreds(bundle));
    await expect(c.version()).rejects.toMatchObject({ code: 14 });
    expect(f.versionCalls).toBe(0);
  });

  it('is refused by a node when its client certificate is not from the node’s CA', async () => {
    const f = await fake();
    const c = client(f, await adminCreds(await otherCluster()).then((cr) => ({ ...cr, ca: pemFromBase64(bundle.certs.os.crt) })));
    await expect(c.version()).rejects.toMatchObject({ code: 14 });
    expect(f.versionCalls).toBe(0);
  });

  it('is refused by a node when its certificate lacks os:admin', async () => {
    const f = await fake();
    const creds = await adminCreds(bundle);
    const ca = osCA(bundle);
    const key = await generateKey('ed25519');
    const reader = createCertificate(
      { subject: { organization: ['os:reader'] }, publicKey: createPublicKey(key), notBefore: new Date(), notAfter: new Date(Date.now() + 3_600_000), isCA: false, keyUsage: ['digitalSignature'], extKeyUsage: ['clientAuth'] },
      { certificate: ca.cert, key: ca.key },
    );
    const c = client(f, { ...creds, crt: reader, key: keyToPem(key) });
    await expect(c.version()).rejects.toMatchObject({ code: 7 });
    expect(f.refusedClients).toBe(1);
  });
});
