// `genesis doctor`: the misconfigurations that keep machines from booting, each explained with a
// fix. Pure: every check takes facts gathered elsewhere (gather.ts), so each can be tested with
// the exact situation it is about.

import type { LanProbeResult } from '../dhcp/lan-probe.ts';

export type CheckResult = { id: string; status: 'ok' | 'warn' | 'fail'; title: string; detail?: string; fix?: string };

/** `genesis`: in use by a running Genesis (its process line names bin/genesis.js): not a clash. */
export type PortFact = {
  proto: 'udp' | 'tcp';
  port: number;
  host: string;
  purpose: string;
  result: 'free' | 'in-use' | 'no-permission' | 'skipped';
  holder?: string;
  genesis?: { pid: number; healthy?: boolean; cwd?: string };
  /**
   * The holder's process is hidden from this user (only its socket's owner shows), and the `genesis
   * serve` processes that owner runs. `sameUser`: the owner is this user, its process hidden by a
   * capability it holds (node's file capability, systemd's AmbientCapabilities).
   */
  hidden?: { uid: number; user?: string; serves: number[]; sameUser?: boolean };
};

/** The setting that moves each port, and what usually holds it. */
function portFix(p: PortFact): string {
  switch (p.purpose) {
    case 'TFTP':
      return 'stop the other TFTP server (e.g. systemctl stop tftpd-hpa) or set tftp.port';
    case 'HTTP':
      return 'stop the other service or set http.port';
    case 'Talos event sink':
      return 'stop the other service or set events.sink_port (the node kernel argument talos.events.sink follows it)';
    case 'kernel-log receiver':
      return 'stop the other service or set events.kernel_log_port (the node kernel argument talos.logging.kernel follows it)';
    default:
      return 'stop the other DHCP server on this host, bind it to its interface, or set dhcp.proxy: false and configure your router instead';
  }
}

export type Facts = {
  ports: PortFact[];
  advertiseAddr: string;
  /** advertise_addr was "auto" in the configuration. */
  advertiseAuto: boolean;
  /** Non-loopback IPv4 addresses by interface (only interfaces that are up). */
  interfaces: Map<string, string[]>;
  /** /proc/version text and whether we run inside a container (/.dockerenv). */
  kernel: string;
  inContainer: boolean;
  platform: NodeJS.Platform;
  /** Talos versions in use (default and per node) × arches, and whether their files are present. */
  talosAssets: Array<{ version: string; arch: string; present: boolean }>;
  ipxeBinaries: Array<{ name: string; present: boolean }>;
  /** Where they go (assets_dir/ipxe, absolute) and this install's copy script: a fix to paste from any directory. */
  ipxeCopy: { dir: string; script: string };
  /**
   * assets/ipxe/arm64-efi/snponly.efi: present? wanted (assets.arches has arm64, or arm64 UEFI
   * machines are recorded)? and those machines.
   */
  ipxeArm64: { present: boolean; wanted: boolean; machines: string[] };
  dataDir: { path: string; writable: boolean; error?: string };
  /** Now, and the validity of the cluster's CA certificates (if the secrets exist). */
  now: Date;
  caValidity?: { notBefore: Date; notAfter: Date };
  /** Is there a Kubernetes API address for the configs (cluster.endpoint, or cluster.vip to derive it)? */
  clusterEndpoint: string;
  /** Does a role boot Talos by default (profiles.*)? Without, the endpoint is not needed. */
  talosByDefault?: boolean;
  /** This command's working directory (relative settings such as ./data resolve against it). */
  cwd?: string;
  /** GENESIS_* variables that name no setting, with the one they most likely meant. */
  unknownEnv?: Array<{ name: string; suggestion?: string }>;
  /** Why the inventory could not be read (newer or older schema, unreadable), if it could not. */
  inventoryProblem?: string;
  /** Assigned machines Genesis holds back from installing, with why (their `waiting` field). */
  heldNodes: Array<{ mac: string; hostname: string | null; reason: string }>;
  /** The Node.js running this command (process.versions.node). */
  nodeVersion?: string;
  /** fleet.path, when set: how many entries it has, or its problems (file:line:col: message). */
  fleet?: { path: string; machines: number; problems: string[] };
  /** With the proxyDHCP on: who answered one PXE DISCOVER on its interface (dhcp/lan-watch.ts). */
  lan?: LanProbeResult;
  /**
   * Who sends large downloads: the two settings, why the sendfile addon would not load (when it
   * would not), and the script that builds it (absolute, to paste from any directory).
   */
  downloads?: { bulkProcess: boolean; sendfile: boolean; addonProblem?: string; buildScript: string };
  /** With TFTP on: tftp.native_pump, why the pump's addon would not load (when it would not), the build script. */
  tftpPump?: { nativePump: boolean; addonProblem?: string; buildScript: string };
};

const ok = (id: string, title: string): CheckResult => ({ id, status: 'ok', title });

/**
 * Whom to run doctor as, for a port held by another user's Genesis. A uid with no name on this
 * host is almost always the container's user (the image's genesis is uid 10001), whose
 * environment is the container, so sudo would not help there.
 */
function hiddenHolderFix({ uid, user, sameUser }: NonNullable<PortFact['hidden']>): string {
  // This user's own serve, hidden by its capability: its serve marker would have named it, so this
  // shell reads another marker (another HOME or XDG_STATE_HOME than the serve's), or none was written.
  if (sameUser) return 'run genesis doctor with the HOME (or XDG_STATE_HOME) genesis serve runs with, where it records its pid and ports, or as root, to see who holds it';
  if (uid === 0) return 'run genesis doctor as root to see who holds it';
  if (user === undefined) {
    return `uid ${uid} has no name on this host, so it is likely a container's user: run doctor inside it (docker compose exec -T genesis genesis doctor), or as root, to see who holds it`;
  }
  return `run genesis doctor as ${user} (sudo -u ${user} genesis doctor, in its environment), or as root, to see who holds it`;
}

export function checkPorts(f: Facts): CheckResult[] {
  return f.ports
    .filter((p) => p.result !== 'skipped')
    .map((p) => {
      const what = `${p.proto.toUpperCase()} ${p.host}:${p.port} (${p.purpose})`;
      if (p.result === 'free' && !p.genesis) return ok(`port-${p.proto}-${p.port}`, `${what} is free`);
      if (p.genesis) {
        // Run beside a running Genesis (as after docker compose up -d): its own ports are no clash.
        if (p.genesis.healthy === false) {
          return { id: `port-${p.proto}-${p.port}`, status: 'warn' as const, title: `${what} is held by a running Genesis (pid ${p.genesis.pid}) that does not answer /healthz`, fix: 'look at its log (docker compose logs genesis, or journalctl); restart it if it hangs' };
        }
        return ok(`port-${p.proto}-${p.port}`, `${what} is served by the running Genesis (pid ${p.genesis.pid})`);
      }
      if (p.hidden?.serves.length) {
        // Most likely that user's Genesis, seen by someone else (doctor run from an operator's shell).
        const owner = p.hidden.user ?? `uid ${p.hidden.uid}`;
        const serves = `pid ${p.hidden.serves.join(', ')}`;
        return {
          id: `port-${p.proto}-${p.port}`,
          status: 'warn' as const,
          title: p.hidden.sameUser
            ? `${what} is held by a process of this user (${owner}) that a capability hides from this shell; this user runs genesis serve (${serves}), likely the holder`
            : `${what} is held by a process of ${owner} that this user cannot see; ${owner} runs genesis serve (${serves}), likely the holder`,
          fix: hiddenHolderFix(p.hidden),
        };
      }
      if (p.result === 'no-permission') {
        return {
          id: `port-${p.proto}-${p.port}`,
          status: 'fail' as const,
          title: `${what} needs privileges`,
          detail: `ports below 1024 need root or CAP_NET_BIND_SERVICE${p.holder ? `; it is held now by ${p.holder}` : ''}`,
          fix: `run as root, give node the capability (setcap cap_net_bind_service=+ep $(readlink -f $(command -v node))), or move the port (${p.purpose === 'HTTP' ? 'http.port' : p.purpose === 'TFTP' ? 'tftp.port' : 'dhcp.port / dhcp.pxe_port'})`,
        };
      }
      return {
        id: `port-${p.proto}-${p.port}`,
        status: 'fail' as const,
        title: `${what} is already in use${p.holder ? ` by ${p.holder}` : ''}`,
        detail:
          p.purpose === 'proxyDHCP' && p.port === 67
            ? 'a DHCP server on this host holds port 67 exclusively; Genesis can share it only with one that binds its interface (dnsmasq --bind-interfaces)'
            : undefined,
        fix: portFix(p),
      };
    });
}

/**
 * Run beside a Genesis started elsewhere (another directory, a container), doctor's other checks
 * judge this command's configuration, not that process's: say so rather than contradict it.
 */
export function checkRunningGenesisConfig(f: Facts): CheckResult[] {
  const g = f.ports.find((p) => p.genesis?.cwd !== undefined)?.genesis;
  if (!g || !f.cwd || g.cwd === f.cwd) return [];
  return [
    {
      id: 'running-genesis-elsewhere',
      status: 'warn',
      title: `a Genesis is running (pid ${g.pid}) in ${g.cwd}; the checks below judge this command's configuration (in ${f.cwd}), not its`,
      fix: `run genesis doctor where and how Genesis runs (cd ${g.cwd}, same environment), or in the container: docker compose exec genesis genesis doctor`,
    },
  ];
}

export function checkAdvertise(f: Facts): CheckResult[] {
  const all = [...f.interfaces.values()].flat();
  const out: CheckResult[] = [];
  if (/^127\./.test(f.advertiseAddr)) {
    out.push({
      id: 'advertise-local',
      status: 'fail',
      title: `advertise_addr ${f.advertiseAddr} is a loopback address: no machine can reach it`,
      fix: "set advertise_addr (GENESIS_ADVERTISE_ADDR) to this host's address on the LAN the machines boot on",
    });
  } else if (!all.includes(f.advertiseAddr)) {
    out.push({
      id: 'advertise-local',
      status: 'fail',
      title: `advertise_addr ${f.advertiseAddr} is not an address of this host`,
      detail: `machines would be told to fetch from an address nobody answers on; this host has ${all.join(', ') || 'no IPv4 address on an interface that is up'}`,
      fix: 'set advertise_addr (GENESIS_ADVERTISE_ADDR) to this host\'s address on the LAN the machines boot on',
    });
  } else {
    out.push(ok('advertise-local', `advertise_addr ${f.advertiseAddr} is on this host`));
  }
  // Container and VPN bridges are not LANs machines PXE-boot on.
  const candidates = [...f.interfaces].filter(([name]) => !/^(docker\d*|br-[0-9a-f]+|veth.*|virbr\d*|cni\d*|flannel.*|cali.*|tailscale\d*|wg\d*|zt.*|lo)$/.test(name));
  if (f.advertiseAuto && candidates.length > 1) {
    out.push({
      id: 'advertise-ambiguous',
      status: 'warn',
      title: `advertise_addr is "auto" and this host has ${candidates.length} candidate interfaces`,
      detail: `${candidates.map(([n, a]) => `${n} ${a.join(',')}`).join('; ')}; "auto" took ${f.advertiseAddr} (the default route)`,
      fix: 'set advertise_addr to the address on the LAN the machines boot on',
    });
  }
  return out;
}

export function checkDockerDesktop(f: Facts): CheckResult {
  // Docker Desktop runs containers in a VM (kernel "linuxkit", or WSL2's "microsoft" kernel):
  // "host" networking is the VM's network, not the LAN, so DHCP and TFTP never reach the machines.
  const desktopKernel = /linuxkit|microsoft-standard-WSL2/i.test(f.kernel);
  if (f.platform === 'darwin' || f.platform === 'win32' || (f.inContainer && desktopKernel)) {
    return {
      id: 'docker-desktop',
      status: 'fail',
      title: 'running under Docker Desktop or on macOS/Windows: no layer-2 access to the LAN',
      detail: 'PXE needs DHCP broadcasts and TFTP on the LAN itself; Docker Desktop puts containers in a VM behind NAT',
      fix: 'run Genesis on a Linux host (a spare mini PC, a Raspberry Pi, a Linux VM with a bridged NIC) with docker compose or npm start',
    };
  }
  return ok('docker-desktop', 'not under Docker Desktop');
}

/** A typo in a variable name is otherwise ignored without a word. */
export function checkEnvNames(f: Facts): CheckResult[] {
  return (f.unknownEnv ?? []).map((u) => ({
    id: `env-${u.name}`,
    status: 'warn' as const,
    title: `${u.name} is not a Genesis setting and is ignored`,
    fix: u.suggestion ? `did you mean ${u.suggestion}?` : 'see docs/configuration.md for the settings and their variables',
  }));
}

/** Read without migrating: a problem is reported, never fixed behind the operator's back. */
export function checkInventory(f: Facts): CheckResult[] {
  if (!f.inventoryProblem) return [];
  const older = /genesis serve upgrades it/.test(f.inventoryProblem);
  return [
    {
      id: 'inventory',
      status: older ? 'warn' : 'fail',
      title: f.inventoryProblem,
      detail: 'doctor reads the inventory only; the machine checks below ran without it',
      fix: older ? 'start genesis serve (it upgrades the file); back it up first if you want to keep the old version' : 'run the Genesis release that wrote it, or restore a backup of the data dir',
    },
  ];
}

export function checkAssets(f: Facts): CheckResult[] {
  const out: CheckResult[] = [];
  const missingBins = f.ipxeBinaries.filter((b) => !b.present).map((b) => b.name);
  out.push(
    missingBins.length
      ? {
          id: 'ipxe-binaries',
          status: 'fail',
          title: `iPXE binaries missing from assets/ipxe: ${missingBins.join(', ')}`,
          detail: 'PXE firmware loads these over TFTP (or HTTP Boot) before anything else',
          fix: `apt-get install ipxe && sh ${f.ipxeCopy.script} /usr/lib/ipxe ${f.ipxeCopy.dir}`,
        }
      : ok('ipxe-binaries', 'iPXE binaries present'),
  );
  if (!f.ipxeArm64.present && f.ipxeArm64.wanted) {
    const who = f.ipxeArm64.machines.length ? `${f.ipxeArm64.machines.join(', ')} (arm64, UEFI) cannot boot` : 'arm64 UEFI machines (AAVMF, Ampere, a Raspberry Pi 4 with UEFI firmware) cannot boot';
    out.push({
      id: 'ipxe-arm64',
      status: 'warn',
      title: `no arm64 iPXE binary (assets/ipxe/arm64-efi/snponly.efi) and no arm64 GRUB (assets/grub/grubnetaa64.efi): ${who}`,
      detail: "Debian's ipxe package has no arm64 build; the proxyDHCP does not answer arm64 UEFI firmware without one of these. U-Boot boards need neither (boot.scr.uimg)",
      fix: 'apt-get download grub-efi-arm64-signed:arm64 && dpkg-deb -x grub-efi-arm64-signed_*.deb g && genesis assets grub g/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed (PXE only; the router must name Genesis as next-server), or genesis assets ipxe <an arm64 snponly.efi>',
    });
  }
  for (const a of f.talosAssets) {
    out.push(
      a.present
        ? ok(`talos-${a.version}-${a.arch}`, `Talos ${a.version} ${a.arch} kernel and initramfs present`)
        : {
            id: `talos-${a.version}-${a.arch}`,
            status: 'warn',
            title: `Talos ${a.version} ${a.arch} kernel and initramfs are not downloaded`,
            detail: 'machines assigned to this version wait (their console says so) instead of installing',
            fix: `genesis assets fetch --talos ${a.version} --arch ${a.arch}`,
          },
    );
  }
  return out;
}

export function checkDataDir(f: Facts): CheckResult {
  return f.dataDir.writable
    ? ok('data-dir', `data dir ${f.dataDir.path} is writable`)
    : {
        id: 'data-dir',
        status: 'fail',
        title: `data dir ${f.dataDir.path} is not writable`,
        detail: f.dataDir.error,
        fix: 'point data_dir (GENESIS_DATA_DIR) at a writable directory, or fix its owner/permissions',
      };
}

/** Certificates Genesis issues and checks carry dates: a clock far off breaks TLS to the nodes. */
export function checkClock(f: Facts, release = new Date('2026-11-01T00:00:00Z')): CheckResult {
  const now = f.now;
  if (now < release) {
    return {
      id: 'clock',
      status: 'fail',
      title: `the clock says ${now.toISOString()}, before this Genesis was released`,
      detail: 'certificates issued now would not be valid on machines with a correct clock',
      fix: 'set the time (NTP: timedatectl set-ntp true)',
    };
  }
  if (f.caValidity && (now < f.caValidity.notBefore || now > f.caValidity.notAfter)) {
    return {
      id: 'clock',
      status: 'fail',
      title: `the clock (${now.toISOString()}) is outside the cluster CA's validity (${f.caValidity.notBefore.toISOString()} to ${f.caValidity.notAfter.toISOString()})`,
      fix: 'set the time (NTP); if the clock is right, the CA has expired: rotate the cluster secrets',
    };
  }
  return ok('clock', 'the clock is plausible');
}

export function checkClusterEndpoint(f: Facts): CheckResult {
  if (f.clusterEndpoint) return ok('cluster-endpoint', `the Kubernetes API endpoint is ${f.clusterEndpoint}`);
  if (f.talosByDefault === false) return ok('cluster-endpoint', 'no Kubernetes API endpoint is set; no role boots Talos (profiles.*), so none is needed');
  return {
    id: 'cluster-endpoint',
    status: 'fail',
    title: 'no Kubernetes API endpoint is set, so no machine config can be rendered: assigned machines wait instead of installing',
    fix: 'set cluster.endpoint (GENESIS_CLUSTER_ENDPOINT=https://192.0.2.10:6443, a DNS name or a VIP) or cluster.vip (GENESIS_CLUSTER_VIP) and restart Genesis',
  };
}

/** Machines Genesis keeps in their wait loop, each with the reason their console shows. */
export function checkHeldNodes(f: Facts): CheckResult[] {
  return f.heldNodes.map((n) => ({
    id: `held-${n.mac}`,
    status: 'warn',
    title: `${n.mac}${n.hostname ? ` (${n.hostname})` : ''} is assigned but not installing`,
    detail: n.reason,
    fix: 'fix the cause above; the machine installs at its next boot request (it asks again every ipxe.retry_seconds)',
  }));
}

/**
 * Node 24 or newer (bin/genesis.js refuses older ones before anything runs, so here it is the
 * record); an odd major is a short-lived current release, not an LTS line.
 */
export function checkNodeVersion(f: Facts): CheckResult[] {
  if (!f.nodeVersion) return [];
  const major = Number(f.nodeVersion.split('.')[0]);
  if (!(major >= 24)) return [{ id: 'node-version', status: 'fail', title: `Node ${f.nodeVersion} is too old: Genesis needs Node 24 or newer`, fix: 'install Node 24 LTS, or run the container (docker compose up -d)' }];
  if (major % 2 === 1) return [{ id: 'node-version', status: 'warn', title: `Node ${f.nodeVersion} is not an LTS release (odd majors are supported for six months)`, fix: 'run Genesis on an LTS Node (24, 26, ...), as the container image does' }];
  return [ok('node-version', `Node ${f.nodeVersion} (LTS line)`)];
}

/** A fleet file that does not parse is not applied: the last good version stays in force. */
/** Other PXE servers on the LAN: a second Genesis for this cluster fails, any other PXE server warns. */
export function checkLan(f: Facts): CheckResult[] {
  if (!f.lan) return [];
  if ('unavailable' in f.lan) return [{ id: 'lan', status: 'warn', title: `no check for other PXE servers on the LAN: ${f.lan.unavailable}`, fix: 'run genesis doctor as root (or with CAP_NET_BIND_SERVICE)' }];
  const others = f.lan.findings.filter((x) => x.severity !== 'ok');
  if (!others.length) {
    const heard = f.lan.findings.map((x) => x.server);
    return [ok('lan', `no other PXE server answers on the LAN${heard.length ? ` (heard: ${heard.join(', ')})` : ''}`)];
  }
  return others.map((x) => ({
    id: 'lan',
    status: x.severity === 'fail' ? 'fail' : 'warn',
    title: x.text,
    fix: x.genesis ? 'stop the other Genesis, or give it its own LAN or cluster; one Genesis per cluster (docs/beyond-one-host.md)' : 'turn off the other proxyDHCP, or its PXE answers (docs/dhcp.md)',
  }));
}

export function checkFleet(f: Facts): CheckResult[] {
  if (!f.fleet) return [];
  if (!f.fleet.problems.length) return [ok('fleet', `the fleet file ${f.fleet.path} is valid (${f.fleet.machines} entries)`)];
  const shown = f.fleet.problems.slice(0, 5).join('; ');
  return [
    {
      id: 'fleet',
      status: 'fail',
      title: `the fleet file ${f.fleet.path} is not valid, so it is not applied (the version last applied, if any, stays in force)`,
      detail: f.fleet.problems.length > 5 ? `${shown}; and ${f.fleet.problems.length - 5} more` : shown,
      fix: 'fix the file at the lines named (genesis fleet diff checks it without applying anything)',
    },
  ];
}

/**
 * Large downloads off the main thread: with sendfile (no copy through Genesis's memory), with the
 * sender process (about 150 MB more at a storm's peak, docs/performance.md), or on the main thread.
 */
export function checkDownloads(f: Facts): CheckResult[] {
  const d = f.downloads;
  if (!d) return [];
  if (!d.bulkProcess) return [ok('downloads', 'the main process sends every download (http.bulk_process is off)')];
  if (!d.sendfile) return [ok('downloads', 'large downloads are sent by the sender process (http.sendfile is off)')];
  if (!d.addonProblem) return [ok('downloads', 'large downloads are sent with sendfile, from a thread of their own')];
  return [
    {
      id: 'downloads',
      status: 'warn',
      title: `large downloads go through the sender process: ${d.addonProblem}`,
      detail: 'it copies every byte through a second Node process, which costs memory and CPU in a boot storm',
      fix: f.platform === 'linux' ? `install a C compiler (Debian: apt-get install gcc libc6-dev), run sh ${d.buildScript}, and restart Genesis` : 'nothing to do: sendfile is used on Linux only',
    },
  ];
}

/** TFTP blocks of files in memory: from the native pump's thread, or from JavaScript (docs/tftp.md). */
export function checkTftpPump(f: Facts): CheckResult[] {
  const t = f.tftpPump;
  if (!t) return [];
  if (!t.nativePump) return [ok('tftp-pump', 'TFTP blocks are sent from JavaScript (tftp.native_pump is off)')];
  if (!t.addonProblem) return [ok('tftp-pump', 'TFTP blocks of files in memory are sent by the native pump, from a thread of its own')];
  return [
    {
      id: 'tftp-pump',
      status: 'warn',
      title: `TFTP blocks are sent from JavaScript: ${t.addonProblem}`,
      detail: 'a block costs several times the CPU there, so in a boot storm TFTP is slower than tftpd-hpa (docs/performance.md)',
      fix: f.platform === 'linux' ? `install a C compiler (Debian: apt-get install gcc libc6-dev), run sh ${t.buildScript}, and restart Genesis` : 'nothing to do: the native pump is used on Linux only',
    },
  ];
}

export function runChecks(f: Facts): CheckResult[] {
  return [...checkNodeVersion(f), ...checkPorts(f), ...checkRunningGenesisConfig(f), ...checkAdvertise(f), checkDockerDesktop(f), checkClusterEndpoint(f), ...checkAssets(f), ...checkDownloads(f), ...checkTftpPump(f), ...checkInventory(f), ...checkFleet(f), ...checkLan(f), ...checkEnvNames(f), ...checkHeldNodes(f), checkDataDir(f), checkClock(f)];
}
