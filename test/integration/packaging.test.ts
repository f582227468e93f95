// The container path without a Docker engine: the compose file is validated by Debian's
// docker-compose (`config` parses and checks it against the compose schema, no daemon needed),
// and the Dockerfile is held to the install steps .ci/run exercises.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVE_NODE_FLAGS } from '../../bench/peers.ts';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { envName, FIELDS } from '../../src/config/schema.ts';
import { run } from '../helpers/run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const haveCompose = spawnSync('sh', ['-c', 'command -v docker-compose']).status === 0;
if (!haveCompose) console.warn('compose validation skipped: docker-compose is not installed');

// Debian's docker-compose (1.x, PyYAML) takes a key given twice and keeps the last; Docker Compose
// v2, what `docker compose up` runs today, refuses the whole file ("mapping key already defined").
// So the file is also read the strict way, with no daemon or Compose needed.
describe('docker-compose.yml as YAML', () => {
  it('names no key twice', () => {
    const doc = parseDocument(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'));
    expect(doc.errors.map((e) => e.message)).toEqual([]);
  });
});

describe.skipIf(!haveCompose)('docker-compose.yml', () => {
  it('is valid and runs Genesis on the host network with its data in volumes', async () => {
    const r = await run('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config'], { env: { PATH: process.env.PATH } });
    expect(r.code, r.stderr).toBe(0);
    const svc = (parse(r.stdout) as { services: Record<string, Record<string, unknown>> }).services.genesis!;
    expect(svc).toMatchObject({ network_mode: 'host', restart: 'unless-stopped', cap_add: ['NET_BIND_SERVICE'] });
    expect(svc.volumes).toEqual(['genesis-data:/data:rw', 'genesis-talos:/app/assets/talos:rw', `${ROOT}/config:/config:ro`]);
    // It runs where the mounted genesis.yaml and patches/ are, and Compose knows when it is healthy.
    expect(svc.working_dir).toBe('/config');
    expect((svc.healthcheck as { test: string[] }).test.join(' ')).toContain('/healthz');
    expect(svc.environment).toMatchObject({ GENESIS_ADVERTISE_ADDR: 'auto', GENESIS_ASSETS_FETCH_ON_START: 'true', GENESIS_DHCP_PROXY: 'false' });
    expect(svc.ports).toBeUndefined(); // host networking publishes nothing
  });

  it('passes every setting through from .env or the shell when set, and leaves unset ones to Genesis', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-compose-'));
    const envFile = path.join(dir, '.env');
    // What the worked example and the issue reports put in .env.
    writeFileSync(envFile, 'GENESIS_AUTO_ASSIGN_ENABLED=true\nGENESIS_TALOS_INSTALL_DISK=/dev/nvme0n1\nGENESIS_CLUSTER_ENDPOINT=https://k8s.lan:6443\n');
    const r = await run('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), '--env-file', envFile, 'config'], { env: { PATH: process.env.PATH } });
    expect(r.code, r.stderr).toBe(0);
    const env = (parse(r.stdout) as { services: Record<string, { environment: Record<string, string | null> }> }).services.genesis!.environment;
    expect(env).toMatchObject({ GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_TALOS_INSTALL_DISK: '/dev/nvme0n1', GENESIS_CLUSTER_ENDPOINT: 'https://k8s.lan:6443' });
    // Unset: null, which Compose leaves out of the container (Genesis's default applies).
    expect(env.GENESIS_TFTP_HOST).toBeNull();
    // Every setting of the schema is there, except the three the image owns.
    const owned = ['GENESIS_DATA_DIR', 'GENESIS_ASSETS_DIR', 'GENESIS_LOG_FORMAT'];
    const missing = FIELDS.map((f) => envName(f.key)).filter((n) => !owned.includes(n) && !(n in env));
    expect(missing).toEqual([]);
    for (const n of owned) expect(env, n).not.toHaveProperty(n);
  });

  it('the validator does reject a broken file (so the check above means something)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-compose-'));
    const broken = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8').replace('network_mode: host', 'network_mod: host');
    writeFileSync(path.join(dir, 'docker-compose.yml'), broken);
    const r = await run('docker-compose', ['-f', path.join(dir, 'docker-compose.yml'), 'config'], { env: { PATH: process.env.PATH } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('network_mod');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const ci = readFileSync(path.join(ROOT, '.ci/run'), 'utf8');

  it('installs the way .ci/run does: npm ci from the lockfile, iPXE from Debian via scripts/copy-ipxe.sh', () => {
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    expect(ci).toMatch(/^npm ci /m);
    expect(dockerfile).toContain('sh scripts/copy-ipxe.sh /usr/lib/ipxe assets/ipxe');
    expect(ci).toContain('sh scripts/copy-ipxe.sh /usr/lib/ipxe assets/ipxe');
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends ipxe/);
  });

  it('builds the native addons where npm ci runs, with a compiler the final image does not carry', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.install).toBe('sh scripts/build-native.sh');
    const [deps, final] = dockerfile.split(/^FROM node:24-bookworm-slim.*$/m).slice(1);
    // The deps stage has the compiler and the sources before npm ci, and fails if nothing was built.
    expect(deps).toMatch(/apt-get install -y --no-install-recommends gcc libc6-dev/);
    expect(deps!.indexOf('COPY native ./native')).toBeLessThan(deps!.indexOf('RUN npm ci'));
    expect(deps!.indexOf('COPY scripts/build-native.sh ./scripts/')).toBeLessThan(deps!.indexOf('RUN npm ci'));
    expect(deps).toContain('test -f build/native/sendfile.node');
    expect(deps).toContain('test -f build/native/tftp-pump.node');
    expect(final).toMatch(/^COPY --from=deps \/app\/build \.\/build$/m);
    expect(final).not.toMatch(/gcc/);
    expect(ci).toMatch(/^PKGS=\([^)]*\bgcc libc6-dev\b/m);
    expect(ci).toMatch(/^for addon in sendfile tftp-pump; do\n {2}test -f "build\/native\/\$addon\.node" \|\|/m);
  });

  it('is multi-stage on Node 24, runs unprivileged with CAP_NET_BIND_SERVICE, checks /healthz, keeps data in a volume', () => {
    expect(dockerfile.match(/^FROM node:24-bookworm-slim/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/setcap cap_net_bind_service=\+ep/);
    expect(dockerfile).toMatch(/^USER genesis$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\/healthz/m);
    expect(dockerfile).toMatch(/^VOLUME \["\/data", "\/app\/assets\/talos"\]$/m);
    // The entry point and the `genesis` command work from compose's working directory (/config).
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "--max-semi-space-size=2", "--expose-gc", "\/app\/bin\/genesis\.js"\]$/m);
    expect(dockerfile).toContain('exec node /app/bin/genesis.js');
    // The serve marker goes where the image's user may write (its home, /app, is root's), or
    // doctor in the container cannot name the serve, whose /proc entries the capability hides.
    expect(dockerfile).toMatch(/^\s+XDG_STATE_HOME=\/tmp\/genesis-state$/m);
    expect(dockerfile).toMatch(/useradd .*--home-dir \/app /);
  });

  it('runs Genesis with the same V8 flags from npm start, the image and the benches', () => {
    // A smaller young generation keeps an etcd snapshot's million messages from growing the heap
    // by ~100 MB (bench/etcd-snapshot-memory.ts); the flag only works on the command line.
    const start = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
    const flags = SERVE_NODE_FLAGS.join(' ');
    expect(start).toBe(`node ${flags} bin/genesis.js serve`);
    expect(dockerfile).toContain(`ENTRYPOINT ["node", ${SERVE_NODE_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "/app/bin/genesis.js"]`);
  });

  it('leaves secrets, the inventory and downloaded assets out of the build context (.dockerignore)', async () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['data', 'assets/talos', '.env', 'node_modules', '.git']) expect(ignore, entry).toContain(entry);
    // What the Dockerfile copies is not ignored.
    for (const copied of [...dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)].map((m) => m[1]!)) expect(ignore, copied).not.toContain(copied);
  });
});

