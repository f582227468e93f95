// What unauthenticated input can cost, counted rather than timed: codecs do work linear in their
// input, refusals are logged within a budget, rate limits and caps hold. No sockets here; the
// network-level floods are in test/integration/lan-attacker.test.ts and the fuzz stage.

import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { decode, MAGIC_COOKIE } from '../../src/dhcp/packet.ts';
import { bootAccess, mayInstall, mayRecordFacts } from '../../src/inventory/install-window.ts';
import { blankNode } from '../../src/domain/node.ts';
import { roleForNewMachine } from '../../src/inventory/policy.ts';
import { LogThrottle, sample } from '../../src/logging/throttle.ts';
import { NodeListener } from '../../src/net/node-listener.ts';
import { RateLimiter } from '../../src/net/rate-limiter.ts';
import { negotiate } from '../../src/tftp/options.ts';
import { applyPatches, parsePatch, PatchError } from '../../src/talos/patch.ts';

/** The worst DHCP packet the review found: one option split into 21,735 one-byte fragments (64 KB). */
function fragmentedPacket(fragments: number): Buffer {
  const head = Buffer.alloc(240);
  head[0] = 1;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(MAGIC_COOKIE, 236);
  const body = Buffer.alloc(fragments * 3 + 1);
  for (let i = 0; i < fragments; i++) body.set([93, 1, i & 0xff], i * 3);
  body[fragments * 3] = 255;
  return Buffer.concat([head, body]);
}

describe('DHCP decode is linear in the packet', () => {
  afterEach(() => vi.restoreAllMocks());

  it('joins the fragments of a repeated option once, not once per fragment (RFC 3396)', () => {
    const packet = fragmentedPacket(21_735);
    const concat = vi.spyOn(Buffer, 'concat');
    const p = decode(packet);
    expect(p.options.get(93)!.length).toBe(21_735);
    // One join for the one option that repeats; before, 21,734 joins of a growing buffer.
    expect(concat).toHaveBeenCalledTimes(1);
    expect(concat.mock.calls[0]![0]).toHaveLength(21_735);
  });
});

describe('TFTP: a client cannot hold a slot for minutes', () => {
  it('a timeout over the limit is left out of the OACK (RFC 2349), so the server keeps its own timer', () => {
    const limits = { maxBlksize: 1468, maxWindowsize: 64, maxTimeoutS: 10 };
    expect(negotiate(new Map([['timeout', '255']]), limits, 100)).toMatchObject({ timeoutMs: undefined, oack: new Map() });
    expect(negotiate(new Map([['timeout', '10']]), limits, 100)).toMatchObject({ timeoutMs: 10_000, oack: new Map([['timeout', '10']]) });
    // U-Boot asks for 5 s: granted.
    expect(negotiate(new Map([['timeout', '5']]), limits, 100).timeoutMs).toBe(5000);
  });
});

describe('refusals are logged within a budget, without echoing what the sender chose', () => {
  it('sample() keeps a short escaped prefix', () => {
    expect(sample('a'.repeat(65_000))).toBe(`${'a'.repeat(48)}... (65000 chars)`);
    expect(sample('boot\u0000\n\u001b[31m.ipxe')).toBe('boot\\x00\\x0a\\x1b[31m.ipxe');
  });

  it('one warn per kind and source per interval, however many refusals; the rest at debug', () => {
    const lines: Array<{ level: number; msg: string; count?: number }> = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    let now = 0;
    const t = new LogThrottle(log, { intervalMs: 60_000, now: () => now });
    for (let i = 0; i < 500; i++) t.note('tftp-malformed', '192.0.2.66', { file: sample('x'.repeat(65_000)) }, 'tftp request refused');
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    now = 60_000;
    t.note('tftp-malformed', '192.0.2.66', {}, 'tftp request refused');
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(2);
    expect(warns[1]!.count).toBe(500);
    // The first line is the refusal itself, not a summary of nothing before it.
    expect([warns[0]!.msg, warns[1]!.msg]).toEqual(['tftp request refused', 'tftp request refused (summary: 500 since the last one)']);
    // Every line stays short, whatever was sent.
    for (const l of lines) expect(JSON.stringify(l).length).toBeLessThan(600);
  });
});

describe('discovery is rate-limited per address', () => {
  it('a bucket of N per minute, refilled over time; other addresses unaffected', () => {
    let now = 0;
    const r = new RateLimiter(3, 60_000, { now: () => now });
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([true, true, true, false]);
    expect(r.take('b')).toBe(true);
    now = 20_000;
    expect([r.take('a'), r.take('a')]).toEqual([true, false]);
  });

  it('available() answers what take() would, and spends nothing', () => {
    let now = 0;
    const r = new RateLimiter(2, 60_000, { now: () => now });
    expect([r.available('a'), r.available('a')]).toEqual([true, true]);
    expect([r.take('a'), r.take('a')]).toEqual([true, true]);
    expect([r.available('a'), r.take('a')]).toEqual([false, false]);
    now = 30_000;
    expect([r.available('a'), r.available('a'), r.take('a'), r.available('a')]).toEqual([true, true, true, false]);
    expect(new RateLimiter(0, 60_000).available('b')).toBe(false);
  });

  it('the table of addresses is bounded', () => {
    const r = new RateLimiter(1, 60_000, { maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) r.take(`10.0.${i >> 8}.${i & 255}`);
    expect((r as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(100);
  });
});

describe('auto-assign modes', () => {
  it('all: control planes first; workers: never a control plane; listed: only listed MACs', () => {
    expect(roleForNewMachine({ enabled: true, controlplanes: 1 }, 0, '02:00:00:00:00:01')).toBe('controlplane');
    expect(roleForNewMachine({ enabled: true, controlplanes: 3, mode: 'workers' }, 0, '02:00:00:00:00:01')).toBe('worker');
    const listed = { enabled: true, controlplanes: 1, mode: 'listed' as const, macs: ['52:54:00:00:00:01'] };
    expect(roleForNewMachine(listed, 0, '02:00:00:00:00:01')).toBe('unassigned');
    expect(roleForNewMachine(listed, 0, '52:54:00:00:00:01')).toBe('controlplane');
  });
});

describe('install window rules', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const open = '2026-12-01T13:00:00Z';
  const node = (over: Parameters<typeof blankNode>[1]) => blankNode('52:54:00:00:00:01', over);
  it.each([
    ['unassigned: recorded, never an installer', node({}), '192.0.2.9', 'untracked'],
    ['installed: nothing changes', node({ role: 'worker', state: 'installed', windowUntil: open }), '192.0.2.9', 'frozen'],
    ['window closed', node({ role: 'worker', state: 'assigned', windowUntil: '2026-12-01T11:59:59Z' }), '192.0.2.9', 'closed'],
    ['no window at all', node({ role: 'worker', state: 'assigned' }), '192.0.2.9', 'closed'],
    ['first address binds', node({ role: 'worker', state: 'assigned', windowUntil: open }), '192.0.2.9', 'bind'],
    ['the bound address', node({ role: 'worker', state: 'installing', windowUntil: open, windowIp: '192.0.2.9' }), '192.0.2.9', 'bound'],
    ['another address: conflict', node({ role: 'worker', state: 'assigned', windowUntil: open, windowIp: '192.0.2.9' }), '192.0.2.66', 'conflict'],
    ['held after a conflict, even from the bound address', node({ role: 'worker', state: 'assigned', windowUntil: open, windowIp: '192.0.2.9', conflict: 'x' }), '192.0.2.9', 'held'],
    ['no source address: no binding', node({ role: 'worker', state: 'assigned', windowUntil: open }), undefined, 'closed'],
  ] as const)('%s', (_name, n, ip, kind) => {
    const a = bootAccess(n, ip, now);
    expect(a.kind).toBe(kind);
    expect(mayInstall(a)).toBe(kind === 'bind' || kind === 'bound');
    expect(mayRecordFacts(a)).toBe(kind === 'untracked' || kind === 'bind' || kind === 'bound');
  });
});

describe('config patches never reach a prototype', () => {
  it.each(['/__proto__/installDisk', '/machine/constructor/prototype/x', '/constructor/prototype/polluted'])('JSON patch path %s is refused', (path) => {
    const patch = parsePatch(`- op: add\n  path: ${path}\n  value: pwned\n`, 'p');
    expect(() => applyPatches([{ version: 'v1alpha1', machine: {} }], [patch])).toThrow(PatchError);
    expect(({} as Record<string, unknown>)['installDisk']).toBeUndefined();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('a __proto__ mapping key is refused', () => {
    expect(() => parsePatch('machine:\n  __proto__:\n    x: 1\n', 'p')).toThrow('machine.__proto__ is not a config field');
    expect(() => parsePatch('cluster: {}\n---\nmachine:\n  __proto__: {x: 1}\n', 'p')).toThrow('p (document 2): machine.__proto__ is not a config field');
  });
});

describe('YAML aliases in a config patch', () => {
  it('an alias inside the node it names is refused as a patch error, not a stack overflow', () => {
    expect(() => parsePatch('machine: &m\n  nested: *m\n', 'p')).toThrow(new PatchError('p: machine.nested is an alias of a node that contains it: a config cannot contain itself'));
    expect(() => parsePatch('- &op {op: add, path: /machine/x, value: [*op]}\n', 'p')).toThrow(PatchError);
  });

  it('an alias becomes a copy: changing one place leaves the other as written', () => {
    const patch = parsePatch('machine:\n  nodeLabels: &l {zone: a}\n  nodeAnnotations: *l\n', 'p');
    const [doc] = applyPatches([{ version: 'v1alpha1', machine: {} }], [patch]);
    const machine = doc!['machine'] as Record<string, Record<string, string>>;
    expect(machine['nodeLabels']).not.toBe(machine['nodeAnnotations']);
    machine['nodeLabels']!['zone'] = 'b';
    expect(machine['nodeAnnotations']).toEqual({ zone: 'a' });
  });
});

describe('node connections: caps per address, silent and idle ones closed', () => {
  it('the 5th connection from one address is closed at once; a silent one after firstByteMs', async () => {
    const refused: string[] = [];
    const accepted: net.Socket[] = [];
    const l = new NodeListener({ host: '127.0.0.1', port: 0, maxConnections: 256, maxPerAddress: 4, firstByteMs: 200, idleMs: 5000 }, (s) => void accepted.push(s), (r) => void refused.push(`${r.reason} ${r.address}`));
    const { port } = await l.start();
    try {
      const clients = await Promise.all(
        Array.from({ length: 5 }, () => new Promise<net.Socket>((resolve) => { const c = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.15.1' }, () => resolve(c)); c.on('error', () => {}); })),
      );
      const closed = await Promise.race(clients.map((c, i) => new Promise<number>((resolve) => c.once('close', () => resolve(i)))));
      expect(closed).toBeGreaterThanOrEqual(0);
      expect(refused[0]).toBe('per-address-cap 127.0.15.1');
      // Another address is not affected by the first one's cap.
      const other = await new Promise<net.Socket>((resolve) => { const c = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.15.2' }, () => resolve(c)); });
      // The four that never send a byte are closed by the server, without anything here ending them.
      await Promise.all(clients.filter((c) => !c.destroyed).map((c) => new Promise((resolve) => c.once('close', resolve))));
      // (Only 127.0.15.1's: on a loaded machine the other one may fall silent too by now.)
      expect(refused.filter((r) => r === 'silent 127.0.15.1')).toHaveLength(4);
      other.destroy();
    } finally {
      await l.close();
    }
  });
});
