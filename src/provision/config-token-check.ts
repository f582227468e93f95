// The check every tokenised boot URL starts with (a Talos config, a cloud-init datasource): the
// token's shape, its hash against the machine's, and the one side effect a check has: the right
// token from another address than its script went to was copied off the wire, so both sides are
// held until the operator confirms the real machine.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Node } from '../domain/node.ts';
import type { ConfigDenial, ConfigTokens } from '../inventory/ports.ts';

export const tokenSha256 = (token: string): string => createHash('sha256').update(token).digest('hex');

export type TokenCheck = { ok: true; hash: string; node: Node; fetchesLeft: number } | { ok: false; reason: ConfigDenial | 'bad-request'; node?: Node };

export function checkBootToken(
  inventory: Pick<ConfigTokens, 'checkConfigToken' | 'recordTokenConflict'>,
  log: Pick<Logger, 'warn'>,
  mac: string | undefined,
  token: string,
  ip: string | undefined,
): TokenCheck {
  if (!mac || !/^[0-9a-f]{64}$/.test(token)) return { ok: false, reason: 'bad-request' };
  const hash = tokenSha256(token);
  const check = inventory.checkConfigToken(mac, hash, ip);
  if (check.ok) return { ok: true, hash, node: check.node, fetchesLeft: check.fetchesLeft };
  if (check.reason === 'other-address' && check.tokenIp && ip) {
    inventory.recordTokenConflict(mac, [check.tokenIp, ip]);
    log.warn({ mac, addresses: [check.tokenIp, ip] }, 'a config token was used from another address than its script went to: both held until the operator confirms one');
  }
  return { ok: false, reason: check.reason, node: check.node };
}
