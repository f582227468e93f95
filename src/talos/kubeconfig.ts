// An admin kubeconfig for the cluster, built the way Talos builds its own (pkg/kubeconfig
// GenerateAdmin): a client certificate CN=admin, O=system:masters, ClientAuth, signed by the
// Kubernetes CA in the secrets bundle, with the CA and the cluster endpoint beside it. Needs no
// node to be up: the bundle is all it takes. Issued fresh on each request and never stored.

import { createPublicKey } from 'node:crypto';
import { stringify } from 'yaml';
import { base64Pem, kubernetesCA, type SecretsBundle } from './secrets.ts';
import { createCertificate, generateKey, keyToPem } from './x509.ts';

/** Talos's constants.KubernetesAdminCertOrganization and ...CommonName. */
export const KUBERNETES_ADMIN_ORGANIZATION = 'system:masters';
export const KUBERNETES_ADMIN_COMMON_NAME = 'admin';
/** Talos backdates the certificate by this much (allowedTimeSkew), for clocks a little behind. */
const ALLOWED_TIME_SKEW_MS = 10_000;

export type KubernetesAdminCertificate = { crt: string; key: string; notAfter: Date };

/**
 * Client certificate for the Kubernetes API as cluster-admin. The key is Ed25519 when the CA's is
 * (as Talos's NewKeyPair follows the CA), P-256 otherwise: Talos's Kubernetes CA is P-256, and an
 * older bundle's RSA CA signs a P-256 key just as well without a 4096-bit keygen per request.
 */
export async function issueKubernetesAdminCertificate(bundle: SecretsBundle, opts: { lifetimeDays: number; now?: Date }): Promise<KubernetesAdminCertificate> {
  const ca = kubernetesCA(bundle);
  const now = opts.now ?? new Date();
  const key = await generateKey(ca.key.asymmetricKeyType === 'ed25519' ? 'ed25519' : 'ecdsa-p256');
  const notAfter = new Date(now.getTime() + opts.lifetimeDays * 86_400_000);
  const crt = createCertificate(
    {
      subject: { organization: [KUBERNETES_ADMIN_ORGANIZATION], commonName: KUBERNETES_ADMIN_COMMON_NAME },
      publicKey: createPublicKey(key),
      notBefore: new Date(now.getTime() - ALLOWED_TIME_SKEW_MS),
      notAfter,
      isCA: false,
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extKeyUsage: ['clientAuth'],
    },
    { certificate: ca.cert, key: ca.key },
  );
  return { crt, key: keyToPem(key), notAfter };
}

/** The kubeconfig layout clientcmd.Write produces for Talos's admin kubeconfig. */
export function renderKubeconfig(opts: { cluster: string; endpoint: string; caCrt: string; admin: KubernetesAdminCertificate }): string {
  const user = `admin@${opts.cluster}`;
  const context = `admin@${opts.cluster}`;
  return stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: opts.cluster, cluster: { server: opts.endpoint, 'certificate-authority-data': opts.caCrt } }],
      contexts: [{ name: context, context: { cluster: opts.cluster, namespace: 'default', user } }],
      'current-context': context,
      users: [{ name: user, user: { 'client-certificate-data': base64Pem(opts.admin.crt), 'client-key-data': base64Pem(opts.admin.key) } }],
      preferences: {},
    },
    { lineWidth: 0 },
  );
}
