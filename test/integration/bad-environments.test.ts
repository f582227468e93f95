// What a newcomer's machine can get wrong, run against the real command: a read-only data dir, a
// file where the data dir should be, a database from a newer Genesis or not a database at all,
// missing iPXE binaries, a port in use. Each is one line on stderr (no stack trace) and the exit
// code the docs give: 2 for configuration, 1 for runtime. (Node 20: serve.test.ts.)

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA } from '../../src/inventory/migrations.ts';
import { seedSecrets } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';

const work = mkdtempSync(path.join(tmpdir(), 'genesis-bad-env-'));
const readOnly = path.join(work, 'ro');
let readOnlyMounted = '';
let taken: net.Server;
let takenUdp: dgram.Socket;

beforeAll(async () => {
  mkdirSync(path.join(work, 'assets', 'ipxe'), { recursive: true });
  // A read-only filesystem, as a full or write-protected volume is: a tmpfs mounted ro (root only).
  mkdirSync(readOnly);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]);
  readOnlyMounted = m.status === 0 ? 'yes' : `cannot mount a read-only tmpfs here: ${m.stderr?.toString().trim()}`;
  writeFileSync(path.join(work, 'a-file'), 'not a directory\n');
  const newer = path.join(work, 'newer');
  mkdirSync(newer);
  const db = new Database(path.join(newer, 'genesis.db'));
  db.pragma(`user_version = ${LATEST_SCHEMA + 1}`);
  db.close();
  seedSecrets(newer);
  mkdirSync(path.join(work, 'garbage'));
  writeFileSync(path.join(work, 'garbage', 'genesis.db'), 'this is not a database\n');
  taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  // TFTP binds every address, as it does on port 69.
  takenUdp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => takenUdp.bind(0, '0.0.0.0', resolve));
});
afterAll(() => {
  taken?.close();
  takenUdp?.close();
  if (readOnlyMounted === 'yes') spawnSync('umount', [readOnly]);
});

const env = (extra: NodeJS.ProcessEnv) => ({
  PATH: process.env.PATH,
  GENESIS_ADVERTISE_ADDR: '127.0.0.1',
  GENESIS_HTTP_HOST: '127.0.0.1',
  GENESIS_HTTP_PORT: '0',
  GENESIS_TFTP_PORT: '0',
  GENESIS_EVENTS_SINK_PORT: '0',
  GENESIS_EVENTS_KERNEL_LOG_PORT: '0',
  GENESIS_ASSETS_DIR: path.join(work, 'assets'),
  GENESIS_LOG_LEVEL: 'fatal',
  ...extra,
});

type Case = { name: string; args: string[]; env: () => NodeJS.ProcessEnv; code: number; line: RegExp; needsReadOnly?: boolean };

const cases: Case[] = [
  { name: 'serve, data dir on a read-only filesystem', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: readOnly }), code: 2, line: /^genesis: data dir .*\/ro is on a read-only filesystem: set GENESIS_DATA_DIR/, needsReadOnly: true },
  { name: 'serve, data dir to be created under a read-only filesystem', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(readOnly, 'data') }), code: 2, line: /^genesis: data dir .*\/ro\/data is on a read-only filesystem/, needsReadOnly: true },
  { name: 'doctor, data dir on a read-only filesystem', args: ['doctor'], env: () => ({ GENESIS_DATA_DIR: readOnly }), code: 1, line: /^FAIL {2}data dir .*\/ro is not writable$/m, needsReadOnly: true },
  { name: 'serve, data dir is a file', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'a-file') }), code: 2, line: /^genesis: data dir .*\/a-file is a file, not a directory: set GENESIS_DATA_DIR/ },
  { name: 'serve, a database from a newer Genesis', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'newer') }), code: 2, line: /^genesis: inventory .* has schema version \d+, newer than this Genesis knows/ },
  { name: 'config render, a database from a newer Genesis', args: ['config', 'render', '--mac', '52:54:00:00:00:01'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'newer') }), code: 1, line: /^genesis config render: inventory .* has schema version \d+, newer than this Genesis knows/ },
  { name: 'assets list, a database from a newer Genesis', args: ['assets', 'list'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'newer') }), code: 1, line: /^genesis assets list: inventory .* has schema version \d+, newer than this Genesis knows/ },
  { name: 'doctor, a database from a newer Genesis', args: ['doctor'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'newer') }), code: 1, line: /^FAIL {2}inventory .* has schema version \d+, newer than this Genesis knows/m },
  { name: 'serve, a file that is not a database', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'garbage') }), code: 2, line: /^genesis: cannot open the inventory in .*garbage: file is not a database/ },
  { name: 'assets list, a file that is not a database', args: ['assets', 'list'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'garbage') }), code: 1, line: /^genesis assets list: cannot read the inventory .*genesis\.db: file is not a database \(genesis doctor checks it\)/ },
  { name: 'doctor, iPXE binaries missing', args: ['doctor'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'data') }), code: 1, line: /^FAIL {2}iPXE binaries missing from assets\/ipxe: undionly\.kpxe, snponly\.efi$/m },
  { name: 'serve, the HTTP port in use', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'data'), GENESIS_HTTP_PORT: String((taken.address() as net.AddressInfo).port) }), code: 2, line: /^genesis: cannot listen: .*EADDRINUSE/ },
  // With the log on: the bind failure is said once, in that line, and not logged again with its trace.
  { name: 'serve, the TFTP port in use', args: ['serve'], env: () => ({ GENESIS_DATA_DIR: path.join(work, 'data'), GENESIS_TFTP_PORT: String(takenUdp.address().port), GENESIS_LOG_LEVEL: 'info' }), code: 2, line: /^genesis: cannot listen: bind EADDRINUSE 0\.0\.0\.0:\d+/ },
  { name: 'a mistyped setting name', args: ['nodes', 'list', '--url', 'http://127.0.0.1:9', '--rol', 'worker'], env: () => ({}), code: 2, line: /^genesis nodes: unknown option --rol \(did you mean --role\?\)/ },
];

describe('bad environments: one line, the right exit code, never a stack trace', () => {
  it.for(cases)('$name', async (c, ctx) => {
    if (c.needsReadOnly && readOnlyMounted !== 'yes') ctx.skip(readOnlyMounted);
    const r = await run(process.execPath, [BIN, ...c.args], { env: env(c.env()), cwd: work, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(c.code);
    // doctor reports on stdout, with its fix lines; everything else says it on stderr, in one line.
    const said = c.args[0] === 'doctor' ? r.stdout : r.stderr;
    expect(said).toMatch(c.line);
    if (c.args[0] !== 'doctor') expect(r.stderr.trimEnd().split('\n')[0]).toMatch(c.line);
    for (const text of [r.stdout, r.stderr]) expect(text).not.toMatch(/\n\s+at |node:internal|Error: /);
  });

  it('an unexpected error is one line with a --debug hint; --debug shows the trace', async () => {
    // A bug stand-in no input can cause: standard output throws on write (preloaded), so the
    // command fails in a way no handler expects, and the entry point's boundary is what answers.
    const broken = ['--import', 'data:text/javascript,process.stdout.write=()=>{throw new Error("stdout is gone")}'];
    const r = await run(process.execPath, [...broken, BIN, 'completion', 'bash'], { env: env({}), cwd: work, timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('genesis: unexpected error: stdout is gone (run again with --debug for the trace, and report it)\n');
    const debug = await run(process.execPath, [...broken, BIN, 'completion', 'bash', '--debug'], { env: env({}), cwd: work, timeoutMs: 30_000 });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^Error: stdout is gone\n\s+at /);
  });
});
