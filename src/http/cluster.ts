// Where the cluster stands (the bootstrap lock, its history, what the control planes answered),
// the operator reset, and the generic claim API for nodes that bootstrap themselves.

import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkBearer } from '../auth/api-token.ts';
import { checkJoinToken } from '../bootstrap/join-token.ts';
import { RecoveryRefused, ResetRefused, type BootstrapOrchestrator } from '../bootstrap/orchestrator.ts';
import { ClaimRefused } from '../bootstrap/lock.ts';
import type { BootstrapLocks } from '../bootstrap/lock-store.ts';
import { normalizeMac } from '../domain/mac.ts';
import type { HistoryWriter } from '../inventory/ports.ts';
import { sourceAddress } from '../net/address.ts';
import { HttpError } from './errors.ts';

export type ClusterDeps = {
  cluster: string;
  orchestrator: Pick<BootstrapOrchestrator, 'status' | 'reset' | 'recover'>;
  locks: Pick<BootstrapLocks, 'claim' | 'get'>;
  inventory: HistoryWriter;
  joinToken: () => string;
};

/** Under the API token (registered inside the /api/v1 context). */
export function clusterRoutes(app: FastifyInstance, deps: ClusterDeps, actor: (req: FastifyRequest) => string): void {
  app.get('/cluster', async () => deps.orchestrator.status());
  recoverRoute(app, deps, actor);

  app.get('/cluster/join-token', async (_req, reply) => {
    return reply.header('cache-control', 'no-store').send({ cluster: deps.cluster, token: deps.joinToken() });
  });

  app.post<{ Body: { confirm: string } }>(
    '/cluster/reset',
    {
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['confirm'], properties: { confirm: { type: 'string', maxLength: 253 } } },
      },
    },
    async (req) => {
      // Typing the cluster's name is the "are you sure": this is for tearing a cluster down.
      if (req.body.confirm !== deps.cluster) {
        throw new HttpError(400, 'confirmation_required', `to reset the bootstrap lock, send {"confirm": "${deps.cluster}"} (the cluster name)`);
      }
      try {
        await deps.orchestrator.reset(actor(req));
      } catch (err) {
        if (err instanceof ResetRefused) throw new HttpError(409, 'reset_refused', err.message);
        throw err;
      }
      return deps.orchestrator.status();
    },
  );
}

/** POST /api/v1/cluster/recover: restore etcd from a stored snapshot, through the bootstrap lock. */
export function recoverRoute(app: FastifyInstance, deps: ClusterDeps, actor: (req: FastifyRequest) => string): void {
  app.post<{ Body: { snapshot: string; confirm: string } }>(
    '/cluster/recover',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['snapshot', 'confirm'],
          properties: { snapshot: { type: 'string', maxLength: 255 }, confirm: { type: 'string', maxLength: 253 } },
        },
      },
    },
    async (req, reply) => {
      if (req.body.confirm !== deps.cluster) {
        throw new HttpError(400, 'confirmation_required', `to recover etcd from a snapshot, confirm with the cluster's name, ${deps.cluster} (genesis cluster recover --from <snapshot> --confirm ${deps.cluster}; over the API, "confirm": "${deps.cluster}")`);
      }
      try {
        await deps.orchestrator.recover(req.body.snapshot, actor(req));
      } catch (err) {
        if (err instanceof RecoveryRefused) throw new HttpError(err.status, err.code, err.message);
        throw err;
      }
      return reply.code(202).send(deps.orchestrator.status());
    },
  );
}

/**
 * POST /api/v1/bootstrap/claim, in its own context: it takes the cluster's join token (what a
 * cloud-init node carries), or the API token.
 */
export async function claimRoutes(app: FastifyInstance, deps: ClusterDeps & { tokenHash: Buffer }): Promise<void> {
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', async (req, reply) => {
    const auth = req.headers.authorization;
    if (checkJoinToken(auth, deps.joinToken()) || checkBearer(auth, deps.tokenHash) === 'ok') return;
    reply.header('www-authenticate', 'Bearer realm="genesis-join"');
    throw new HttpError(401, 'unauthorized', auth ? 'the join token is not valid' : 'claims need Authorization: Bearer <join token> (genesis cluster join-token)');
  });

  // For nodes that must never start the cluster themselves (k3s agents): who leads, without claiming.
  app.get('/leader', async (_req, reply) => {
    const lock = deps.locks.get(deps.cluster);
    reply.header('cache-control', 'no-store');
    if (!lock.holder || lock.state === 'unclaimed' || lock.state === 'recovering') {
      throw new HttpError(404, 'no_leader', lock.state === 'recovering' ? 'a recovery holds the lock; ask again' : 'no node has been told to start the cluster yet; ask again');
    }
    return { decision: 'join', leader: { mac: lock.holder, ip: lock.holderAddr }, epoch: lock.epoch };
  });

  app.post<{ Body: { mac: string; address?: string } }>(
    '/claim',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['mac'],
          properties: {
            mac: { type: 'string', maxLength: 32 },
            address: { type: 'string', maxLength: 45, description: "The address the other nodes reach this one on (its own report); default: the request's source address, which is wrong behind NAT or a proxy" },
          },
        },
      },
    },
    async (req) => {
      const mac = normalizeMac(req.body.mac);
      if (!mac) throw new HttpError(400, 'invalid_mac', `${JSON.stringify(req.body.mac)} is not a MAC address`);
      const reported = req.body.address;
      if (reported !== undefined && isIP(reported) === 0) throw new HttpError(400, 'invalid_request', `address ${JSON.stringify(reported)} is not an IP address`);
      const source = sourceAddress(req.ip);
      // The leader's address is what the winner says it is: the source address is the NAT's or the proxy's.
      const address = reported ?? source;
      let result: ReturnType<typeof deps.locks.claim>;
      try {
        result = deps.locks.claim(deps.cluster, mac, address, 'claim');
      } catch (err) {
        if (err instanceof ClaimRefused) throw new HttpError(409, 'claim_refused', err.message);
        throw err;
      }
      const { changed, ...answer } = result;
      if (changed) deps.inventory.record(mac, 'bootstrap-claimed', 'claim', { decision: answer.decision, epoch: answer.epoch, ip: source, ...(reported ? { address: reported } : {}) });
      return answer;
    },
  );
}
