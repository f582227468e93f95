// Machine-config render cost: the main-thread time each new machine's install script spends
// rendering and checking its config (about half of that script's cost in a storm:
// docs/performance.md). Per supported minor, a worker with no patch and a control plane with the
// patches Talos's docs hand out (Cilium's cluster patch; kubelet, time servers and a
// HostnameConfig for the control planes), each rendered for fresh MACs after untimed warm-up ones.
// With --old <checkout>, that checkout's renderer is loaded into the same process and the two
// take turns batch by batch, so a slow moment of the VM falls on both; the ratio is what to read:
//
//   git worktree add /tmp/genesis-old <commit> && ln -s "$PWD/node_modules" /tmp/genesis-old/
//   node bench/render.ts --old /tmp/genesis-old
//
// Run with the V8 flags `npm start` uses (it starts itself again with them). Pure CPU, no
// sockets; bounded in count.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVE_NODE_FLAGS } from './peers.ts';
import { median } from './results.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, renders: { type: 'string' }, child: { type: 'boolean' } } });
const RENDERS = Number(values.renders ?? 2000);
const BATCHES = 20;
const WARM = 300;
const MINORS = ['v1.11.5', 'v1.12.4', 'v1.13.9', 'v1.14.0'];
const CLUSTER_PATCH = 'cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n';
const KUBELET_PATCH = 'machine:\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: true\n  time:\n    servers:\n      - time.cloudflare.com\n';
// 1.11 has no HostnameConfig: its control planes get the v1alpha1 field instead.
const hostnamePatch = (minor: number) => (minor >= 12 ? 'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n' : 'machine:\n  network:\n    hostname: cp\n');

type Role = 'worker' | 'controlplane';
/** One checkout's renderer, ready to render a fresh machine of a minor and role. */
type Renderer = (talosVersion: string, role: Role) => void;

async function rendererOf(repo: string): Promise<Renderer> {
  const load = (p: string) => import(pathToFileURL(path.join(repo, p)).href);
  const { renderConfig } = (await load('src/talos/render.ts')) as typeof import('../src/talos/render.ts');
  const { parsePatch } = (await load('src/talos/patch.ts')) as typeof import('../src/talos/patch.ts');
  const { fixtureSecrets, testCluster } = (await load('test/helpers/talos-inputs.ts')) as typeof import('../test/helpers/talos-inputs.ts');
  const secrets = fixtureSecrets();
  const cluster = testCluster();
  const patches = new Map(MINORS.map((v) => [v, [CLUSTER_PATCH, KUBELET_PATCH, hostnamePatch(Number(v.split('.')[1]))].map((t, i) => parsePatch(t, `patch ${i}`))]));
  let serial = 0;
  const mac = () => {
    const n = serial++;
    return `52:54:00:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  };
  return (talosVersion, role) => {
    renderConfig({ cluster, secrets, node: { mac: mac(), role, talosVersion }, patches: role === 'controlplane' ? patches.get(talosVersion)! : [] });
  };
}

/** µs per render over one batch of `n` renders. */
function batch(render: Renderer, v: string, role: Role, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) render(v, role);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

if (!values.child) {
  const args = [...SERVE_NODE_FLAGS, import.meta.filename, '--child', '--renders', String(RENDERS), ...(values.old ? ['--old', values.old] : [])];
  process.exit(spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1);
}

const now = await rendererOf(path.resolve(import.meta.dirname, '..'));
const old = values.old ? await rendererOf(path.resolve(values.old)) : undefined;
const per = Math.max(1, Math.round(RENDERS / BATCHES));
console.log(`µs per render: the median of ${BATCHES} batches of ${per} renders after ${WARM} untimed${old ? ', the two checkouts taking turns batch by batch' : ''}`);
for (const v of MINORS) {
  for (const role of ['worker', 'controlplane'] as const) {
    for (const r of [now, old]) if (r) for (let i = 0; i < WARM; i++) r(v, role);
    const times = { now: [] as number[], old: [] as number[] };
    for (let b = 0; b < BATCHES; b++) {
      // Each goes first in every other batch: neither always follows the other's garbage.
      if (old && b % 2) times.old.push(batch(old, v, role, per));
      times.now.push(batch(now, v, role, per));
      if (old && !(b % 2)) times.old.push(batch(old, v, role, per));
    }
    const line = `${v} ${role.padEnd(12)} ${median(times.now).toFixed(0).padStart(5)} µs`;
    console.log(old ? `${line}   old ${median(times.old).toFixed(0).padStart(5)} µs   ${(median(times.now) / median(times.old)).toFixed(2)}×` : line);
  }
}
