// The API bearer token. Genesis keeps only its SHA-256 (a copied data dir or backup does not
// hand out API access); the plaintext exists once, at generation, for the operator and the
// local CLI. A token from GENESIS_API_TOKEN takes precedence and is never written anywhere.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bearerToken } from './bearer.ts';

export const TOKEN_HASH_FILE = 'api-token.sha256';
/** The plaintext for the local CLI, mode 0600. Delete it if you keep the token elsewhere. */
export const CLI_TOKEN_FILE = 'admin.token';

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function generateToken(): string {
  return 'gns_' + randomBytes(32).toString('base64url');
}

export type ApiToken = {
  hash: Buffer;
  source: 'env' | 'file' | 'generated';
  /** Only when just generated: the plaintext, to show the operator once. */
  plaintext?: string;
};

export function loadOrCreateApiToken(dataDir: string, fromEnv: string): ApiToken {
  if (fromEnv) return { hash: hashToken(fromEnv), source: 'env' };
  const hashFile = path.join(dataDir, TOKEN_HASH_FILE);
  if (existsSync(hashFile)) {
    const hex = readFileSync(hashFile, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${hashFile} is not a SHA-256 hex digest; delete it to generate a new token`);
    return { hash: Buffer.from(hex, 'hex'), source: 'file' };
  }
  const plaintext = generateToken();
  const hash = hashToken(plaintext);
  // The CLI copy first: if writing it fails, no hash exists yet and the next start tries again.
  writeFileSync(path.join(dataDir, CLI_TOKEN_FILE), plaintext + '\n', { mode: 0o600 });
  writeFileSync(hashFile, hash.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return { hash, source: 'generated', plaintext };
}

/** A token against the stored hash, in constant time. */
export function tokenMatches(token: string, hash: Buffer): boolean {
  return timingSafeEqual(hashToken(token), hash);
}

/** `Authorization: Bearer <token>` against the stored hash. */
export function checkBearer(header: string | undefined, hash: Buffer): 'ok' | 'missing' | 'invalid' {
  if (!header) return 'missing';
  const token = bearerToken(header);
  return token !== undefined && tokenMatches(token, hash) ? 'ok' : 'invalid';
}

/** For the CLI: the token from the environment, else the data dir's plaintext copy. */
export function readCliToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.GENESIS_API_TOKEN) return env.GENESIS_API_TOKEN;
  try {
    return readFileSync(path.join(dataDir, CLI_TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
