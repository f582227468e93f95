// Genesis as one object: the wiring. It constructs the parts from the configuration and connects
// them; the decisions are theirs (start-time checks: provision/start-checks.ts; boot steps:
// provision/boot-steps.ts; the asset fetch: assets/fetch.ts). Start order:
//   1. the data and assets dirs, the inventory's file (migrated), the inventory;
//   2. preflight warnings, the API token, the cluster secrets, the bootstrap lock's store, metrics;
//   3. the event sink and kernel-log receiver (the configs name the ports they bound);
//   4. patch files, the renderer and the start checks; the fleet file (applied before anyone asks);
//   5. the boot conversation, backups, the orchestrator, power and cold start, the HTTP server;
//   6. TFTP, the proxyDHCP (and the LAN probe), the asset fetch; then the background loops.
// close() runs in reverse, in phases: what starts new work, the servers draining, the Talos
// connections, the inventory last.

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadOrCreateApiToken, type ApiToken } from './auth/api-token.ts';
import { Sessions } from './auth/sessions.ts';
import { MachineConfigService } from './provision/machine-config.ts';
import { clusterSettings, telemetryEndpoints, telemetryKernelArgs } from './provision/cluster-settings.ts';
import { ConfigRenderer } from './provision/config-renderer.ts';
import { listenAccepting, type AcceptSockets } from './http/accept-sockets.ts';
import { checkBeforeServing } from './provision/start-checks.ts';
import { PatchFileSet } from './provision/patch-files.ts';
import { EventSinkServer } from './talos-events/sink-server.ts';
import { KernelLogReceiver } from './kernel-log/receiver.ts';
import { BootService } from './provision/service.ts';
import { BootSteps } from './provision/boot-steps.ts';
import { Talosconfigs, talosApiCredentials } from './provision/talosconfig-issuer.ts';
import { Kubeconfigs } from './provision/kubeconfig-issuer.ts';
import { EtcdBackups } from './backup/etcd-backups.ts';
import { SnapshotStore } from './backup/snapshot-store.ts';
import { readPassphraseFile } from './backup/secrets-envelope.ts';
import { TalosDialer } from './talos/dialer.ts';
import { PowerControl } from './power/power-control.ts';
import { ColdStart } from './power/cold-start.ts';
import { ConfigError, splitList, unknownEnvSettings, type Config } from './config/config.ts';
import { prepareWritableDir, tightenDataDir } from './config/data-dir.ts';
import { proxyDhcpAddress } from './config/network.ts';
import { ProxyDhcpServer } from './dhcp/server.ts';
import type { ProxyAnswer } from './dhcp/proxy.ts';
import type { GenesisIdentity } from './dhcp/lan-probe.ts';
import { LanWatch } from './dhcp/lan-watch.ts';
import { randomUUID } from 'node:crypto';
import { buildHttpServer } from './http/server.ts';
import { TimeSlices } from './scheduling/time-slices.ts';
import { HttpConnections } from './http/connections.ts';
import { makeDownloadSender } from './bulk/download-sender.ts';
import type { DownloadSender } from './bulk/protocol.ts';
import { LogThrottle } from './logging/throttle.ts';
import { DB_FILE, InventoryDatabase } from './inventory/database.ts';
import { InventoryError } from './inventory/errors.ts';
import { failpointsFrom } from './bootstrap/failpoint.ts';
import { Inventory } from './inventory/store.ts';
import { BootstrapLocks } from './bootstrap/lock-store.ts';
import { FleetReconciler } from './fleet/reconciler.ts';
import { BootstrapOrchestrator } from './bootstrap/orchestrator.ts';
import { joinToken, k3sToken } from './bootstrap/join-token.ts';
import { BUILT_IN_PROFILES, loadProfiles, TALOS_PROFILE, type ProfileSet } from './cloud-init/profile.ts';
import { CloudInitService } from './provision/cloud-init.ts';
import { ChainProvider, DirectoryProvider, VirtualProvider } from './tftp/provider.ts';
import { TftpServer, type TransferSummary } from './tftp/server.ts';
import { loadTftpPumpAddon } from './tftp/native-pump.ts';
import { UbootFiles } from './uboot/tftp-files.ts';
import { GrubFiles } from './grub/tftp-files.ts';
import { GRUB_NETBOOT_ARM64 } from './ipxe/binaries.ts';
import { fetchMissingInBackground, talosAssetsPresent } from './assets/fetch.ts';
import { rememberedPresence } from './assets/presence.ts';
import { sourceFor } from './assets/catalog.ts';
import { runChecks } from './doctor/checks.ts';
import { Metrics } from './metrics/metrics.ts';
import { gatherFacts } from './doctor/gather.ts';
import type { Arch } from './domain/node.ts';
import { hostOfEndpoint } from './net/address.ts';
import { SecretsError, serializeSecrets } from './talos/secrets.ts';
import { loadOrCreateSecrets, SecretsStore, secretsPath } from './talos/secrets-store.ts';

/**
 * Sockets accepting on the HTTP port, the server's own included: up to this many connections per
 * turn of the event loop (http/accept-sockets.ts). Measured with the scripts' time slices
 * (docs/performance.md), the prober's `boot.ipxe` p95 in the 1000-machine storm: 57–184 ms with
 * 16 (nine runs), 50–138 ms with 8 (three), 224–372 ms with one (three); 16 leaves room.
 */
const HTTP_ACCEPT_SOCKETS = 16;
/** Pending connections the HTTP listener queues (Node's default is 511). */
const HTTP_LISTEN_BACKLOG = 4096;
/**
 * How long queued boot work (install scripts, configs, U-Boot's and GRUB's per-machine files) may
 * run before the event loop polls again: about a dozen requests. 5 and 10 ms measured alike
 * (docs/performance.md).
 */
const BOOT_WORK_SLICE_MS = 10;
/** How long a boot step may wait to share a commit (InventoryDatabase.defer); a crash loses at most this much of them. */
const GROUP_COMMIT_MS = 20;
/** How long the renderer holds its caches and Talos's compiled validators after its last render. */
const RENDER_IDLE_RELEASE_MS = 10 * 60_000;

/**
 * One full garbage collection once start-up is done, where Node exposes it (`--expose-gc`, which
 * `npm start` and the image pass). Loading the modules and the start check leave about 15 MB
 * behind that V8 would otherwise hold until its memory reducer's first collection, about 100 s
 * after start (docs/performance.md). The pause is tens of milliseconds, before the ready line.
 */
function collectStartupGarbage(): void {
  const gc = (globalThis as { gc?: (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void }).gc;
  gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

export type Listening = {
  http: { address: string; port: number };
  tftp?: { address: string; port: number };
  dhcp?: { address: string; port: number; pxePort: number };
  events?: { sink: { address: string; port: number }; kernelLog: { address: string; port: number } };
};


export class Genesis {
  readonly config: Config;
  readonly log: Logger;
  readonly tftpFiles = new VirtualProvider();
  private ubootFiles: UbootFiles | undefined;
  private grubFiles: GrubFiles | undefined;
  /** Who this Genesis is on /healthz: its cluster, and an id per process (a second Genesis on the LAN is told from this one by it). */
  readonly identity: GenesisIdentity;
  /** The LAN probe for other PXE servers (with the proxyDHCP), or why it does not run. */
  private readonly lan: { watch?: LanWatch; disabledBecause: string };
  private talosDialer: TalosDialer | undefined;
  private patchFiles: PatchFileSet | undefined;
  private renderer: ConfigRenderer | undefined;
  private httpPort = 0;
  // What start() builds, in the order it builds it; set once there, read-only from outside (tests
  // reach the servers through these getters).
  private _database: InventoryDatabase | undefined;
  private _inventory: Inventory | undefined;
  private _apiToken: ApiToken | undefined;
  private _metrics: Metrics | undefined;
  private _eventSink: EventSinkServer | undefined;
  private _kernelLog: KernelLogReceiver | undefined;
  private _fleet: FleetReconciler | undefined;
  private _backups: EtcdBackups | undefined;
  private _bootstrap: BootstrapOrchestrator | undefined;
  private _coldStart: ColdStart | undefined;
  private _http: FastifyInstance | undefined;
  /** The HTTP server's connections, and its close (connections.ts: why not fastify's close alone). */
  private _httpConnections: HttpConnections | undefined;
  /** The HTTP port's other accepting sockets. */
  private _acceptSockets: AcceptSockets | undefined;
  private _bulk: DownloadSender | undefined;
  private _tftp: TftpServer | undefined;
  private _dhcp: ProxyDhcpServer | undefined;
  /** The background asset fetch started by `assets.fetch_on_start`. */
  private _assetFetch: Promise<void> | undefined;

  get inventory(): Inventory | undefined {
    return this._inventory;
  }
  get database(): InventoryDatabase | undefined {
    return this._database;
  }
  get apiToken(): ApiToken | undefined {
    return this._apiToken;
  }
  get tftp(): TftpServer | undefined {
    return this._tftp;
  }
  get http(): FastifyInstance | undefined {
    return this._http;
  }
  get bootstrap(): BootstrapOrchestrator | undefined {
    return this._bootstrap;
  }
  get backups(): EtcdBackups | undefined {
    return this._backups;
  }
  get coldStart(): ColdStart | undefined {
    return this._coldStart;
  }
  get dhcp(): ProxyDhcpServer | undefined {
    return this._dhcp;
  }
  get metrics(): Metrics | undefined {
    return this._metrics;
  }
  get eventSink(): EventSinkServer | undefined {
    return this._eventSink;
  }
  get kernelLog(): KernelLogReceiver | undefined {
    return this._kernelLog;
  }
  get fleet(): FleetReconciler | undefined {
    return this._fleet;
  }
  get assetFetch(): Promise<void> | undefined {
    return this._assetFetch;
  }

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    this.identity = { cluster: config.cluster.name, instance: randomUUID() };
    this.lan = { disabledBecause: !config.dhcp.proxy ? 'the LAN probe runs with the proxyDHCP (dhcp.proxy)' : 'dhcp.lan_probe_interval is 0' };
  }

  /** Where machines reach the HTTP server: the advertised address and the port actually bound. */
  baseUrl(): string {
    return `http://${this.config.advertise_addr}:${this.httpPort || this.config.http.port}`;
  }

  /** Start everything; if any part fails, stop what already started so the process can exit. */
  async start(): Promise<Listening> {
    try {
      return await this.startServers();
    } catch (err) {
      await this.close().catch(() => {});
      throw err;
    }
  }

  private async startServers(): Promise<Listening> {
    const c = this.config;
    const dataDirProblem = prepareWritableDir(c.data_dir);
    if (dataDirProblem) throw new ConfigError(dataDirProblem);
    for (const sub of ['ipxe', 'talos']) {
      const dir = path.join(c.assets_dir, sub);
      // A read-only assets dir is fine once it holds what machines need (an image with assets baked in).
      if (!existsSync(dir)) {
        const problem = prepareWritableDir(dir, 'assets dir', 'set GENESIS_ASSETS_DIR (or assets_dir) to a writable directory');
        if (problem) throw new ConfigError(problem);
      }
    }
    this.log.info({ advertise: c.advertise_addr, dataDir: c.data_dir, assetsDir: c.assets_dir }, 'genesis starting');
    for (const u of unknownEnvSettings(process.env)) {
      this.log.warn({ variable: u.name, ...(u.suggestion ? { meant: u.suggestion } : {}) }, `${u.name} is not a Genesis setting and is ignored${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}`);
    }

    // One file for the inventory and the bootstrap lock: the lock's transitions and the nodes' share a write lock.
    // Boot steps (observations) share commits: one fsync per 20 ms of a storm instead of one each.
    const deferredErrors = new LogThrottle(this.log.child({ component: 'inventory' }));
    this._database = InventoryDatabase.open(path.join(c.data_dir, DB_FILE), {
      groupCommitMs: GROUP_COMMIT_MS,
      onDeferredError: (err) => {
        const code = err instanceof InventoryError ? String(err.code) : 'error';
        deferredErrors.note('deferred-write', code, { code, err: err instanceof Error ? err.message : String(err) }, 'boot steps could not be recorded: the inventory refused the write');
      },
      onCommitError: (err) => this.log.error({ err }, 'a change listener failed after a commit; the requests it carried were answered'),
    });
    this._inventory = new Inventory(this._database, {
      autoAssign: { enabled: c.auto_assign.enabled, controlplanes: c.auto_assign.controlplanes, mode: c.auto_assign.mode, macs: splitList(c.auto_assign.macs) },
      eventRetention: c.inventory.event_retention,
      installWindowMs: c.talos.install_window * 1000,
    });
    // Secrets live here: the directory 0700 and every file 0600 (the database SQLite just created
    // included), also for a data dir from before. Files Genesis writes later are created 0600.
    for (const p of tightenDataDir(c.data_dir)) this.log.warn({ path: p }, 'could not restrict the permissions of a data-dir entry to its owner');
    await this.preflight(this._inventory);
    this._apiToken = loadOrCreateApiToken(c.data_dir, c.api_token);
    const secrets = await this.loadSecrets();
    const database = this._database;
    const locks = new BootstrapLocks(database.connection, Date.now, (fn) => database.write(fn));
    const inventory = this._inventory;
    this._metrics = new Metrics({
      nodeCounts: () => inventory.countByStateAndRole(),
      lockState: () => locks.get(c.cluster.name),
      connections: () => ({ eventSink: this._eventSink?.connections ?? 0, kernelLog: this._kernelLog?.connections ?? 0 }),
      backups: () => this._backups?.summary() ?? { ok: 0, failed: 0, lastSuccessAt: null, lastSizeBytes: null },
      cluster: c.cluster.name,
      tftpTransfers: () => this._tftp?.activeTransfers ?? 0,
    });
    // Before any config is rendered: the configs and kernel arguments name the ports bound here.
    const events = c.events.enabled ? await this.startTelemetry(this._inventory, this._metrics) : undefined;
    const telemetry = events && telemetryEndpoints(c, { eventSink: events.sink.port, kernelLog: events.kernelLog.port });
    const cluster = clusterSettings(c, telemetry);
    // Read now and again when they change, not on every request (provision/patch-files.ts).
    this.patchFiles = new PatchFileSet(c.talos.patches, { watch: true });
    const renderer = new ConfigRenderer({ secrets, cluster, patchFiles: this.patchFiles, defaultTalosVersion: c.talos.version });
    const check = checkBeforeServing({ patchFiles: this.patchFiles, renderer, passphraseFile: c.backup.secrets_passphrase_file, endpointSet: Boolean(c.cluster.endpoint || c.cluster.vip) });
    // The check's render proved the configs render; the first machine renders its own. Nothing
    // waits on the start's render, so it holds nothing until then (docs/performance.md: idle memory).
    renderer.release();
    renderer.releaseWhenIdle(RENDER_IDLE_RELEASE_MS);
    this.renderer = renderer;
    if ('problem' in check) throw new ConfigError(check.problem);
    for (const warning of check.warnings) this.log.warn({ check: 'patches' }, warning);
    // Profiles besides Talos: profiles.dir's, read once at start, and the fleet file's, replaced
    // each time the file is applied.
    const dirProfiles = loadProfiles(c.profiles.dir);
    for (const [name, why] of dirProfiles.broken) this.log.error({ profile: name, problems: why }, 'a boot profile does not load: machines that use it wait until it is fixed and Genesis restarted');
    let profileSet: ProfileSet = dirProfiles;
    const profileNames = () => [TALOS_PROFILE, ...profileSet.profiles.keys(), ...profileSet.broken.keys()];
    // The fleet file, before any server answers: machines boot with what it says.
    this._fleet = new FleetReconciler({
      inventory: this._inventory,
      renderer,
      running: (key) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], c),
      baseAutoAssign: { enabled: c.auto_assign.enabled, controlplanes: c.auto_assign.controlplanes, mode: c.auto_assign.mode, macs: splitList(c.auto_assign.macs) },
      path: c.fleet.path,
      prune: c.fleet.prune,
      profiles: {
        builtIn: [TALOS_PROFILE, ...BUILT_IN_PROFILES],
        directory: () => [...[...dirProfiles.profiles.values()].filter((p) => p.source !== 'built-in').map((p) => p.name), ...dirProfiles.broken.keys()],
      },
      onLinuxProfiles: (fleetProfiles) => {
        profileSet = { profiles: new Map([...dirProfiles.profiles, ...fleetProfiles.map((p) => [p.name, p] as const)]), broken: dirProfiles.broken };
      },
      dataDir: c.data_dir,
      log: this.log.child({ component: 'fleet' }),
    });
    this._fleet.start();
    // A profile the settings name must exist (the fleet file's count: it was applied just now).
    for (const key of ['default', 'controlplane', 'worker'] as const) {
      const name = c.profiles[key];
      if (name && !profileNames().includes(name)) throw new ConfigError(`profiles.${key}: no profile named ${name} (known: ${profileNames().join(', ')}; see docs/cloud-init.md)`);
    }
    const configs = new MachineConfigService({
      inventory: this._inventory,
      renderer,
      defaultTalosVersion: c.talos.version,
      tokenTtlMs: c.talos.config_token_ttl * 1000,
      tokenFetches: c.talos.config_token_fetches,
      metrics: this._metrics,
      log: this.log.child({ component: 'talos' }),
    });
    const cloudInit = new CloudInitService({
      inventory: this._inventory,
      profiles: () => profileSet,
      choice: c.profiles,
      cluster: c.cluster.name,
      baseUrl: () => this.baseUrl(),
      joinToken: () => joinToken(secrets.current(), c.cluster.name),
      k3sToken: () => k3sToken(secrets.current(), c.cluster.name),
      missingAssets: (profile, arch, files) => files.filter((f) => !existsSync(path.join(c.assets_dir, profile, arch, f))),
      metrics: this._metrics,
      log: this.log.child({ component: 'cloud-init' }),
    });
    const steps = new BootSteps({ inventory: this._inventory, metrics: this._metrics, log: this.log.child({ component: 'boot' }) });
    const boot = new BootService({
      inventory: this._inventory,
      configs: { renderer, issueToken: (mac, ip) => configs.issueToken(mac, ip) },
      baseUrl: () => this.baseUrl(),
      defaultTalosVersion: c.talos.version,
      retrySeconds: c.ipxe.retry_seconds,
      extraKernelArgs: [...telemetryKernelArgs(telemetry), ...(c.talos.extra_kernel_args ? c.talos.extra_kernel_args.split(' ') : [])],
      assetsPresent: rememberedPresence((version, arch) => talosAssetsPresent(c.assets_dir, version, arch)),
      discoveryPerMinute: c.inventory.discovery_per_minute,
      maxNodes: c.inventory.max_nodes,
      metrics: this._metrics,
      steps,
      linux: cloudInit,
      log: this.log.child({ component: 'boot' }),
    });
    // For DHCP setups that can only hand out a file name: iPXE fetches boot.ipxe over TFTP.
    this.tftpFiles.register('boot.ipxe', () => Buffer.from(boot.entryScript()));
    // Every per-machine answer, over HTTP or TFTP, runs its costly part in these slices, after the
    // poll phase has answered the cheap requests that came with it (scheduling/time-slices.ts).
    const bootWork = new TimeSlices({ sliceMs: BOOT_WORK_SLICE_MS });
    this.ubootFiles = new UbootFiles(boot, c.assets_dir, bootWork);
    this.grubFiles = new GrubFiles(boot, c.assets_dir, bootWork);

    const credentials = talosApiCredentials(secrets);
    // One set of node connections for backups and power actions (the orchestrator keeps its own).
    this.talosDialer = new TalosDialer(credentials, { port: c.bootstrap.talos_api_port, timeoutMs: c.bootstrap.rpc_timeout_ms });
    const snapshots = new SnapshotStore(c.backup.dir || path.join(c.data_dir, 'backups'));
    this._backups = new EtcdBackups({
      inventory: this._inventory,
      store: snapshots,
      dialer: this.talosDialer,
      cluster: c.cluster.name,
      bootstrapped: () => locks.get(c.cluster.name).state === 'bootstrapped',
      settings: {
        enabled: c.backup.enabled,
        intervalMs: c.backup.interval_hours * 3_600_000,
        streamTimeoutMs: c.backup.timeout * 1000,
        retryMs: 15 * 60_000,
        waitMs: c.bootstrap.poll_interval_ms,
        retention: { dailyDays: c.backup.keep_daily, keepNewest: c.backup.keep_newest },
        secrets: c.backup.secrets_passphrase_file
          ? { bundle: () => serializeSecrets(secrets.current()), passphrase: () => readPassphraseFile(c.backup.secrets_passphrase_file) }
          : null,
      },
      log: this.log.child({ component: 'backup' }),
    });

    this._bootstrap = new BootstrapOrchestrator({
      inventory: this._inventory,
      locks,
      cluster: c.cluster.name,
      credentials,
      failpoints: failpointsFrom(process.env.GENESIS_FAILPOINT),
      settings: {
        enabled: c.bootstrap.enabled,
        apiPort: c.bootstrap.talos_api_port,
        pollMs: c.bootstrap.poll_interval_ms,
        settleMs: c.bootstrap.settle_ms,
        leaseMs: c.bootstrap.lease_ms,
        retryAfterMs: c.bootstrap.retry_after_ms,
        rpcTimeoutMs: c.bootstrap.rpc_timeout_ms,
        uploadTimeoutMs: c.backup.timeout * 1000,
      },
      snapshots,
      log: this.log.child({ component: 'bootstrap' }),
    });

    const power = new PowerControl({
      inventory: this._inventory,
      dialer: this.talosDialer,
      wol: { target: c.power.wol_address, port: c.power.wol_port, source: c.advertise_addr },
      ipmi: { cipherSuite: c.power.ipmi_cipher_suite, port: c.power.ipmi_port },
      log: this.log.child({ component: 'power' }),
    });
    this._coldStart = new ColdStart({
      inventory: this._inventory,
      dialer: this.talosDialer,
      power,
      bootstrapped: () => locks.get(c.cluster.name).state === 'bootstrapped',
      settings: { enabled: c.power.cold_start, delayMs: c.power.cold_start_delay * 1000, pollMs: c.bootstrap.poll_interval_ms, quorumTimeoutMs: c.power.cold_start_quorum_timeout * 1000 },
      log: this.log.child({ component: 'cold-start' }),
    });

    this._bulk = makeDownloadSender({ bulkProcess: c.http.bulk_process, sendfile: c.http.sendfile }, this.log.child({ component: 'bulk-sender' }));
    this._http = await buildHttpServer({
      logger: this.log.child({ component: 'http' }),
      inventory: this._inventory,
      boot,
      bootWork,
      steps,
      identity: this.identity,
      lan: this.lan,
      configs,
      cloudInit,
      profiles: profileNames,
      renderer,
      talosconfigs: new Talosconfigs(this._inventory, secrets, cluster),
      kubeconfigs: new Kubeconfigs(secrets, cluster, c.cluster.admin_kubeconfig_days),
      backups: this._backups,
      power,
      coldStart: this._coldStart,
      assetsDir: c.assets_dir,
      bulk: this._bulk,
      tokenHash: this._apiToken.hash,
      metrics: this._metrics,
      sessions: new Sessions(),
      defaultTalosVersion: c.talos.version,
      requestTimeoutMs: c.http.request_timeout * 1000,
      cluster: {
        cluster: c.cluster.name,
        orchestrator: this._bootstrap,
        locks,
        inventory: this._inventory,
        joinToken: () => joinToken(secrets.current(), c.cluster.name),
      },
      fleet: this._fleet,
    });
    this._httpConnections = new HttpConnections(this._http);
    // A cold boot of the whole fleet opens many connections at once; Node's default backlog (511)
    // overflowed in the 1000-machine storm. The kernel caps it at net.core.somaxconn.
    // The port is shared (SO_REUSEPORT) with more accepting sockets: libuv takes one connection
    // per socket per turn of the event loop, which left a storm's connections queued in the
    // kernel (http/accept-sockets.ts).
    const accepting = await listenAccepting(this._http, { host: c.http.host, port: c.http.port, backlog: HTTP_LISTEN_BACKLOG, sockets: HTTP_ACCEPT_SOCKETS });
    if ('extra' in accepting) this._acceptSockets = accepting.extra;
    else this.log.warn({ err: accepting.err }, `the HTTP port has one accepting socket (${accepting.alone}): a storm of machines waits longer to connect`);
    const ha = this._http.server.address();
    const listening: Listening = {
      http: typeof ha === 'object' && ha ? { address: ha.address, port: ha.port } : { address: c.http.host, port: c.http.port },
    };
    this.httpPort = listening.http.port;

    if (c.tftp.enabled) {
      this._tftp = new TftpServer({
        host: c.tftp.host,
        port: c.tftp.port,
        // Virtual (per-client) files first, then the iPXE binaries under assets/ipxe.
        // Virtual files for U-Boot boards next (boot.scr.uimg, per-MAC scripts, Talos assets),
        // then GRUB's (grub/: the image, its loop and per-MAC configs).
        provider: new ChainProvider(this.tftpFiles, ...(this.ubootFiles ? [this.ubootFiles] : []), ...(this.grubFiles ? [this.grubFiles] : []), new DirectoryProvider(path.join(c.assets_dir, 'ipxe'))),
        limits: { maxBlksize: c.tftp.max_blksize, maxWindowsize: c.tftp.max_windowsize, maxTimeoutS: c.tftp.max_timeout },
        maxTransfers: c.tftp.max_transfers,
        maxTransfersPerClient: c.tftp.max_transfers_per_client,
        maxTransferMs: c.tftp.max_transfer_seconds * 1000,
        defaultTimeoutMs: c.tftp.timeout * 1000,
        minRtoMs: 20,
        initialRtoMs: 250,
        maxRetries: c.tftp.max_retries,
        transferWorker: c.tftp.transfer_worker,
        // Without the addon the preflight (doctor's `tftp-pump` check) has said why, once.
        pump: c.tftp.native_pump ? loadTftpPumpAddon().addon : undefined,
        logger: this.log.child({ component: 'tftp' }),
      });
      listening.tftp = await this._tftp.start();
      this._tftp.on('refused', (r: { reason: string }) => this._metrics!.refused('tftp', r.reason.split(':')[0]!));
      this._tftp.on('transfer-end', (t: TransferSummary) => steps.tftp(t, hostOfEndpoint(t.client)));
    }
    if (events) listening.events = events;
    if (c.dhcp.proxy) listening.dhcp = await this.startProxyDhcp(steps);
    if (c.assets.fetch_on_start) {
      this._assetFetch = fetchMissingInBackground({
        assetsDir: c.assets_dir,
        version: c.talos.version,
        arches: splitList(c.assets.arches) as Arch[],
        source: sourceFor({ schematic: c.talos.schematic_id, talosUrl: c.assets.talos_url, factoryUrl: c.assets.factory_url }),
        log: this.log.child({ component: 'assets' }),
      });
    }
    this._bootstrap.start();
    await this._backups.start();
    this._coldStart.start();
    collectStartupGarbage();
    this.log.info({ ...listening, baseUrl: this.baseUrl(), dashboard: `${this.baseUrl()}/`, apiToken: this._apiToken.source }, 'genesis ready');
    return listening;
  }

  /** The Talos event sink and the kernel-log receiver; returns where they listen. */
  private async startTelemetry(inventory: Inventory, metrics: Metrics): Promise<NonNullable<Listening['events']>> {
    const c = this.config;
    const caps = { maxPerAddress: c.events.max_connections_per_address, idleMs: c.events.idle_timeout * 1000 };
    this._eventSink = new EventSinkServer({ host: c.events.host, port: c.events.sink_port, inventory, metrics, ...caps, log: this.log.child({ component: 'events' }) });
    this._kernelLog = new KernelLogReceiver({
      host: c.events.host,
      port: c.events.kernel_log_port,
      inventory,
      keep: c.events.kernel_log_lines,
      metrics,
      ...caps,
      log: this.log.child({ component: 'kernel-log' }),
    });
    return { sink: await this._eventSink.start(), kernelLog: await this._kernelLog.start() };
  }

  /**
   * `genesis doctor`'s checks, minus the ports (binding them is the check) and the data dir
   * (opening the inventory was): each problem is logged with its fix. Nothing here stops the start.
   */
  private async preflight(inventory: Inventory): Promise<void> {
    const facts = await gatherFacts(this.config, { advertiseAuto: false, ports: false, dataDir: false, nodes: inventory.list() });
    for (const r of runChecks(facts)) {
      if (r.status === 'ok') continue;
      this.log[r.status === 'fail' ? 'error' : 'warn']({ check: r.id, detail: r.detail, fix: r.fix }, r.title);
    }
  }

  private async startProxyDhcp(steps: BootSteps): Promise<NonNullable<Listening['dhcp']>> {
    const c = this.config;
    const where = proxyDhcpAddress(c.dhcp.interface, c.advertise_addr, os.networkInterfaces(), (name) => /^[\w.:-]+$/.test(name) && existsSync(`/sys/class/net/${name}`));
    if ('problem' in where) throw new ConfigError(`cannot run the proxyDHCP: ${where.problem}`);
    if (where.warning) this.log.warn({ iface: where.iface }, where.warning);
    const ipxeDir = path.join(c.assets_dir, 'ipxe');
    this._dhcp = new ProxyDhcpServer({
      address: where.address,
      dhcpPort: c.dhcp.port,
      pxePort: c.dhcp.pxe_port,
      // The boot file must name an address the machine can reach: the advertised one.
      context: () => ({ serverIp: c.advertise_addr, baseUrl: this.baseUrl(), haveBinary: (name) => existsSync(path.join(ipxeDir, name)), haveGrubArm64: () => existsSync(path.join(c.assets_dir, GRUB_NETBOOT_ARM64)) }),
      logger: this.log.child({ component: 'dhcp', iface: where.iface }),
    });
    this._dhcp.on('answer', (a: ProxyAnswer | 'malformed', port: 'dhcp' | 'pxe', from: string) => steps.dhcp(a, port, from));
    if (c.dhcp.lan_probe_interval > 0) {
      this.lan.watch = new LanWatch({
        address: where.address,
        self: { ...this.identity, addresses: [where.address, c.advertise_addr] },
        intervalMs: c.dhcp.lan_probe_interval * 1000,
        log: this.log.child({ component: 'lan' }),
      });
    }
    let ports;
    try {
      ports = await this._dhcp.start();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRNOTAVAIL') throw new ConfigError(`cannot run the proxyDHCP: ${where.address} is not an address of this host (set advertise_addr or dhcp.interface)`);
      throw err;
    }
    // After the proxyDHCP is up: its own answer to the probe is then heard, and known as its own.
    this.lan.watch?.start();
    return { address: where.address, port: ports.dhcp, pxePort: ports.pxe };
  }

  private async loadSecrets(): Promise<SecretsStore> {
    const dir = this.config.data_dir;
    try {
      const { bundle, created, modeFixed } = await loadOrCreateSecrets(dir);
      // Never the content: only that it exists and where.
      if (created) this.log.info({ file: secretsPath(dir) }, 'generated the cluster secrets bundle (back it up: genesis secrets export)');
      if (modeFixed) this.log.warn({ file: secretsPath(dir) }, 'the secrets bundle was readable by other users; set its mode to 0600');
      return new SecretsStore(dir, bundle);
    } catch (err) {
      if (err instanceof SecretsError) throw new ConfigError(`cannot use the cluster secrets: ${err.message}`);
      throw err;
    }
  }

  /**
   * Shut down in the reverse of start, in phases (each phase's parts in parallel, so the TFTP grace
   * period is waited once): first what starts new work (the background loops and the proxyDHCP),
   * then the servers drain (TFTP lets running transfers finish, HTTP its requests, the event
   * receivers their streams), then the Talos connections the loops used, and the inventory last,
   * when nothing can write to it any more.
   */
  async close(): Promise<void> {
    const graceMs = this.config.shutdown_grace * 1000;
    this._fleet?.close();
    await Promise.all([this._coldStart?.stop(), this._backups?.stop(), this._bootstrap?.stop(), this.lan.watch?.stop(), this._dhcp?.close()]);
    this._acceptSockets?.close();
    // Downloads the bulk sender is sending are cut off with it: a machine retries its download, and
    // waiting out a 100 MB initramfs to a slow client is not a graceful stop.
    await Promise.all([this._tftp?.close(graceMs), this._bulk?.close(), this._httpConnections?.close(graceMs), this._eventSink?.close(), this._kernelLog?.close()]);
    await this.talosDialer?.closeAll();
    this.patchFiles?.close();
    this.renderer?.close();
    this._inventory?.close();
    this._inventory = undefined;
    this._database = undefined;
    this.log.info('genesis stopped');
  }
}
