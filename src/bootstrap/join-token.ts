// The per-cluster join token for the generic claim API: what a cloud-init node carries to ask
// "init or join?". Derived from the cluster secret in the secrets bundle instead of stored, so a
// Genesis restored from a secrets backup accepts the tokens already baked into cloud-init.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { bearerToken } from '../auth/bearer.ts';
import type { SecretsBundle } from '../talos/secrets.ts';

export function joinToken(bundle: SecretsBundle, cluster: string): string {
  return 'gjt_' + createHmac('sha256', bundle.cluster.secret).update(`genesis bootstrap join token v1\0${cluster}`).digest('base64url');
}

/** `Authorization: Bearer <token>` against the cluster's join token, in constant time. */
export function checkJoinToken(header: string | undefined, expected: string): boolean {
  const token = bearerToken(header);
  if (token === undefined) return false;
  const a = Buffer.from(token);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The k3s cluster token of the built-in k3s recipe (K3S_TOKEN: servers and agents join with it).
 * Derived like the join token, under another label, so one never reveals the other.
 */
export function k3sToken(bundle: SecretsBundle, cluster: string): string {
  return 'K10' + createHmac('sha256', bundle.cluster.secret).update(`genesis k3s token v1\0${cluster}`).digest('hex');
}
