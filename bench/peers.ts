// Starting the servers a bench compares: Genesis (`genesis serve` from a checkout, in a scratch
// directory) and nginx as the static peer (sendfile, the same files). Loopback only.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const BENCH_TOKEN = 'bench-token-0123456789ab';

/** The V8 flags `npm start` and the image run Genesis with (packaging.test.ts keeps the three equal). */
export const SERVE_NODE_FLAGS = ['--max-semi-space-size=2', '--expose-gc'];

export type Running = { port: number; tftpPort?: number; pid: number; stop: () => Promise<void> };

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** GENESIS_* settings from the bench's own environment, to compare one setting's two values (the bench's own settings win). */
function settingsFromEnvironment(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('GENESIS_') && e[1] !== undefined));
}

/** `genesis serve` from `repo`, working in `dir` (its assets under dir/assets), run by `node` (this one by default). */
export async function startGenesis(repo: string, dir: string, env: Record<string, string> = {}, node = process.execPath): Promise<Running> {
  const child = spawn(node, [...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? SERVE_NODE_FLAGS), path.join(repo, 'bin', 'genesis.js'), 'serve'], {
    cwd: dir,
    env: {
      ...settingsFromEnvironment(),
      PATH: process.env.PATH,
      GENESIS_ADVERTISE_ADDR: '127.0.0.1',
      GENESIS_HTTP_HOST: '127.0.0.1',
      GENESIS_HTTP_PORT: '0',
      GENESIS_TFTP_PORT: '0',
      GENESIS_EVENTS_SINK_PORT: '0',
      GENESIS_EVENTS_KERNEL_LOG_PORT: '0',
      GENESIS_API_TOKEN: BENCH_TOKEN,
      GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443',
      GENESIS_LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let seen = '';
  const ready = await new Promise<{ http: { port: number }; tftp?: { port: number } }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`genesis exited (${code}) before it was ready`)));
    const onData = (d: Buffer) => {
      seen += d.toString();
      const line = seen.split('\n').find((l) => l.includes('"genesis ready"'));
      if (!line) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve(JSON.parse(line) as { http: { port: number }; tftp?: { port: number } });
    };
    child.stdout!.on('data', onData);
  });
  child.removeAllListeners('exit');
  return { port: ready.http.port, tftpPort: ready.tftp?.port, pid: child.pid!, stop: () => stop(child) };
}

/**
 * nginx serving `dir/assets` under /assets/ on 127.0.0.1:`port`, sendfile on, as the shared kit's
 * peer; with `staticRoot`, also the pre-rendered boot files there, as the kit's nginx-peer.conf does.
 */
export async function startNginx(dir: string, port: number, staticRoot?: string): Promise<Running> {
  const work = path.join(dir, 'nginx');
  for (const d of ['tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) mkdirSync(path.join(work, d), { recursive: true });
  writeFileSync(
    path.join(work, 'nginx.conf'),
    `worker_processes auto; daemon off; pid ${work}/nginx.pid; error_log ${work}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 10; keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path ${work}/tmp/body; proxy_temp_path ${work}/tmp/proxy; fastcgi_temp_path ${work}/tmp/fastcgi;
  uwsgi_temp_path ${work}/tmp/uwsgi; scgi_temp_path ${work}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    location /assets/ { alias ${dir}/assets/; }${
      staticRoot
        ? `
    root ${staticRoot};
    location = /boot.ipxe { default_type text/plain; }
    location = /ipxe/node { default_type text/plain; try_files /ipxe-node/$arg_mac.ipxe =404; }
    location /talos/config/ { default_type application/yaml; }`
        : ''
    }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', path.join(work, 'nginx.conf'), '-p', work], { stdio: 'inherit' });
  // Ready when it accepts a request.
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { port, pid: child.pid!, stop: () => stop(child) };
}

/**
 * The least a server on this machine can do: a Node process answering every request on
 * 127.0.0.1:`port` with `body` from memory (no routing, no logging, no database). Beside Genesis
 * under the same load, its latency is the machine's floor: what the load does to any server's
 * answers and to the client timing them.
 */
export async function startReferenceServer(port: number, body: string): Promise<Running> {
  const program = `require('node:http').createServer((req, res) => { res.setHeader('content-type', 'text/plain; charset=utf-8'); res.end(${JSON.stringify(body)}); }).listen(${port}, '127.0.0.1', () => console.log('listening'));`;
  const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => [undefined])])) as [Buffer | undefined];
  // Never outlives the bench, whatever ends it (a failed storm skips its caller's stop). kill() on a
  // child already reaped does nothing, so no other process can be hit.
  process.once('exit', () => child.kill());
  if (!line?.toString().includes('listening')) {
    child.kill();
    throw new Error(`the reference server did not start on port ${port}`);
  }
  return { port, pid: child.pid!, stop: () => stop(child) };
}

/**
 * `once` run `n` times, `concurrency` at a time, after `warm` untimed runs one by one: runs a
 * second. The closed loop the request-rate benches share.
 */
export async function ratePerSecond(n: number, concurrency: number, once: () => Promise<unknown>, warm = 0): Promise<number> {
  for (let i = 0; i < warm; i++) await once();
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < n) {
        started++;
        await once();
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}
