// The inventory API under /api/v1. Bearer-token authenticated; every route has a JSON schema
// (unknown fields are rejected, not dropped) and the semantic checks in inventory/changes.ts.

import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkBearer } from '../auth/api-token.ts';
import { cookieValue, csrfMatches, CSRF_HEADER, originAllowed, SESSION_COOKIE, type Sessions } from '../auth/sessions.ts';
import { checkNodeChanges } from '../inventory/changes.ts';
import { NODE_CHANGES_SCHEMA as changesSchema } from '../domain/node-changes-schema.ts';
import { BOOT_STATES, ROLES, type BootState, type Node, type NodeChanges, type Role } from '../domain/node.ts';
import type { ChangeFeed, HistoryReader, KernelLogReader, NodeAdmin } from '../inventory/ports.ts';
import type { ListCursor } from '../inventory/node-store.ts';
import type { ConfigRenderer } from '../provision/config-renderer.ts';
import { checkNodeChange, type KnownProfiles } from '../provision/node-change-check.ts';
import type { Talosconfigs } from '../provision/talosconfig-issuer.ts';
import type { Kubeconfigs } from '../provision/kubeconfig-issuer.ts';
import { RenderError } from '../talos/render.ts';
import { buildTimeline } from '../inventory/timeline.ts';
import { clusterRoutes, type ClusterDeps } from './cluster.ts';
import { backupRoutes } from './backups.ts';
import { powerAnswer, powerRoutes } from './power.ts';
import { macOf, macParams } from './mac-param.ts';
import { openApiRoutes } from './openapi.ts';
import type { PowerControl } from '../power/power-control.ts';
import type { ColdStart } from '../power/cold-start.ts';
import type { EtcdBackups } from '../backup/etcd-backups.ts';
import { streamRoutes } from './stream.ts';
import { HttpError } from './errors.ts';
import { fleetRoutes } from './fleet.ts';
import { lanRoutes, type LanStatus } from './lan.ts';
import { sameValue, samePatch } from '../fleet/plan.ts';
import type { FleetReconciler } from '../fleet/reconciler.ts';

export type ApiDeps = {
  inventory: NodeAdmin & HistoryReader & KernelLogReader & ChangeFeed;
  tokenHash: Buffer;
  /** What a node's config would be (masked) and whether a node patch renders. */
  renderer: Pick<ConfigRenderer, 'checkNodePatch' | 'redacted'>;
  /** The boot profiles a node may name. */
  profiles?: KnownProfiles;
  talosconfigs: Talosconfigs;
  kubeconfigs: Kubeconfigs;
  backups: EtcdBackups;
  power: PowerControl;
  coldStart: ColdStart;
  cluster: ClusterDeps;
  fleet: FleetReconciler;
  /** Dashboard sessions, accepted besides the bearer token. */
  sessions?: Sessions;
  /** The LAN probe (dhcp/lan-watch.ts), or why it does not run. */
  lan?: { watch?: LanStatus; disabledBecause: string };
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);



const NODE_PAGE = 1000;

/** The node list's cursor, opaque to clients: base64url of [firstSeen, mac]. */
function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.firstSeen, c.mac])).toString('base64url');
}

function decodeCursor(text: string): ListCursor {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && v[0].length <= 40 && v[1].length <= 17) return { firstSeen: v[0], mac: v[1] };
  } catch {
    // falls through to the refusal
  }
  throw new HttpError(400, 'invalid_request', 'after is not a cursor this API gave (use the "next" of the previous page)');
}

/** Who made an API change, for the event log: the client's own label, else "api". */
function actor(req: FastifyRequest): string {
  const agent = req.headers['x-genesis-actor'];
  return typeof agent === 'string' && /^[a-z0-9@._-]{1,40}$/i.test(agent) ? `api:${agent}` : 'api';
}

export async function apiRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { inventory } = deps;
  // The API speaks JSON only: a text body is 415, not a schema error about a string.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (req, reply) => {
    const result = checkBearer(req.headers.authorization, deps.tokenHash);
    if (result === 'ok') return;
    // The dashboard: a session cookie, and for anything that changes state the session's CSRF
    // token in a header (a cross-site page can make the browser send the cookie, never the header).
    const session = result === 'missing' ? deps.sessions?.get(cookieValue(req.headers.cookie, SESSION_COOKIE)) : undefined;
    if (session) {
      if (SAFE_METHODS.has(req.method)) return;
      if (originAllowed(req.headers.origin, req.headers.host) && csrfMatches(session, req.headers[CSRF_HEADER])) return;
      throw new HttpError(403, 'csrf', `a change from the dashboard needs the session's ${CSRF_HEADER} header, sent from the dashboard's own origin`);
    }
    reply.header('www-authenticate', 'Bearer realm="genesis"');
    throw new HttpError(401, 'unauthorized', result === 'missing' ? 'this API needs Authorization: Bearer <token>' : 'the bearer token is not valid');
  });

  // A page at a time (default and most 1000), in the order machines were first seen; `next` is the
  // cursor for the following page, null on the last one. Clients follow it (the CLI, the dashboard).
  app.get<{ Querystring: { role?: Role; state?: BootState; limit?: string; after?: string } }>(
    '/nodes',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            role: { enum: ROLES },
            state: { enum: BOOT_STATES },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
            after: { type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' },
          },
        },
      },
    },
    async (req) => {
      const { role, state } = req.query;
      const limit = Math.min(Number(req.query.limit ?? NODE_PAGE), NODE_PAGE);
      const after = req.query.after === undefined ? undefined : decodeCursor(req.query.after);
      const nodes = inventory.list({ role, state }, { limit: limit + 1, ...(after ? { after } : {}) });
      const more = nodes.length > limit;
      const page = more ? nodes.slice(0, limit) : nodes;
      const last = page.at(-1);
      return { nodes: page, next: more && last ? encodeCursor({ firstSeen: last.firstSeen, mac: last.mac }) : null };
    },
  );

  app.get('/nodes/:mac', { schema: { params: macParams } }, async (req) => {
    const mac = macOf(req);
    const node = inventory.get(mac);
    if (!node) throw new HttpError(404, 'not_found', `no node with MAC ${mac}`);
    return node;
  });

  /**
   * A node patch is checked before it is stored: it must parse, and the config it produces for
   * this node must pass Talos's schema, so a bad patch is a 400 now, not a failed install later.
   */
  /** The change's rules (provision/node-change-check.ts) as an answer: 400 with what to fix. */
  function checkPatch(mac: string, changes: NodeChanges): { changes: NodeChanges; warnings: string[] } {
    const verdict = checkNodeChange(mac, inventory.get(mac), changes, deps.renderer, deps.profiles);
    if (!verdict.ok) throw new HttpError(400, verdict.code, verdict.message);
    return { changes, warnings: verdict.warnings };
  }

  /** The stored node, plus `warnings` when its config patch uses deprecated or moved fields. */
  const withWarnings = (node: Node, warnings: string[]) => (warnings.length ? { ...node, warnings } : node);

  /** The fleet file wins: a change to a field it sets is refused, naming the field and the file. */
  const fleetSource = () => deps.fleet.status().source ?? 'the fleet file';
  function refuseFleetFields(mac: string, changes: NodeChanges): void {
    const node = inventory.get(mac);
    if (!node) return;
    // The same value again is no change (the dashboard sends its whole form).
    const differs = (k: keyof NodeChanges) => (k === 'configPatch' ? !samePatch(node.configPatch, changes.configPatch ?? null) : !sameValue(node[k] ?? null, changes[k] ?? null));
    const clash = (Object.keys(changes) as Array<keyof NodeChanges>).filter((k) => changes[k] !== undefined && node.fleetFields.includes(k) && differs(k));
    if (clash.length) {
      throw new HttpError(409, 'owned_by_fleet_file', `${clash.join(', ')} of ${mac} ${clash.length > 1 ? 'are' : 'is'} set by the fleet file (${fleetSource()}); change ${clash.length > 1 ? 'them' : 'it'} there`, {
        fields: clash,
      });
    }
  }

  // PUT: create or update (register a machine before it first boots). PATCH: update only.
  app.put<{ Body: NodeChanges }>('/nodes/:mac', { schema: { params: macParams, body: changesSchema } }, async (req, reply) => {
    const mac = macOf(req);
    refuseFleetFields(mac, req.body);
    const { changes, warnings } = checkPatch(mac, checkNodeChanges(req.body));
    const { node, created } = inventory.update(mac, changes, actor(req), { create: true });
    return reply.code(created ? 201 : 200).send(withWarnings(node, warnings));
  });
  app.patch<{ Body: NodeChanges }>('/nodes/:mac', { schema: { params: macParams, body: changesSchema } }, async (req) => {
    const mac = macOf(req);
    refuseFleetFields(mac, req.body);
    const { changes, warnings } = checkPatch(mac, checkNodeChanges(req.body));
    return withWarnings(inventory.update(mac, changes, actor(req), { create: false }).node, warnings);
  });

  // What the node would receive, with keys and tokens masked. Rendering consumes no token.
  app.get('/nodes/:mac/config', { schema: { params: macParams } }, async (req, reply) => {
    const mac = macOf(req);
    const node = inventory.get(mac);
    if (!node) throw new HttpError(404, 'not_found', `no node with MAC ${mac}`);
    if (node.role === 'unassigned') throw new HttpError(409, 'no_role', `node ${mac} has no role; its config depends on one`);
    try {
      return reply.type('application/yaml').header('cache-control', 'no-store').send(deps.renderer.redacted(node));
    } catch (err) {
      if (err instanceof RenderError) throw new HttpError(422, 'config_invalid', err.message);
      throw err;
    }
  });

  clusterRoutes(app, deps.cluster, actor);
  backupRoutes(app, deps.backups, actor);
  powerRoutes(app, deps.power, actor);
  fleetRoutes(app, deps.fleet);
  lanRoutes(app, deps.lan);
  await openApiRoutes(app);
  app.get('/power/cold-start', async () => deps.coldStart.status());
  streamRoutes(app, inventory);

  app.get('/talosconfig', async (_req, reply) => {
    return reply
      .type('application/yaml')
      .header('cache-control', 'no-store')
      .header('content-disposition', 'attachment; filename="talosconfig"')
      .send(await deps.talosconfigs.render());
  });

  // An admin kubeconfig from the secrets bundle alone: no node needs to be up.
  app.get('/kubeconfig', async (_req, reply) => {
    let text: string;
    try {
      text = await deps.kubeconfigs.render();
    } catch (err) {
      if (err instanceof RenderError) throw new HttpError(409, 'cluster_endpoint_unset', err.message);
      throw err;
    }
    return reply.type('application/yaml').header('cache-control', 'no-store').header('content-disposition', 'attachment; filename="kubeconfig"').send(text);
  });

  app.get('/nodes/:mac/timeline', { schema: { params: macParams } }, async (req) => {
    const mac = macOf(req);
    if (!inventory.get(mac)) throw new HttpError(404, 'not_found', `no node with MAC ${mac}`);
    return { mac, steps: buildTimeline(inventory.events(mac, { limit: 500 })) };
  });

  // The node's kernel log, oldest first: the newest `limit` lines, or the `limit` lines after line `after` (tailing).
  app.get<{ Querystring: { limit?: string; after?: string } }>(
    '/nodes/:mac/logs',
    {
      schema: {
        params: macParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,4}$' }, after: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' } },
        },
      },
    },
    async (req) => {
      const mac = macOf(req);
      if (!inventory.get(mac)) throw new HttpError(404, 'not_found', `no node with MAC ${mac}`);
      const limit = req.query.limit ? Math.min(Number(req.query.limit), 10000) : 500;
      return { mac, lines: inventory.kernelLog(mac, { limit, ...(req.query.after ? { after: Number(req.query.after) } : {}) }) };
    },
  );

  app.delete('/nodes/:mac', { schema: { params: macParams } }, async (req, reply) => {
    const mac = macOf(req);
    if (inventory.get(mac)?.fleetFields.length) {
      throw new HttpError(409, 'owned_by_fleet_file', `${mac} is listed in the fleet file (${fleetSource()}); remove it there (with fleet.prune it is then deleted)`);
    }
    if (!inventory.delete(mac, actor(req))) throw new HttpError(404, 'not_found', `no node with MAC ${mac}`);
    return reply.code(204).send();
  });

  // The operator says which of two claimants is the real machine (or, without an address, lets the
  // next one that asks be bound): the conflict is cleared and a new install window opens.
  app.post<{ Body: { ip?: string | null } }>(
    '/nodes/:mac/confirm',
    {
      schema: {
        params: macParams,
        body: { type: 'object', additionalProperties: false, properties: { ip: { anyOf: [{ type: 'string', maxLength: 45 }, { type: 'null' }] } } },
      },
    },
    async (req) => {
      const ip = req.body?.ip ?? null;
      if (ip !== null && isIP(ip) === 0) throw new HttpError(400, 'invalid_request', `ip ${JSON.stringify(ip)} is not an IP address`);
      return inventory.confirmMachine(macOf(req), ip, actor(req));
    },
  );

  // Reinstall at the next PXE boot; with {"reset": true}, also make that boot happen now: Talos
  // wipes its system disk and reboots (graceful unless {"graceful": false}: a control plane leaves etcd first).
  app.post<{ Body: { reset?: boolean; graceful?: boolean } | undefined }>(
    '/nodes/:mac/reinstall',
    {
      schema: {
        params: macParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { reset: { type: 'boolean' }, graceful: { type: 'boolean' } } },
      },
    },
    async (req) => {
      const mac = macOf(req);
      if (!req.body?.reset) return inventory.setState(mac, 'reinstall-requested', actor(req));
      const result = await powerAnswer(() => deps.power.reinstall(mac, actor(req), { graceful: req.body?.graceful ?? true }));
      return { ...inventory.get(mac)!, power: result };
    },
  );
  app.post('/nodes/:mac/installed', { schema: { params: macParams } }, async (req) => {
    return inventory.setState(macOf(req), 'installed', actor(req));
  });

  app.get<{ Querystring: { limit?: string; before?: string } }>(
    '/nodes/:mac/events',
    {
      schema: {
        params: macParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' }, before: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } },
        },
      },
    },
    async (req) => {
      const mac = macOf(req);
      const limit = req.query.limit ? Math.min(Number(req.query.limit), 1000) : 100;
      return { events: inventory.events(mac, { limit, before: req.query.before ? Number(req.query.before) : undefined }) };
    },
  );
}
