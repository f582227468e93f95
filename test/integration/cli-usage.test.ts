// The command line as a script or a shell sees it: exit codes (0 done, 1 a runtime failure, 2 a
// usage or configuration error), `-o table|json|yaml` on what lists things, and the completion
// script run by real bash and zsh.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

let g: TestGenesis;
let env: NodeJS.ProcessEnv;
const MAC = '52:54:00:0c:00:01';

beforeAll(async () => {
  g = await startGenesis();
  env = { ...process.env, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir, GENESIS_ASSETS_DIR: g.assetsDir };
  expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 'w-1', labels: { zone: 'a' } })).status).toBe(201);
}, 30_000);
afterAll(async () => {
  await g?.close();
});

const genesis = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => run(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, timeoutMs: 30_000 });

describe('exit codes', () => {
  // [arguments, exit code, the one line on stderr (start)]
  const cases: Array<[string[], number, string | RegExp]> = [
    [['nodes', 'lst'], 2, 'genesis nodes: unknown command "lst" (did you mean "list"?)'],
    [['nodes', 'list', '--rolee', 'worker'], 2, 'genesis nodes: unknown option --rolee (did you mean --role?)'],
    [['nodes', 'assign', MAC], 2, 'genesis nodes assign: assign needs a role: controlplane or worker'],
    [['nodes', 'show'], 2, 'genesis nodes show: show needs a MAC address'],
    [['nodes', 'list', '-o', 'xml'], 2, 'genesis nodes: -o xml: the output formats are table, json, yaml'],
    [['nodes', 'list', '--json', '-o', 'yaml'], 2, 'genesis nodes: --json and -o yaml disagree: give one'],
    [['assets', 'list', '-o', 'csv'], 2, 'genesis assets: -o csv: the output formats are table, json, yaml'],
    [['cluster', 'reset'], 2, 'genesis cluster reset: reset needs --confirm <cluster name>: it lets a new etcd cluster be bootstrapped'],
    [['completion', 'fish'], 2, 'genesis completion: no completion for "fish": bash or zsh'],
    [['srve'], 2, 'genesis: unknown command "srve" (did you mean "serve"?)'],
    [['nodes', 'show', '52:54:00:0c:00:99'], 1, 'genesis nodes show: no node with MAC 52:54:00:0c:00:99'],
    [['nodes', 'list', '--url', 'http://127.0.0.1:9'], 1, /^genesis nodes list: cannot reach Genesis at http:\/\/127\.0\.0\.1:9: /],
  ];
  it.each(cases)('genesis %j exits %i with one line', async (args, code, line) => {
    const r = await genesis(args);
    expect(r.code, r.stderr).toBe(code);
    const first = r.stderr.split('\n')[0]!;
    if (typeof line === 'string') expect(first).toBe(line);
    else expect(first).toMatch(line);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('backup list, before the bootstrap: why nothing is taken, and no next time that keeps moving', async () => {
    await until(async () => ((await (await g.api('GET', '/backups')).json()) as { status: { waiting: string | null } }).status.waiting !== null, 'the backup schedule to say why it waits');
    const list = await genesis(['backup', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^schedule {2}every 24 h\n/);
    expect(list.stdout).toContain('\nwaiting   the cluster is not bootstrapped yet: nothing to back up\n');
  });

  it('--config before the command is the command\'s, as the usage lists it among the options', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-cli-config-'));
    const file = path.join(dir, 'genesis.yaml');
    writeFileSync(file, 'cluster:\n  name: lab\n');
    const after = await genesis(['nodes', 'list', '--config', file]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain(MAC);
    for (const before of [['--config', file], ['-c', file], [`--config=${file}`]]) {
      const r = await genesis([...before, 'nodes', 'list']);
      expect([r.code, r.stdout, r.stderr]).toEqual([0, after.stdout, '']);
    }
    // It reaches the command: a file that is not there is the command's error, not an unknown command.
    const missing = path.join(dir, 'nope.yaml');
    const [first, last] = [await genesis(['--config', missing, 'nodes', 'list']), await genesis(['nodes', 'list', '--config', missing])];
    expect(first.code).toBe(2);
    expect([first.code, first.stderr]).toEqual([last.code, last.stderr]);
    expect(first.stderr).not.toContain('unknown command');
  });

  it('help and a successful listing exit 0', async () => {
    expect((await genesis(['help', 'completion'])).code).toBe(0);
    const list = await genesis(['nodes', 'list']);
    expect(list.code).toBe(0);
    // `genesis help` gives `genesis nodes` as the way to see the fleet: it lists, as `list` does.
    const bare = await genesis(['nodes']);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stdout).toBe(list.stdout);
    expect(bare.stdout).toContain(MAC);
    const filtered = await genesis(['nodes', '--role', 'controlplane']);
    expect([filtered.code, filtered.stdout]).toEqual([0, (await genesis(['nodes', 'list', '--role', 'controlplane'])).stdout]);
    expect(filtered.stdout).not.toContain(MAC);
  });
});

describe('-o table|json|yaml', () => {
  it('json and yaml carry the same data; table is for people; --json is -o json', async () => {
    const json = await genesis(['nodes', 'list', '-o', 'json']);
    const yaml = await genesis(['nodes', 'list', '--output', 'yaml']);
    expect([json.code, yaml.code]).toEqual([0, 0]);
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
    expect(JSON.parse((await genesis(['nodes', 'list', '--json'])).stdout)).toEqual(JSON.parse(json.stdout));
    expect(JSON.parse(json.stdout).nodes).toMatchObject([{ mac: MAC, hostname: 'w-1', labels: { zone: 'a' } }]);
    const table = await genesis(['nodes', 'list', '-o', 'table']);
    expect(table.stdout.split('\n')[0]).toMatch(/^MAC\s+ROLE\s+STATE/);
    expect(table.stdout).toContain(MAC);
  });

  it('assets list, cluster status and doctor print yaml too', async () => {
    const assets = parseYaml((await genesis(['assets', 'list', '-o', 'yaml'])).stdout) as { versions: Array<{ version: string; files: Array<{ arch: string; file: string; bytes: number }> }> };
    expect(assets.versions.map((v) => v.version)).toContain('v1.14.0');
    expect(assets.versions.find((v) => v.version === 'v1.14.0')!.files).toContainEqual({ arch: 'amd64', file: 'vmlinuz', bytes: expect.any(Number), sha256: null });
    expect(parseYaml((await genesis(['cluster', 'status', '-o', 'yaml'])).stdout)).toMatchObject({ state: 'unclaimed' });
    const doctor = await genesis(['doctor', '-o', 'yaml']);
    expect((parseYaml(doctor.stdout) as { results: Array<{ status: string }> }).results.length).toBeGreaterThan(3);
  });
});

describe('shell completion', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'genesis-completion-'));
    for (const shell of ['bash', 'zsh']) {
      const r = await genesis(['completion', shell]);
      expect(r.code).toBe(0);
      writeFileSync(path.join(dir, `genesis.${shell}`), r.stdout);
    }
  });

  // [the words typed so far, the last one being completed] → what completion offers
  const cases: Array<[string[], string[]]> = [
    [['genesis', 'no'], ['nodes']],
    [['genesis', 'nodes', 'as'], ['assign']],
    [['genesis', 'nodes', 'list', '--ro'], ['--role']],
    [['genesis', 'nodes', 'list', '-o', ''], ['table', 'json', 'yaml']],
    [['genesis', 'nodes', 'list', '--state', 'inst'], ['installing', 'installed']],
    [['genesis', 'nodes', 'assign', MAC, 'c'], ['controlplane']],
    [['genesis', 'backup', ''], ['now', 'list', 'verify']],
    [['genesis', 'completion', 'z'], ['zsh']],
    [['genesis', 'help', 'do'], ['doctor']],
    [['genesis', 'h'], ['help']],
    [['genesis', 'kubeconfig', '-o', ''], []],
  ];

  const script = (words: string[]) => `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _genesis; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const offered = (stdout: string) => stdout.split('\n').filter(Boolean);

  it.each(cases)('bash completes %j', async (words, expected) => {
    const r = await run('bash', ['--norc', '-c', `source ${dir}/genesis.bash && complete -p genesis >/dev/null && ${script(words)}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(offered(r.stdout)).toEqual(expected);
  });

  it.each(cases)('zsh (through bashcompinit) completes %j', async (words, expected) => {
    // bashcompinit's compgen runs the function in sh emulation (arrays from 0), as here, and
    // leaves matching the typed prefix to compadd, as the filter below does. The registration
    // with zsh's completion system is checked too.
    const probe = path.join(dir, `probe-${words.length}-${words.at(-1)}.sh`);
    writeFileSync(probe, script(words));
    const r = await run('zsh', ['-f', '-c', `source ${dir}/genesis.zsh && [[ \${_comps[genesis]} == *_genesis* ]] && emulate sh -c '. ${probe}'`], { env: { ...process.env, HOME: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(offered(r.stdout).filter((w) => w.startsWith(words.at(-1)!))).toEqual(expected);
  });
});

describe('the data dir, from another directory', () => {
  it('the CLI finds the running Genesis, its token and its inventory through the marker serve leaves; without it, it says where it looked', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-home-'));
    const state = path.join(work, 'state');
    mkdirSync(path.join(work, 'assets', 'ipxe'), { recursive: true });
    // Started in its own directory with no settings: ./data there, a generated token.
    const serve = new GenesisProcess(['serve'], { GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', XDG_STATE_HOME: state }, work);
    try {
      const { http } = await serve.ready();
      const marker = path.join(state, 'genesis', 'serve.json');
      await until(() => existsSync(marker), 'the serve marker');
      expect(JSON.parse(readFileSync(marker, 'utf8'))).toMatchObject({ dataDir: path.join(work, 'data'), url: `http://127.0.0.1:${http.port}` });
      // The CLI elsewhere, with nothing set: no GENESIS_URL, GENESIS_API_TOKEN or GENESIS_DATA_DIR.
      const elsewhere = mkdtempSync(path.join(tmpdir(), 'genesis-elsewhere-'));
      const bare = { PATH: process.env.PATH, XDG_STATE_HOME: state };
      const list = await run(process.execPath, [BIN, 'nodes', 'list', '-o', 'json'], { env: bare, cwd: elsewhere, timeoutMs: 30_000 });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual({ nodes: [] });
      const token = await run(process.execPath, [BIN, 'token', 'show'], { env: bare, cwd: elsewhere, timeoutMs: 30_000 });
      expect(token.stdout.trim()).toBe(readFileSync(path.join(work, 'data', 'admin.token'), 'utf8').trim());
      // No marker (another user, or serve never ran): it looks in ./data and says so.
      const lost = await run(process.execPath, [BIN, 'token', 'show'], { env: { PATH: process.env.PATH, XDG_STATE_HOME: path.join(work, 'other') }, cwd: elsewhere, timeoutMs: 30_000 });
      expect(lost).toMatchObject({ code: 1, stderr: `genesis token: no generated token in ${path.join(elsewhere, 'data')} (it is created on the first start; a GENESIS_API_TOKEN is never stored)\n` });
    } finally {
      serve.kill('SIGTERM');
      await serve.exit();
    }
  });
});
