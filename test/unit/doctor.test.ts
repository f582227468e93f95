// Each misconfiguration `genesis doctor` knows, as the exact facts it is about.

import { describe, expect, it } from 'vitest';
import { checkAdvertise, checkAssets, checkClock, checkClusterEndpoint, checkDataDir, checkDockerDesktop, checkDownloads, checkFleet, checkHeldNodes, checkNodeVersion, checkPorts, checkTftpPump, runChecks, type Facts } from '../../src/doctor/checks.ts';

const healthy: Facts = {
  ports: [
    { proto: 'tcp', host: '0.0.0.0', port: 8080, purpose: 'HTTP', result: 'free' },
    { proto: 'udp', host: '0.0.0.0', port: 69, purpose: 'TFTP', result: 'free' },
  ],
  advertiseAddr: '192.0.2.1',
  advertiseAuto: false,
  interfaces: new Map([['eth0', ['192.0.2.1']]]),
  kernel: 'Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)',
  inContainer: false,
  platform: 'linux',
  talosAssets: [{ version: 'v1.13.9', arch: 'amd64', present: true }],
  ipxeCopy: { dir: '/srv/genesis/assets/ipxe', script: '/opt/genesis/scripts/copy-ipxe.sh' },
  ipxeBinaries: [
    { name: 'undionly.kpxe', present: true },
    { name: 'snponly.efi', present: true },
  ],
  ipxeArm64: { present: false, wanted: false, machines: [] },
  dataDir: { path: '/var/lib/genesis', writable: true },
  now: new Date('2026-11-22T12:00:00Z'),
  caValidity: { notBefore: new Date('2026-11-20T00:00:00Z'), notAfter: new Date('2036-11-20T00:00:00Z') },
  clusterEndpoint: 'https://192.0.2.10:6443',
  heldNodes: [],
};

describe('genesis doctor checks', () => {
  it('says which arm64 UEFI machines cannot boot without an arm64 iPXE binary, only when arm64 is wanted', () => {
    expect(checkAssets({ ...healthy, ipxeArm64: { present: false, wanted: false, machines: [] } }).find((r) => r.id === 'ipxe-arm64')).toBeUndefined();
    const r = checkAssets({ ...healthy, ipxeArm64: { present: false, wanted: true, machines: ['ampere-1', '52:54:00:a6:00:09'] } }).find((c) => c.id === 'ipxe-arm64');
    expect(r).toMatchObject({ status: 'warn', title: expect.stringContaining('ampere-1, 52:54:00:a6:00:09 (arm64, UEFI) cannot boot'), fix: expect.stringMatching(/genesis assets grub .*genesis assets ipxe/s) });
    expect(checkAssets({ ...healthy, ipxeArm64: { present: true, wanted: true, machines: ['ampere-1'] } }).find((c) => c.id === 'ipxe-arm64')).toBeUndefined();
  });


  it('passes a healthy host', () => {
    expect(runChecks(healthy).filter((r) => r.status !== 'ok')).toEqual([]);
  });

  it('names the process holding a port, and explains privileged ports and a DHCP server on 67', () => {
    const r = checkPorts({
      ...healthy,
      ports: [
        { proto: 'udp', host: '0.0.0.0', port: 69, purpose: 'TFTP', result: 'in-use', holder: 'in.tftpd (pid 812)' },
        { proto: 'tcp', host: '0.0.0.0', port: 80, purpose: 'HTTP', result: 'no-permission' },
        { proto: 'udp', host: '0.0.0.0', port: 67, purpose: 'proxyDHCP', result: 'in-use' },
      ],
    });
    expect(r[0]).toMatchObject({ status: 'fail', title: 'UDP 0.0.0.0:69 (TFTP) is already in use by in.tftpd (pid 812)', fix: expect.stringContaining('systemctl stop tftpd-hpa') });
    expect(r[1]).toMatchObject({ status: 'fail', title: 'TCP 0.0.0.0:80 (HTTP) needs privileges', fix: expect.stringContaining('http.port') });
    expect(r[2]).toMatchObject({ status: 'fail', detail: expect.stringContaining('--bind-interfaces') });
  });

  it('a holder hidden from this user: a likely Genesis of its owner is a warning that says whom to run doctor as; otherwise the owner is named', () => {
    const hidden = 'a process of genesis (uid 10001) that this user cannot see';
    const r = checkPorts({
      ...healthy,
      ports: [
        { proto: 'tcp', host: '0.0.0.0', port: 8080, purpose: 'HTTP', result: 'in-use', holder: hidden, hidden: { uid: 10001, user: 'genesis', serves: [4242] } },
        { proto: 'udp', host: '0.0.0.0', port: 69, purpose: 'TFTP', result: 'no-permission', holder: 'a process of root (uid 0) that this user cannot see', hidden: { uid: 0, user: 'root', serves: [7] } },
        { proto: 'tcp', host: '0.0.0.0', port: 8090, purpose: 'Talos event sink', result: 'in-use', holder: hidden, hidden: { uid: 10001, user: 'genesis', serves: [] } },
        { proto: 'udp', host: '0.0.0.0', port: 4011, purpose: 'proxyDHCP', result: 'no-permission', holder: 'in.tftpd (pid 812)' },
        { proto: 'udp', host: '0.0.0.0', port: 67, purpose: 'proxyDHCP', result: 'in-use', holder: 'a process of uid 10001 that this user cannot see', hidden: { uid: 10001, serves: [5150] } },
        { proto: 'tcp', host: '0.0.0.0', port: 8092, purpose: 'kernel-log receiver', result: 'in-use', holder: hidden, hidden: { uid: 10001, user: 'genesis', serves: [4242], sameUser: true } },
      ],
    });
    expect(r[0]).toEqual({
      id: 'port-tcp-8080',
      status: 'warn',
      title: 'TCP 0.0.0.0:8080 (HTTP) is held by a process of genesis that this user cannot see; genesis runs genesis serve (pid 4242), likely the holder',
      fix: 'run genesis doctor as genesis (sudo -u genesis genesis doctor, in its environment), or as root, to see who holds it',
    });
    expect(r[1]).toMatchObject({ status: 'warn', fix: 'run genesis doctor as root to see who holds it' });
    expect(r[2]).toMatchObject({ status: 'fail', title: `TCP 0.0.0.0:8090 (Talos event sink) is already in use by ${hidden}` });
    expect(r[3]).toMatchObject({ status: 'fail', title: 'UDP 0.0.0.0:4011 (proxyDHCP) needs privileges', detail: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; it is held now by in.tftpd (pid 812)' });
    // A uid with no name here: the container's user, seen from the host. sudo cannot reach its environment.
    expect(r[4]).toMatchObject({
      status: 'warn',
      title: 'UDP 0.0.0.0:67 (proxyDHCP) is held by a process of uid 10001 that this user cannot see; uid 10001 runs genesis serve (pid 5150), likely the holder',
      fix: "uid 10001 has no name on this host, so it is likely a container's user: run doctor inside it (docker compose exec -T genesis genesis doctor), or as root, to see who holds it",
    });
    // This user's own serve, hidden by its capability (the image's node, systemd's ambient one):
    // neither sudo to itself nor exec into the container it is already in; its marker names it.
    expect(r[5]).toMatchObject({
      status: 'warn',
      title: 'TCP 0.0.0.0:8092 (kernel-log receiver) is held by a process of this user (genesis) that a capability hides from this shell; this user runs genesis serve (pid 4242), likely the holder',
      fix: 'run genesis doctor with the HOME (or XDG_STATE_HOME) genesis serve runs with, where it records its pid and ports, or as root, to see who holds it',
    });
  });

  it('warns about a GENESIS_ variable that names no setting, with the one it most likely meant', () => {
    const r = runChecks({ ...healthy, unknownEnv: [{ name: 'GENESIS_CLUSTR_VIP', suggestion: 'GENESIS_CLUSTER_VIP' }] }).filter((c) => c.status !== 'ok');
    expect(r).toEqual([{ id: 'env-GENESIS_CLUSTR_VIP', status: 'warn', title: 'GENESIS_CLUSTR_VIP is not a Genesis setting and is ignored', fix: 'did you mean GENESIS_CLUSTER_VIP?' }]);
  });

  it('run beside a Genesis started in another directory, says its other checks judge this command\'s configuration', () => {
    const ports = [{ proto: 'tcp' as const, host: '0.0.0.0', port: 8080, purpose: 'HTTP', result: 'in-use' as const, genesis: { pid: 77, healthy: true, cwd: '/srv/genesis' } }];
    expect(runChecks({ ...healthy, ports, cwd: '/root' }).find((c) => c.id === 'running-genesis-elsewhere')).toMatchObject({ status: 'warn', title: expect.stringContaining('pid 77) in /srv/genesis'), fix: expect.stringContaining('cd /srv/genesis') });
    expect(runChecks({ ...healthy, ports, cwd: '/srv/genesis' }).find((c) => c.id === 'running-genesis-elsewhere')).toBeUndefined();
  });

  it('a port held by the running Genesis is no clash; each port gets its own fix', () => {
    const r = checkPorts({
      ...healthy,
      ports: [
        { proto: 'tcp', host: '0.0.0.0', port: 8080, purpose: 'HTTP', result: 'in-use', holder: 'genesis serve (pid 77)', genesis: { pid: 77, healthy: true } },
        { proto: 'tcp', host: '0.0.0.0', port: 8090, purpose: 'Talos event sink', result: 'in-use', holder: 'genesis serve (pid 77)', genesis: { pid: 77, healthy: false } },
        { proto: 'tcp', host: '0.0.0.0', port: 8092, purpose: 'kernel-log receiver', result: 'in-use', holder: 'nc (pid 9)' },
        // Bound with SO_REUSEADDR by both: free to the trial, still Genesis's.
        { proto: 'udp', host: '0.0.0.0', port: 4011, purpose: 'proxyDHCP', result: 'free', holder: 'genesis serve (pid 77)', genesis: { pid: 77, healthy: true } },
      ],
    });
    expect(r[3]).toEqual({ id: 'port-udp-4011', status: 'ok', title: 'UDP 0.0.0.0:4011 (proxyDHCP) is served by the running Genesis (pid 77)' });
    expect(r[0]).toEqual({ id: 'port-tcp-8080', status: 'ok', title: 'TCP 0.0.0.0:8080 (HTTP) is served by the running Genesis (pid 77)' });
    expect(r[1]).toMatchObject({ status: 'warn', title: expect.stringContaining('does not answer /healthz') });
    expect(r[2]).toMatchObject({ status: 'fail', fix: expect.stringContaining('events.kernel_log_port') });
    expect(r[2]!.fix).not.toContain('DHCP');
  });

  it('fails an advertise_addr that is not on this host, and warns when "auto" had several LANs to pick from', () => {
    expect(checkAdvertise({ ...healthy, advertiseAddr: '127.0.0.1' })[0]).toMatchObject({ status: 'fail', title: expect.stringContaining('loopback') });
    expect(checkAdvertise({ ...healthy, advertiseAddr: '192.0.2.77' })[0]).toMatchObject({ status: 'fail', title: 'advertise_addr 192.0.2.77 is not an address of this host' });
    const two = checkAdvertise({
      ...healthy,
      advertiseAuto: true,
      interfaces: new Map([
        ['eth0', ['192.0.2.1']],
        ['wlan0', ['192.0.2.130']],
        ['docker0', ['192.0.2.200']],
      ]),
    });
    expect(two[1]).toMatchObject({ status: 'warn', title: 'advertise_addr is "auto" and this host has 2 candidate interfaces' });
    expect(checkAdvertise({ ...healthy, advertiseAuto: true, interfaces: new Map([['eth0', ['192.0.2.1']], ['docker0', ['192.0.2.200']]]) })).toHaveLength(1);
  });

  it('recognises Docker Desktop and non-Linux hosts', () => {
    expect(checkDockerDesktop({ ...healthy, inContainer: true, kernel: 'Linux version 6.10.14-linuxkit (root@buildkitsandbox)' }).status).toBe('fail');
    expect(checkDockerDesktop({ ...healthy, inContainer: true, kernel: 'Linux version 5.15.153.1-microsoft-standard-WSL2' }).status).toBe('fail');
    expect(checkDockerDesktop({ ...healthy, platform: 'darwin' }).status).toBe('fail');
    expect(checkDockerDesktop({ ...healthy, inContainer: true }).status).toBe('ok');
  });

  it('fails missing iPXE binaries and warns about missing Talos assets, with the commands that fix them', () => {
    const r = checkAssets({ ...healthy, ipxeBinaries: [{ name: 'undionly.kpxe', present: false }, { name: 'snponly.efi', present: true }], talosAssets: [{ version: 'v1.12.4', arch: 'arm64', present: false }] });
    expect(r[0]).toMatchObject({ status: 'fail', title: 'iPXE binaries missing from assets/ipxe: undionly.kpxe', fix: expect.stringContaining('copy-ipxe.sh') });
    expect(r[1]).toMatchObject({ status: 'warn', fix: 'genesis assets fetch --talos v1.12.4 --arch arm64' });
    // With where they go and this install's script, the fix is a command to paste as it is.
    const named = checkAssets({ ...healthy, ipxeBinaries: [{ name: 'undionly.kpxe', present: false }] });
    expect(named[0]!.fix).toBe('apt-get install ipxe && sh /opt/genesis/scripts/copy-ipxe.sh /usr/lib/ipxe /srv/genesis/assets/ipxe');
  });

  it('fails a data dir it cannot write', () => {
    expect(checkDataDir({ ...healthy, dataDir: { path: '/x', writable: false, error: 'EACCES' } })).toMatchObject({ status: 'fail', detail: 'EACCES' });
  });

  it('fails a clock before this release or outside the CA validity', () => {
    expect(checkClock({ ...healthy, now: new Date('2020-01-01T00:00:00Z') }).status).toBe('fail');
    expect(checkClock({ ...healthy, now: new Date('2026-11-19T00:00:00Z') })).toMatchObject({ status: 'fail', title: expect.stringContaining("outside the cluster CA's validity") });
    expect(checkClock({ ...healthy, now: new Date('2037-01-01T00:00:00Z') }).status).toBe('fail');
    expect(checkClock({ ...healthy, caValidity: undefined }).status).toBe('ok');
  });

  it('fails without a Kubernetes API endpoint: no config can be rendered, so nothing installs', () => {
    expect(checkClusterEndpoint(healthy)).toMatchObject({ status: 'ok' });
    const r = checkClusterEndpoint({ ...healthy, clusterEndpoint: '' });
    expect(r.status).toBe('fail');
    expect(r.fix).toContain('GENESIS_CLUSTER_ENDPOINT');
    // A homelab whose roles all boot a cloud-init profile (k3s) needs none.
    expect(checkClusterEndpoint({ ...healthy, clusterEndpoint: '', talosByDefault: false })).toMatchObject({ status: 'ok', title: expect.stringContaining('no role boots Talos') });
    expect(checkClusterEndpoint({ ...healthy, clusterEndpoint: '', talosByDefault: true }).status).toBe('fail');
  });

  it('Node: 24 and other even majors pass, an odd major is a warning, older than 24 fails', () => {
    expect(checkNodeVersion({ ...healthy, nodeVersion: '24.22.3' })).toMatchObject([{ id: 'node-version', status: 'ok' }]);
    expect(checkNodeVersion({ ...healthy, nodeVersion: '26.1.0' })).toMatchObject([{ status: 'ok' }]);
    expect(checkNodeVersion({ ...healthy, nodeVersion: '25.0.0' })).toMatchObject([{ status: 'warn', title: expect.stringContaining('not an LTS') }]);
    expect(checkNodeVersion({ ...healthy, nodeVersion: '20.19.0' })).toMatchObject([{ status: 'fail', fix: expect.stringContaining('Node 24') }]);
  });

  it('lists every machine held back from installing, with the reason its console shows', () => {
    const reason = 'waiting: its machine config cannot be rendered: patch failed: node configPatch: not valid YAML';
    expect(checkHeldNodes({ ...healthy, heldNodes: [{ mac: '52:54:00:aa:bb:01', hostname: 'w1', reason }] })).toEqual([
      {
        id: 'held-52:54:00:aa:bb:01',
        status: 'warn',
        title: '52:54:00:aa:bb:01 (w1) is assigned but not installing',
        detail: reason,
        fix: 'fix the cause above; the machine installs at its next boot request (it asks again every ipxe.retry_seconds)',
      },
    ]);
  });
});

describe('the fleet file', () => {
  it('nothing without fleet.path; ok when it parses; fail with the first problems at their lines when not', () => {
    expect(checkFleet({ ...healthy })).toEqual([]);
    expect(checkFleet({ ...healthy, fleet: { path: '/srv/fleet', machines: 4, problems: [] } })).toEqual([{ id: 'fleet', status: 'ok', title: 'the fleet file /srv/fleet is valid (4 entries)' }]);
    const problems = Array.from({ length: 7 }, (_, i) => `fleet.yaml:${i + 4}:5: machines[${i}]: unknown field`);
    expect(checkFleet({ ...healthy, fleet: { path: '/srv/fleet', machines: 0, problems } })).toEqual([
      {
        id: 'fleet',
        status: 'fail',
        title: 'the fleet file /srv/fleet is not valid, so it is not applied (the version last applied, if any, stays in force)',
        detail: `${problems.slice(0, 5).join('; ')}; and 2 more`,
        fix: 'fix the file at the lines named (genesis fleet diff checks it without applying anything)',
      },
    ]);
  });
});

describe('who sends large downloads', () => {
  const script = '/opt/genesis/scripts/build-native.sh';
  it('ok with sendfile, with the sender process by choice, or with none; a warning with the fix when the addon is missing', () => {
    expect(checkDownloads({ ...healthy, downloads: undefined })).toEqual([]);
    expect(checkDownloads({ ...healthy, downloads: { bulkProcess: true, sendfile: true, buildScript: script } })).toEqual([
      { id: 'downloads', status: 'ok', title: 'large downloads are sent with sendfile, from a thread of their own' },
    ]);
    expect(checkDownloads({ ...healthy, downloads: { bulkProcess: true, sendfile: false, buildScript: script } })).toMatchObject([{ status: 'ok', title: 'large downloads are sent by the sender process (http.sendfile is off)' }]);
    expect(checkDownloads({ ...healthy, downloads: { bulkProcess: false, sendfile: true, buildScript: script } })).toMatchObject([{ status: 'ok', title: 'the main process sends every download (http.bulk_process is off)' }]);
    const missing = { bulkProcess: true, sendfile: true, addonProblem: 'the sendfile addon is not built (x)', buildScript: script };
    expect(checkDownloads({ ...healthy, platform: 'linux', downloads: missing })).toEqual([
      {
        id: 'downloads',
        status: 'warn',
        title: 'large downloads go through the sender process: the sendfile addon is not built (x)',
        detail: 'it copies every byte through a second Node process, which costs memory and CPU in a boot storm',
        fix: `install a C compiler (Debian: apt-get install gcc libc6-dev), run sh ${script}, and restart Genesis`,
      },
    ]);
    expect(checkDownloads({ ...healthy, platform: 'darwin', downloads: { ...missing, addonProblem: 'sendfile is used on Linux only' } })[0]!.fix).toBe('nothing to do: sendfile is used on Linux only');
  });
});

describe('the TFTP pump check', () => {
  const script = '/opt/genesis/scripts/build-native.sh';
  it('nothing with TFTP off; ok with the pump or with it turned off; a warning with the fix when the addon is missing', () => {
    expect(checkTftpPump({ ...healthy, tftpPump: undefined })).toEqual([]);
    expect(checkTftpPump({ ...healthy, tftpPump: { nativePump: true, buildScript: script } })).toEqual([
      { id: 'tftp-pump', status: 'ok', title: 'TFTP blocks of files in memory are sent by the native pump, from a thread of its own' },
    ]);
    expect(checkTftpPump({ ...healthy, tftpPump: { nativePump: false, buildScript: script } })).toEqual([{ id: 'tftp-pump', status: 'ok', title: 'TFTP blocks are sent from JavaScript (tftp.native_pump is off)' }]);
    const missing = { nativePump: true, addonProblem: 'the TFTP pump addon is not built (x)', buildScript: script };
    expect(checkTftpPump({ ...healthy, platform: 'linux', tftpPump: missing })).toEqual([
      {
        id: 'tftp-pump',
        status: 'warn',
        title: 'TFTP blocks are sent from JavaScript: the TFTP pump addon is not built (x)',
        detail: 'a block costs several times the CPU there, so in a boot storm TFTP is slower than tftpd-hpa (docs/performance.md)',
        fix: `install a C compiler (Debian: apt-get install gcc libc6-dev), run sh ${script}, and restart Genesis`,
      },
    ]);
    expect(checkTftpPump({ ...healthy, platform: 'darwin', tftpPump: { ...missing, addonProblem: 'the TFTP pump addon is used on Linux only' } })[0]!.fix).toBe('nothing to do: the native pump is used on Linux only');
  });
});
