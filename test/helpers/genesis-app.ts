// Genesis in-process on loopback ports, over temporary data and asset directories, with the
// configuration loaded the same way `genesis serve` loads it.

import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Genesis } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

export type TestGenesis = {
  app: Genesis;
  url: string;
  dataDir: string;
  assetsDir: string;
  tftpPort?: number;
  dhcpPorts?: { dhcp: number; pxe: number };
  /** Where nodes reach the Talos event sink and the kernel-log receiver (127.0.0.1). */
  eventPorts?: { sink: number; kernelLog: number };
  /** fetch against the API with the bearer token. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
};

/** Talos's published test bundle: known values to look for in logs, and no RSA-4096 keygen per test. */
export const FIXTURE_SECRETS = path.resolve(import.meta.dirname, '../fixtures/talos/stability/secrets.yaml');
export const TEST_ENDPOINT = 'https://192.0.2.10:6443';

/**
 * The environment of a `genesis serve` process on loopback for the crash tests: its data and
 * assets dirs, any free HTTP port, no TFTP, the test token and endpoint. Add what a test needs.
 */
export function loopbackServeEnv(dataDir: string, assetsDir: string): Record<string, string> {
  return {
    GENESIS_DATA_DIR: dataDir,
    GENESIS_ASSETS_DIR: assetsDir,
    GENESIS_ADVERTISE_ADDR: '127.0.0.1',
    GENESIS_HTTP_HOST: '127.0.0.1',
    GENESIS_HTTP_PORT: '0',
    GENESIS_TFTP_ENABLED: 'false',
    GENESIS_API_TOKEN: TEST_TOKEN,
    GENESIS_CLUSTER_ENDPOINT: TEST_ENDPOINT,
  };
}

/**
 * Placeholder Talos kernels and initramfs, so an assigned node gets its install script (Genesis
 * refuses to point a machine at assets that are not there). Nothing boots them here.
 */
export function stageTalosPlaceholders(assetsDir: string, versions = ['v1.14.0', 'v1.13.9', 'v1.12.0'], arches = ['amd64', 'arm64']): void {
  for (const v of versions) {
    for (const a of arches) {
      const dir = path.join(assetsDir, 'talos', v, a);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'vmlinuz'), `placeholder kernel ${v} ${a}\n`);
      writeFileSync(path.join(dir, 'initramfs.xz'), `placeholder initramfs ${v} ${a}\n`);
    }
  }
}

/** Put the fixture bundle in a data dir, as `genesis secrets import` would. */
export function seedSecrets(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'secrets.yaml');
  if (existsSync(file)) return;
  copyFileSync(FIXTURE_SECRETS, file);
  chmodSync(file, 0o600);
}

export async function startGenesis(
  env: Record<string, string> = {},
  dirs: { dataDir?: string; assetsDir?: string; generateSecrets?: boolean; logLines?: string[]; noTalosAssets?: boolean } = {},
): Promise<TestGenesis> {
  const work = mkdtempSync(path.join(tmpdir(), 'genesis-app-'));
  const dataDir = dirs.dataDir ?? path.join(work, 'data');
  const assetsDir = dirs.assetsDir ?? path.join(work, 'assets');
  mkdirSync(assetsDir, { recursive: true });
  if (!dirs.noTalosAssets && !dirs.assetsDir) stageTalosPlaceholders(assetsDir);
  if (!dirs.generateSecrets) seedSecrets(dataDir);
  const config = loadConfig({
    cwd: work,
    env: {
      GENESIS_DATA_DIR: dataDir,
      GENESIS_ASSETS_DIR: assetsDir,
      GENESIS_ADVERTISE_ADDR: '127.0.0.1',
      GENESIS_HTTP_HOST: '127.0.0.1',
      GENESIS_HTTP_PORT: '0',
      GENESIS_TFTP_HOST: '127.0.0.1',
      GENESIS_TFTP_PORT: '0',
      GENESIS_EVENTS_HOST: '127.0.0.1',
      GENESIS_EVENTS_SINK_PORT: '0',
      GENESIS_EVENTS_KERNEL_LOG_PORT: '0',
      GENESIS_API_TOKEN: TEST_TOKEN,
      GENESIS_CLUSTER_ENDPOINT: TEST_ENDPOINT,
      ...env,
    },
  });
  // With logLines: every JSON log line at debug and above lands there (to check what is, and is not, logged).
  const log = dirs.logLines ? pino({ level: 'debug' }, { write: (line: string) => void dirs.logLines!.push(line) }) : pino({ level: 'silent' });
  const app = new Genesis(config, log);
  const listening = await app.start();
  const url = `http://127.0.0.1:${listening.http.port}`;
  return {
    app,
    url,
    dataDir,
    assetsDir,
    tftpPort: listening.tftp?.port,
    dhcpPorts: listening.dhcp && { dhcp: listening.dhcp.port, pxe: listening.dhcp.pxePort },
    eventPorts: listening.events && { sink: listening.events.sink.port, kernelLog: listening.events.kernelLog.port },
    api: (method, p, body, headers = {}) =>
      fetch(`${url}/api/v1${p}`, {
        method,
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    close: async () => {
      await app.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** The per-machine script request iPXE makes after expanding boot.ipxe. */
export function nodeScriptUrl(base: string, mac: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ mac, buildarch: 'x86_64', platform: 'efi', ...extra });
  return `${base}/ipxe/node?${q}`;
}
