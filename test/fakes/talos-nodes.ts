// Control planes as the orchestrator sees them through its dial() interface, in memory: each
// answers or not, lists so many etcd members, runs etcd or not, and answers Bootstrap as told.
// The calls are recorded, so a test asserts what was sent to whom. Faithful to Talos where it
// matters here: errors carry gRPC codes (TalosApiError), and an accepted Bootstrap changes
// nothing visible until the test says etcd came up (Talos starts etcd later).

import type { TalosNode, TalosNodes } from '../../src/bootstrap/orchestrator.ts';
import { TalosApiError } from '../../src/talos/api-client.ts';

export type FakeControlPlane = {
  reachable: boolean;
  members: number;
  etcd: string | null;
  /** The next Bootstrap answers are these errors, in order; then it is accepted. */
  bootstrapErrors: Array<{ code: number; message: string }>;
  /** The next Version answers, in order (true: answers); then `reachable` decides. */
  versionAnswers: boolean[];
};

export type TalosCall = { addr: string; method: 'Version' | 'EtcdMemberList' | 'ServiceList' | 'Bootstrap' | 'EtcdRecover'; recoverEtcd?: boolean };

const UNAVAILABLE = 14;

export class FakeTalosNodes implements TalosNodes {
  readonly planes = new Map<string, FakeControlPlane>();
  readonly calls: TalosCall[] = [];
  closed = 0;

  add(addr: string, over: Partial<FakeControlPlane> = {}): FakeControlPlane {
    const plane: FakeControlPlane = { reachable: true, members: 0, etcd: 'Waiting', bootstrapErrors: [], versionAnswers: [], ...over };
    this.planes.set(addr, plane);
    return plane;
  }

  bootstraps(): TalosCall[] {
    return this.calls.filter((c) => c.method === 'Bootstrap');
  }

  async dial(addr: string): Promise<TalosNode> {
    const plane = () => this.planes.get(addr);
    const down = () => new TalosApiError(`connect ECONNREFUSED ${addr}:50000`, UNAVAILABLE);
    const answering = (): FakeControlPlane => {
      const p = plane();
      if (!p?.reachable) throw down();
      return p;
    };
    return {
      version: async () => {
        this.calls.push({ addr, method: 'Version' });
        const p = plane();
        const answers = p?.versionAnswers.length ? p.versionAnswers.shift()! : Boolean(p?.reachable);
        if (!answers) throw down();
        return { tag: 'v1.14.0', hostname: addr };
      },
      etcdMembers: async () => {
        this.calls.push({ addr, method: 'EtcdMemberList' });
        const p = answering();
        if (p.etcd !== 'Running') throw new TalosApiError('etcd is not running', 9);
        return Array.from({ length: p.members }, (_, i) => ({ id: String(i + 1), hostname: `${addr}-${i}`, isLearner: false }));
      },
      services: async () => {
        this.calls.push({ addr, method: 'ServiceList' });
        const p = answering();
        return p.etcd === null ? [] : [{ id: 'etcd', state: p.etcd, healthy: p.etcd === 'Running' }];
      },
      bootstrap: async (opts = {}) => {
        this.calls.push({ addr, method: 'Bootstrap', recoverEtcd: Boolean(opts.recoverEtcd) });
        const p = answering();
        const err = p.bootstrapErrors.shift();
        if (err) throw new TalosApiError(err.message, err.code);
      },
      etcdRecover: async (source) => {
        this.calls.push({ addr, method: 'EtcdRecover' });
        answering();
        for await (const chunk of source) void chunk;
      },
    };
  }

  closeAll(): void {
    this.closed++;
  }
}
