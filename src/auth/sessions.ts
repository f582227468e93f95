// Dashboard sessions. Logging in with the API token opens a session: the browser holds only a
// random session id in an HttpOnly, SameSite=Strict cookie (never the token itself, which would
// then sit in the browser's cookie store), and each session has its own CSRF token that every
// state-changing request must echo in a header. Sessions live in memory: a restart logs
// everyone out, which is the safe direction.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'genesis_session';
export const CSRF_HEADER = 'x-genesis-csrf';

export type Session = { csrf: string; createdAt: number; expiresAt: number };

const digest = (id: string) => createHash('sha256').update(id).digest('hex');

export class Sessions {
  private readonly byDigest = new Map<string, Session>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: { ttlMs?: number; max?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? 12 * 3600_000;
    this.max = opts.max ?? 64;
    this.now = opts.now ?? Date.now;
  }

  /** A new session; returns the id for the cookie (stored only as its digest). */
  open(): { id: string; session: Session } {
    this.prune();
    // Oldest first out when full: a flood of logins cannot grow memory.
    while (this.byDigest.size >= this.max) this.byDigest.delete(this.byDigest.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const at = this.now();
    const session = { csrf: randomBytes(24).toString('base64url'), createdAt: at, expiresAt: at + this.ttlMs };
    this.byDigest.set(digest(id), session);
    return { id, session };
  }

  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 128) return undefined;
    const s = this.byDigest.get(digest(id));
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byDigest.delete(digest(id));
      return undefined;
    }
    return s;
  }

  close(id: string | undefined): void {
    if (id) this.byDigest.delete(digest(id));
  }

  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }

  private prune(): void {
    const now = this.now();
    for (const [k, s] of this.byDigest) if (s.expiresAt <= now) this.byDigest.delete(k);
  }
}

/** The CSRF header against the session's token, in constant time. */
export function csrfMatches(session: Session, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const a = Buffer.from(header);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Same-origin check for browser requests: when the browser says where a request comes from
 * (Origin), it must be this server. Requests without Origin (curl, the CLI) carry no cookie
 * by accident, so they are judged by their credentials alone.
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (!origin) return true;
  try {
    return !!host && new URL(origin).host === host;
  } catch {
    return false;
  }
}
