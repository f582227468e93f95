// A talosconfig for the cluster's operator: an admin client certificate signed by the Talos OS
// CA, as `talosctl gen config` writes one. Issued fresh on each request and never stored.

import { stringify } from 'yaml';
import { base64Pem, osCA, type SecretsBundle } from './secrets.ts';
import { createPublicKey } from 'node:crypto';
import { createCertificate, generateKey, keyToPem } from './x509.ts';

export const ADMIN_ORGANIZATION = 'os:admin';
const ADMIN_VALIDITY_DAYS = 365;

export type AdminCertificate = { crt: string; key: string };

/** Client certificate for Talos API role os:admin: same key type as the CA (Ed25519), ClientAuth only. */
export async function issueAdminCertificate(bundle: SecretsBundle, now = new Date()): Promise<AdminCertificate> {
  const ca = osCA(bundle);
  const key = await generateKey(ca.key.asymmetricKeyType === 'ed25519' ? 'ed25519' : 'ecdsa-p256');
  const notAfter = new Date(now.getTime() + ADMIN_VALIDITY_DAYS * 86_400_000);
  const crt = createCertificate(
    {
      subject: { organization: [ADMIN_ORGANIZATION] },
      publicKey: createPublicKey(key),
      notBefore: now,
      notAfter,
      isCA: false,
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['clientAuth'],
    },
    { certificate: ca.cert, key: ca.key },
  );
  return { crt, key: keyToPem(key) };
}

export function renderTalosconfig(opts: { context: string; endpoints: string[]; nodes?: string[]; caCrt: string; admin: AdminCertificate }): string {
  const ctx: Record<string, unknown> = { endpoints: opts.endpoints };
  if (opts.nodes?.length) ctx['nodes'] = opts.nodes;
  Object.assign(ctx, { ca: opts.caCrt, crt: base64Pem(opts.admin.crt), key: base64Pem(opts.admin.key) });
  return stringify({ context: opts.context, contexts: { [opts.context]: ctx } }, { indent: 4, lineWidth: 0 });
}
