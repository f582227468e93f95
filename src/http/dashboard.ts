// The web dashboard: three static files (src/dashboard) read once at start, and the login that
// turns the API token into a session cookie. Everything the dashboard shows comes from the
// same /api/v1 routes the CLI uses, authenticated by that cookie plus a per-session CSRF token
// (see auth/sessions.ts). No third-party code, fonts or CDN: it works on a LAN with no internet.

import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tokenMatches } from '../auth/api-token.ts';
import { cookieValue, csrfMatches, originAllowed, SESSION_COOKIE, CSRF_HEADER, type Sessions } from '../auth/sessions.ts';
import { HttpError } from './errors.ts';

const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/ui/icon.svg': { file: 'icon.svg', type: 'image/svg+xml' },
} as const;

// Only our own files, no inline script or style, never framed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    // same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form posts.
    .header('referrer-policy', 'same-origin')
    .header('cache-control', 'no-cache');
}

export type DashboardDeps = { sessions: Sessions; tokenHash: Buffer; defaultTalosVersion: string };

/** Failed logins per client address per minute before further attempts get 429. */
const LOGIN_ATTEMPTS = 10;

export async function dashboardRoutes(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const dir = new URL('../dashboard/', import.meta.url);
  const content = new Map(Object.entries(FILES).map(([route, f]) => [route, { body: readFileSync(new URL(f.file, dir)), type: f.type }]));
  for (const [route, f] of content) {
    app.get(route, async (_req, reply) => securityHeaders(reply).type(f.type).send(f.body));
  }

  // The login form posts application/x-www-form-urlencoded; only these routes read it.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const failures = new Map<string, { count: number; since: number }>();
  const throttled = (ip: string): boolean => {
    const f = failures.get(ip);
    if (!f || Date.now() - f.since > 60_000) return false;
    return f.count >= LOGIN_ATTEMPTS;
  };
  const fail = (ip: string): void => {
    const f = failures.get(ip);
    if (!f || Date.now() - f.since > 60_000) failures.set(ip, { count: 1, since: Date.now() });
    else f.count++;
    // Bounded: a scan from many addresses cannot grow this without end.
    if (failures.size > 1024) failures.delete(failures.keys().next().value!);
  };

  /** POST /ui/login (form): the API token opens a session; the answer redirects back to `/`. */
  app.post<{ Body: { token?: unknown } }>('/ui/login', async (req, reply) => {
    if (!originAllowed(req.headers.origin, req.headers.host)) throw new HttpError(403, 'cross_origin', 'log in from the dashboard itself');
    if (throttled(req.ip)) return reply.code(303).header('location', '/?login=throttled').send();
    const token = req.body && typeof req.body === 'object' && typeof req.body.token === 'string' ? req.body.token.trim() : '';
    const ok = token.length > 0 && token.length <= 512 && tokenMatches(token, deps.tokenHash);
    if (!ok) {
      fail(req.ip);
      req.log.warn({ client: req.ip }, 'dashboard login refused');
      return reply.code(303).header('location', '/?login=failed').send();
    }
    failures.delete(req.ip);
    const { id } = deps.sessions.open();
    req.log.info({ client: req.ip }, 'dashboard login');
    return reply
      .code(303)
      .header('set-cookie', `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${deps.sessions.ttlSeconds}`)
      .header('location', '/')
      .send();
  });

  const sessionOf = (req: FastifyRequest) => deps.sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));

  /** The page asks who it is: the CSRF token to send with changes (and the defaults it shows), or 401 (show the login). */
  app.get('/ui/session', async (req, reply) => {
    const s = sessionOf(req);
    if (!s) throw new HttpError(401, 'unauthorized', 'not logged in');
    return reply
      .header('cache-control', 'no-store')
      .send({ csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString(), defaultTalosVersion: deps.defaultTalosVersion });
  });

  app.post('/ui/logout', async (req, reply) => {
    const s = sessionOf(req);
    if (s && !csrfMatches(s, req.headers[CSRF_HEADER])) throw new HttpError(403, 'csrf', `logging out needs the session's ${CSRF_HEADER} header`);
    deps.sessions.close(cookieValue(req.headers.cookie, SESSION_COOKIE));
    return reply.code(204).header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).send();
  });
}
