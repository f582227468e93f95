import { mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { defaultRouteInterface, pickAdvertiseAddr, proxyDhcpAddress } from '../../src/config/network.ts';
import { envName, FIELDS } from '../../src/config/schema.ts';
import { token } from '../../src/ipxe/script.ts';

const detect = () => '192.0.2.10';
const tmp = () => mkdtempSync(path.join(tmpdir(), 'genesis-config-'));

describe('configuration', () => {
  it('has working defaults with no file and no environment', () => {
    const cwd = tmp();
    const c = loadConfig({ env: {}, cwd, detect });
    expect(c).toMatchObject({
      data_dir: path.join(cwd, 'data'),
      assets_dir: path.join(cwd, 'assets'),
      advertise_addr: '192.0.2.10',
      log_level: 'info',
      http: { host: '0.0.0.0', port: 8080 },
      tftp: { enabled: true, port: 69, max_blksize: 1468, max_transfers: 1000 },
    });
  });

  it('reads genesis.yaml from the working directory, and the environment overrides it', () => {
    const cwd = tmp();
    writeFileSync(path.join(cwd, 'genesis.yaml'), 'http:\n  port: 9000\ntftp:\n  port: 1069\n  max_windowsize: 16\nlog_level: debug\n');
    const c = loadConfig({ env: { GENESIS_TFTP_PORT: '2069' }, cwd, detect });
    expect(c.http.port).toBe(9000);
    expect(c.tftp.port).toBe(2069);
    expect(c.tftp.max_windowsize).toBe(16);
    expect(c.log_level).toBe('debug');
  });

  it('accepts every documented environment variable', () => {
    const env = {
      GENESIS_DATA_DIR: '/var/lib/genesis',
      GENESIS_ASSETS_DIR: '/srv/assets',
      GENESIS_HTTP_PORT: '8081',
      GENESIS_TFTP_PORT: '6969',
      GENESIS_ADVERTISE_ADDR: '192.0.2.5',
      GENESIS_LOG_LEVEL: 'warn',
      GENESIS_TFTP_ENABLED: 'false',
    };
    const c = loadConfig({ env, cwd: tmp(), detect: () => undefined });
    expect(c).toMatchObject({
      data_dir: '/var/lib/genesis',
      assets_dir: '/srv/assets',
      advertise_addr: '192.0.2.5',
      log_level: 'warn',
      http: { port: 8081 },
      tftp: { port: 6969, enabled: false },
    });
    for (const f of FIELDS) expect(envName(f.key)).toMatch(/^GENESIS_[A-Z][A-Z0-9_]+$/);
  });

  it('fails with one line naming the key, its source and the problem', () => {
    const bad = (env: Record<string, string>) => () => loadConfig({ env, cwd: tmp(), detect });
    expect(bad({ GENESIS_TFTP_PORT: 'abc' })).toThrow('invalid configuration: tftp.port (GENESIS_TFTP_PORT): must be an integer from 0 to 65535, got "abc"');
    expect(bad({ GENESIS_HTTP_PORT: '70000' })).toThrow(/http\.port .*0 to 65535/);
    expect(bad({ GENESIS_LOG_LEVEL: 'loud' })).toThrow(/log_level .*must be one of/);
    expect(bad({ GENESIS_ADVERTISE_ADDR: 'genesis.lan' })).toThrow(/advertise_addr .*IPv4 address/);
    expect(bad({ GENESIS_TFTP_MAX_BLKSIZE: '100' })).toThrow(/tftp\.max_blksize/);
  });

  it('rejects unknown keys and wrong shapes in the file', () => {
    const cwd = tmp();
    writeFileSync(path.join(cwd, 'a.yaml'), 'tftp:\n  prot: 69\n');
    expect(() => loadConfig({ file: 'a.yaml', env: {}, cwd, detect })).toThrow('invalid configuration: tftp.prot (a.yaml): unknown key');
    writeFileSync(path.join(cwd, 'b.yaml'), 'tftp: 69\n');
    expect(() => loadConfig({ file: 'b.yaml', env: {}, cwd, detect })).toThrow(/tftp \(b\.yaml\): must be a mapping/);
    writeFileSync(path.join(cwd, 'c.yaml'), 'tftp: [\n');
    expect(() => loadConfig({ file: 'c.yaml', env: {}, cwd, detect })).toThrow(/not valid YAML/);
    // A version written as 1.30 is the number 1.3 to YAML: the message says why it reads "got 1.3".
    writeFileSync(path.join(cwd, 'd.yaml'), 'cluster:\n  kubernetes_version: 1.30\n');
    expect(() => loadConfig({ file: 'd.yaml', env: {}, cwd, detect })).toThrow(
      'invalid configuration: cluster.kubernetes_version (d.yaml): must be a Kubernetes version such as 1.36.3, got 1.3 (YAML reads it as a number: put the value in quotes to keep it as written)',
    );
  });

  it('requires an explicit --config file to exist', () => {
    expect(() => loadConfig({ file: 'missing.yaml', env: {}, cwd: tmp(), detect })).toThrow(ConfigError);
    expect(() => loadConfig({ file: 'missing.yaml', env: {}, cwd: tmp(), detect })).toThrow(/cannot read configuration file .*ENOENT/);
  });

  it('says how to fix an advertise address it cannot detect', () => {
    expect(() => loadConfig({ env: {}, cwd: tmp(), detect: () => undefined })).toThrow(/set GENESIS_ADVERTISE_ADDR/);
  });
});

describe('advertise address detection', () => {
  const routes = [
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
  ].join('\n');
  const iface = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: null });

  it('picks the lowest-metric default route interface', () => {
    expect(defaultRouteInterface(routes)).toBe('eth0');
    expect(defaultRouteInterface('Iface\tDestination\n')).toBeUndefined();
  });

  it('uses that interface\'s IPv4 address, or a single address when there is no default route', () => {
    const ifaces = { lo: [iface('127.0.0.1', true)], eth0: [iface('192.0.2.7')], wlan0: [iface('198.51.100.3')] };
    expect(pickAdvertiseAddr(routes, ifaces)).toBe('192.0.2.7');
    expect(pickAdvertiseAddr(undefined, { lo: [iface('127.0.0.1', true)], br0: [iface('192.0.2.1')] })).toBe('192.0.2.1');
    expect(pickAdvertiseAddr(undefined, ifaces)).toBeUndefined(); // ambiguous
  });
});

describe('inventory, boot and API keys', () => {
  const load = (env: NodeJS.ProcessEnv) => loadConfig({ env, cwd: tmp(), detect });

  it('defaults: no auto-assign, Talos v1.14.0, no extra kernel arguments, token generated', () => {
    const c = load({});
    expect(c.auto_assign).toEqual({ enabled: false, controlplanes: 3, mode: 'all', macs: '' });
    expect(c.talos).toMatchObject({ version: 'v1.14.0', extra_kernel_args: '', installer_image: 'ghcr.io/siderolabs/installer', schematic_id: '', install_disk: '/dev/sda' });
    expect(c.talos.patches).toEqual({ cluster: '', controlplane: '', worker: '' });
    expect(c.cluster).toEqual({
      name: 'homelab',
      endpoint: '',
      vip: '',
      kubernetes_version: '1.36.3',
      dns_domain: 'cluster.local',
      pod_subnets: '10.244.0.0/16',
      service_subnets: '10.96.0.0/12',
      cni: 'flannel',
      cni_urls: '',
      allow_scheduling_on_controlplanes: false,
      admin_kubeconfig_days: 365,
    });
    expect(c.api_token).toBe('');
    expect(c.ipxe.retry_seconds).toBe(15);
  });

  it('takes environment overrides', () => {
    const c = load({ GENESIS_AUTO_ASSIGN_ENABLED: 'yes', GENESIS_AUTO_ASSIGN_CONTROLPLANES: '1', GENESIS_TALOS_VERSION: 'v1.12.4', GENESIS_TALOS_EXTRA_KERNEL_ARGS: ' console=ttyS0,115200 net.ifnames=0 ' });
    expect(c.auto_assign).toEqual({ enabled: true, controlplanes: 1, mode: 'all', macs: '' });
    expect(c.talos).toMatchObject({ version: 'v1.12.4', extra_kernel_args: 'console=ttyS0,115200 net.ifnames=0' });
  });

  it('extra kernel arguments: exactly the words the iPXE renderer writes (one rule, so a setting that loads never fails to render)', () => {
    for (const words of ['talos.dashboard.disabled=1 foo?=1', 'console=ttyS0,115200', 'a ||  shell', 'x=${mac}', '--init', 'a\tb', 'quote"d']) {
      const renders = words.split(/ +/).every((w) => {
        try {
          return token(w) === w;
        } catch {
          return false;
        }
      });
      let loads = true;
      try {
        load({ GENESIS_TALOS_EXTRA_KERNEL_ARGS: words });
      } catch {
        loads = false;
      }
      expect(loads, words).toBe(renders);
    }
    expect(load({ GENESIS_TALOS_EXTRA_KERNEL_ARGS: 'foo?=1' }).talos.extra_kernel_args).toBe('foo?=1');
  });

  it('cluster settings: lists from the environment or YAML, patch paths resolved, custom CNI needs URLs', () => {
    const dir = tmp();
    const c = loadConfig({ env: { GENESIS_CLUSTER_POD_SUBNETS: ' 10.244.0.0/16, fd00:10:244::/56 ', GENESIS_TALOS_PATCHES_CLUSTER: 'patches/all.yaml' }, cwd: dir, detect });
    expect(c.cluster.pod_subnets).toBe('10.244.0.0/16,fd00:10:244::/56');
    expect(c.talos.patches.cluster).toBe(path.join(dir, 'patches/all.yaml'));
    writeFileSync(path.join(dir, 'genesis.yaml'), 'cluster:\n  service_subnets: [10.96.0.0/12, 10.97.0.0/16]\n  vip: 192.0.2.50\n');
    const y = loadConfig({ env: {}, cwd: dir, detect });
    expect(y.cluster.service_subnets).toBe('10.96.0.0/12,10.97.0.0/16');
    expect(y.cluster.vip).toBe('192.0.2.50');
    expect(() => loadConfig({ env: { GENESIS_CLUSTER_CNI: 'custom' }, cwd: tmp(), detect })).toThrow('cluster.cni_urls: cluster.cni is "custom" but no manifest URLs are given');
  });

  it.each([
    ['GENESIS_TALOS_VERSION', 'latest', 'talos.version (GENESIS_TALOS_VERSION): must be a Talos release tag such as v1.14.0, got "latest"'],
    ['GENESIS_TALOS_VERSION', 'v1.8.0', 'talos.version (GENESIS_TALOS_VERSION): is a Talos release Genesis cannot write configs for (it supports v1.11 to v1.14), got "v1.8.0"'],
    ['GENESIS_TALOS_EXTRA_KERNEL_ARGS', 'a ||  shell', 'talos.extra_kernel_args (GENESIS_TALOS_EXTRA_KERNEL_ARGS): must be space-separated kernel arguments'],
    ['GENESIS_TALOS_EXTRA_KERNEL_ARGS', 'x=${mac}', 'talos.extra_kernel_args'],
    ['GENESIS_TALOS_EXTRA_KERNEL_ARGS', '--init', 'talos.extra_kernel_args'],
    ['GENESIS_CLUSTER_ENDPOINT', 'http://192.0.2.10:6443', 'cluster.endpoint (GENESIS_CLUSTER_ENDPOINT): must be an https URL such as https://192.0.2.10:6443, got "http://192.0.2.10:6443"'],
    ['GENESIS_CLUSTER_VIP', '192.0.2.300', 'cluster.vip (GENESIS_CLUSTER_VIP): must be an IPv4 address'],
    ['GENESIS_CLUSTER_POD_SUBNETS', '10.244.0.0', 'cluster.pod_subnets (GENESIS_CLUSTER_POD_SUBNETS): must be CIDRs such as 10.244.0.0/16; "10.244.0.0" is not'],
    ['GENESIS_CLUSTER_KUBERNETES_VERSION', 'v1.36.3', 'cluster.kubernetes_version (GENESIS_CLUSTER_KUBERNETES_VERSION): must be a Kubernetes version such as 1.36.3'],
    ['GENESIS_TALOS_SCHEMATIC_ID', 'abc', 'talos.schematic_id (GENESIS_TALOS_SCHEMATIC_ID): must be a 64-character Image Factory schematic id'],
    ['GENESIS_AUTO_ASSIGN_CONTROLPLANES', '0', 'auto_assign.controlplanes (GENESIS_AUTO_ASSIGN_CONTROLPLANES): must be an integer from 1 to 99, got "0"'],
  ])('%s=%j is refused', (name, value, message) => {
    expect(() => load({ [name]: value })).toThrow(ConfigError);
    expect(() => load({ [name]: value })).toThrow(message);
  });

  it('a short API token is refused without echoing it', () => {
    let message = '';
    try {
      load({ GENESIS_API_TOKEN: 'short-secret' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('invalid configuration: api_token (GENESIS_API_TOKEN): must be at least 16 characters');
  });
});

describe('docs/configuration.md, the configuration reference', () => {
  it('lists every key with its environment variable and default, as the schema defines them', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(path.resolve(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
    for (const f of FIELDS) {
      const def = f.default === '' ? '(empty)' : String(f.default);
      expect(readme, f.key).toContain(`| \`${f.key}\` | \`${envName(f.key)}\` | \`${def}\` |`);
    }
  });
});

describe('the proxyDHCP address', () => {
  const up = { eth0: [{ address: '192.0.2.1', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '02:00:00:00:00:01', cidr: '192.0.2.1/24' }] } as unknown as ReturnType<typeof os.networkInterfaces>;
  it('takes the named interface when it is up, advertise_addr when none is named', () => {
    expect(proxyDhcpAddress('eth0', '192.0.2.1', up)).toEqual({ iface: 'eth0', address: '192.0.2.1' });
    expect(proxyDhcpAddress('', '192.0.2.1', up)).toEqual({ iface: 'eth0', address: '192.0.2.1' });
  });
  it('starts on an interface that exists but has no carrier yet, with a warning (Node does not list it)', () => {
    const r = proxyDhcpAddress('eth1', '192.0.2.9', up, (name) => name === 'eth1');
    expect(r).toMatchObject({ iface: 'eth1', address: '192.0.2.9', warning: expect.stringMatching(/eth1 is down or has no carrier yet.*answers once the link comes up/) });
  });
  it('refuses an interface that does not exist', () => {
    expect(proxyDhcpAddress('eth9', '192.0.2.1', up, () => false)).toEqual({ problem: 'interface eth9 does not exist or has no IPv4 address (up with an address: eth0)' });
  });
});

describe('GENESIS_* variables that name no setting', () => {
  it('are found, with the setting they most likely meant; the other GENESIS_ variables Genesis reads are not', async () => {
    const { unknownEnvSettings } = await import('../../src/config/config.ts');
    expect(unknownEnvSettings({ GENESIS_CLUSTR_VIP: '192.0.2.10', GENESIS_CLUSTER_VIP: 'x', GENESIS_API_TOKEN: 't', GENESIS_URL: 'u', GENESIS_WHATEVER_ELSE_ENTIRELY: '1', PATH: '/bin' })).toEqual([
      { name: 'GENESIS_CLUSTR_VIP', suggestion: 'GENESIS_CLUSTER_VIP' },
      { name: 'GENESIS_WHATEVER_ELSE_ENTIRELY', suggestion: undefined },
    ]);
  });
});
