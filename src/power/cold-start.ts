// The ordered cold start (opt-in, power.cold_start): some time after Genesis starts, machines that
// were running before a power cut and are still silent are woken, control planes first; workers
// follow once etcd has quorum again (from member lists and service health over the Talos API).
// Machines that came back on their own (firmware "power on after AC loss") are left alone, and
// `manual` ones are never touched. Every wake is a `power` event (actor cold-start) on the
// machine's timeline; the run's progress is in status(). The rules are in cold-start-plan.ts.

import type { Logger } from 'pino';
import { nodeAddress, type Node } from '../domain/node.ts';
import type { NodeReader } from '../inventory/ports.ts';
import type { TalosDialer } from '../talos/dialer.ts';
import { hasQuorum, planColdStart, type ColdStartPlan } from './cold-start-plan.ts';
import type { PowerControl } from './power-control.ts';

export const COLD_START_ACTOR = 'cold-start';

export type ColdStartPhase = 'off' | 'scheduled' | 'probing' | 'waking-controlplanes' | 'waiting-for-quorum' | 'waking-workers' | 'done' | 'gave-up';

export type ColdStartStatus = {
  phase: ColdStartPhase;
  /** When the run starts (scheduled) or started. */
  at: string | null;
  plan: ColdStartPlan | null;
  quorum: { members: number; healthy: number } | null;
  message: string;
};

export type ColdStartDeps = {
  inventory: Pick<NodeReader, 'list'>;
  dialer: TalosDialer;
  power: PowerControl;
  /** Whether the cluster was ever bootstrapped (nothing to bring back otherwise). */
  bootstrapped: () => boolean;
  settings: { enabled: boolean; delayMs: number; pollMs: number; quorumTimeoutMs: number };
  log: Logger;
  now?: () => number;
};

export class ColdStart {
  private readonly deps: ColdStartDeps;
  private readonly now: () => number;
  private readonly startedAt: string;
  private state: ColdStartStatus;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(deps: ColdStartDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.startedAt = new Date(this.now()).toISOString();
    this.state = { phase: 'off', at: null, plan: null, quorum: null, message: 'off (power.cold_start: false)' };
  }

  start(): void {
    if (!this.deps.settings.enabled) return;
    const at = this.now() + this.deps.settings.delayMs;
    this.state = { phase: 'scheduled', at: new Date(at).toISOString(), plan: null, quorum: null, message: 'giving machines time to come back on their own first' };
    this.running = this.pause(this.deps.settings.delayMs).then(() => this.run()).catch((err: unknown) => {
      this.set('gave-up', `cold start failed: ${(err as Error).message}`);
      this.deps.log.error({ err }, 'cold start failed');
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.running;
  }

  status(): ColdStartStatus {
    return this.state;
  }

  private set(phase: ColdStartPhase, message: string, extra: Partial<ColdStartStatus> = {}): void {
    this.state = { ...this.state, phase, message, ...extra };
  }

  /** Wait `ms`, or less if stopped. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.state.at = new Date(this.now()).toISOString();
    if (!this.deps.bootstrapped()) {
      this.set('done', 'the cluster was never bootstrapped: nothing to bring back');
      return;
    }
    this.set('probing', 'asking every installed machine over the Talos API');
    const nodes = this.deps.inventory.list().filter((n) => n.state === 'installed' && n.role !== 'unassigned');
    const answers = await Promise.all(nodes.map(async (n) => ((await this.answers(n)) ? n.mac : null)));
    const plan = planColdStart(nodes, new Set(answers.filter((m): m is string => m !== null)), this.startedAt);
    this.state.plan = plan;
    if (!plan.controlplanes.length && !plan.workers.length) {
      this.set('done', plan.skipped.length ? `nothing to wake (${plan.skipped.length} silent with manual power)` : 'every machine is back');
      return;
    }
    this.deps.log.warn({ controlplanes: plan.controlplanes, workers: plan.workers, skipped: plan.skipped }, 'cold start: waking silent machines, control planes first');

    this.set('waking-controlplanes', `waking ${plan.controlplanes.length} control plane(s)`);
    await this.wakeAll(plan.controlplanes);

    const deadline = this.now() + this.deps.settings.quorumTimeoutMs;
    for (;;) {
      if (this.stopped) return;
      const quorum = await this.quorum();
      this.state.quorum = quorum;
      if (hasQuorum(quorum.members, quorum.healthy)) break;
      if (this.now() >= deadline) {
        const why = `etcd has no quorum after ${Math.round(this.deps.settings.quorumTimeoutMs / 1000)} s (${quorum.healthy} healthy of ${quorum.members} member(s))`;
        this.set('gave-up', `${why}; workers were not woken (genesis nodes power <mac> on wakes one)`);
        this.deps.log.error({ quorum }, `cold start gave up: ${why}`);
        return;
      }
      this.set('waiting-for-quorum', `waiting for etcd quorum: ${quorum.healthy} healthy of ${quorum.members} member(s)`);
      await this.pause(this.deps.settings.pollMs);
    }

    this.set('waking-workers', `etcd has quorum; waking ${plan.workers.length} worker(s)`);
    await this.wakeAll(plan.workers);
    this.set('done', `woke ${plan.controlplanes.length} control plane(s), then ${plan.workers.length} worker(s) once etcd had quorum`);
    this.deps.log.info({ quorum: this.state.quorum }, this.state.message);
  }

  private async answers(n: Node): Promise<boolean> {
    const addr = nodeAddress(n);
    if (!addr) return false;
    try {
      await (await this.deps.dialer.dial(addr)).version();
      return true;
    } catch {
      return false;
    }
  }

  private async wakeAll(macs: string[]): Promise<void> {
    for (const mac of macs) {
      if (this.stopped) return;
      try {
        await this.deps.power.act(mac, 'on', COLD_START_ACTOR);
      } catch (err) {
        // Recorded on the machine's timeline by PowerControl; the others are still woken.
        this.deps.log.warn({ mac, err: (err as Error).message }, 'cold start could not wake a machine');
      }
    }
  }

  /** The longest member list any control plane reports, and how many control planes run a healthy etcd. */
  private async quorum(): Promise<{ members: number; healthy: number }> {
    const cps = this.deps.inventory.list({ role: 'controlplane' }).map((n) => nodeAddress(n)).filter((a): a is string => a !== null);
    const answers = await Promise.all(
      cps.map(async (addr) => {
        try {
          const client = await this.deps.dialer.dial(addr);
          const [members, services] = await Promise.all([client.etcdMembers(), client.services()]);
          return { members: members.length, healthy: services.some((s) => s.id === 'etcd' && s.state === 'Running' && s.healthy) };
        } catch {
          return { members: 0, healthy: false };
        }
      }),
    );
    return { members: Math.max(0, ...answers.map((a) => a.members)), healthy: answers.filter((a) => a.healthy).length };
  }
}
