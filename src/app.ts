// Genesis as one object: it owns the inventory and the servers, starts them in order and shuts
// them down in reverse.

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
import { PATCH_SLOTS, PatchFileSet } from './provision/patch-files.ts';
import { EventSinkServer } from './events/sink-server.ts';
import { KernelLogReceiver } from './kernel-log/receiver.ts';
import { BootService } from './provision/service.ts';
import { BootSteps } from './provision/boot-steps.ts';
import { Talosconfigs, talosApiCredentials } from './provision/talosconfig-issuer.ts';
import { Kubeconfigs } from './provision/kubeconfig-issuer.ts';
import { EtcdBackups } from './backup/etcd-backups.ts';
import { SnapshotStore } from './backup/snapshot-store.ts';
import { PassphraseError, readPassphraseFile } from './backup/secrets-envelope.ts';
import { TalosDialer } from './talos/dialer.ts';
import { PowerControl } from './power/power-control.ts';
import { ColdStart } from './power/cold-start.ts';
import { ConfigError, splitList, unknownEnvSettings, type Config } from './config/config.ts';
import { prepareWritableDir, tightenDataDir } from './config/data-dir.ts';
import { proxyDhcpAddress } from './config/network.ts';
import { ProxyDhcpServer } from './dhcp/server.ts';
import { LanWatch } from './dhcp/lan-watch.ts';
import { randomUUID } from 'node:crypto';
import { buildHttpServer } from './http/server.ts';
import { blankNode } from './domain/node.ts';
import { DB_FILE, InventoryDatabase } from './inventory/database.ts';
import { failpointsFrom } from './bootstrap/failpoint.ts';
import { Inventory } from './inventory/store.ts';
import { BootstrapLocks } from './bootstrap/lock-store.ts';
import { FleetReconciler } from './fleet/reconciler.ts';
import { BootstrapOrchestrator } from './bootstrap/orchestrator.ts';
import { joinToken } from './bootstrap/join-token.ts';
import { ChainProvider, DirectoryProvider, VirtualProvider } from './tftp/provider.ts';
import { TftpServer, type TransferSummary } from './tftp/server.ts';
import { UbootFiles } from './uboot/tftp-files.ts';
import { GrubFiles } from './grub/tftp-files.ts';
import { GRUB_NETBOOT_ARM64 } from './ipxe/binaries.ts';
import { fetchTalosAssets, talosAssetsPresent } from './assets/fetch.ts';
import { sourceFor } from './assets/catalog.ts';
import { runChecks } from './doctor/checks.ts';
import { Metrics } from './metrics/metrics.ts';
import { gatherFacts } from './doctor/gather.ts';
import type { Arch } from './domain/node.ts';
import { hostOfEndpoint } from './net/address.ts';
import { RenderError } from './talos/render.ts';
import { SecretsError, serializeSecrets } from './talos/secrets.ts';
import { loadOrCreateSecrets, SecretsStore, secretsPath } from './talos/secrets-store.ts';

/** Pending connections the HTTP listener queues (Node's default is 511). */
const HTTP_LISTEN_BACKLOG = 4096;

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
  inventory: Inventory | undefined;
  /** Who this Genesis is on /healthz: its cluster, and an id per process (a second Genesis on the LAN is told from this one by it). */
  readonly identity: { cluster: string; instance: string };
  /** The LAN probe for other PXE servers (with the proxyDHCP), or why it does not run. */
  private readonly lan: { watch?: LanWatch; disabledBecause: string };
  /** The inventory's file, shared with the bootstrap lock's store (and by tests that make its disk fail). */
  database: InventoryDatabase | undefined;
  apiToken: ApiToken | undefined;
  tftp: TftpServer | undefined;
  http: FastifyInstance | undefined;
  bootstrap: BootstrapOrchestrator | undefined;
  backups: EtcdBackups | undefined;
  coldStart: ColdStart | undefined;
  private talosDialer: TalosDialer | undefined;
  private patchFiles: PatchFileSet | undefined;
  dhcp: ProxyDhcpServer | undefined;
  metrics: Metrics | undefined;
  eventSink: EventSinkServer | undefined;
  kernelLog: KernelLogReceiver | undefined;
  fleet: FleetReconciler | undefined;
  /** The background asset fetch started by `assets.fetch_on_start`, for tests and shutdown. */
  assetFetch: Promise<void> | undefined;
  private httpPort = 0;

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
    this.database = InventoryDatabase.open(path.join(c.data_dir, DB_FILE));
    this.inventory = new Inventory(this.database, {
      autoAssign: { enabled: c.auto_assign.enabled, controlplanes: c.auto_assign.controlplanes, mode: c.auto_assign.mode, macs: splitList(c.auto_assign.macs) },
      eventRetention: c.inventory.event_retention,
      installWindowMs: c.talos.install_window * 1000,
    });
    // Secrets live here: the directory 0700 and every file 0600 (the database SQLite just created
    // included), also for a data dir from before. Files Genesis writes later are created 0600.
    for (const p of tightenDataDir(c.data_dir)) this.log.warn({ path: p }, 'could not restrict the permissions of a data-dir entry to its owner');
    await this.preflight(this.inventory);
    this.apiToken = loadOrCreateApiToken(c.data_dir, c.api_token);
    const secrets = await this.loadSecrets();
    const locks = new BootstrapLocks(this.database.connection);
    const inventory = this.inventory;
    this.metrics = new Metrics({
      nodeCounts: () => inventory.countByStateAndRole(),
      lockState: () => locks.get(c.cluster.name),
      connections: () => ({ eventSink: this.eventSink?.connections ?? 0, kernelLog: this.kernelLog?.connections ?? 0 }),
      backups: () => this.backups?.summary() ?? { ok: 0, failed: 0, lastSuccessAt: null, lastSizeBytes: null },
      cluster: c.cluster.name,
    });
    // Before any config is rendered: the configs and kernel arguments name the ports bound here.
    const events = c.events.enabled ? await this.startTelemetry(this.inventory, this.metrics) : undefined;
    const telemetry = events && telemetryEndpoints(c, { eventSink: events.sink.port, kernelLog: events.kernelLog.port });
    const cluster = clusterSettings(c, telemetry);
    // Read now and again when they change, not on every request (provision/patch-files.ts).
    this.patchFiles = new PatchFileSet(c.talos.patches, { watch: true });
    const renderer = new ConfigRenderer({ secrets, cluster, patchFiles: this.patchFiles, defaultTalosVersion: c.talos.version });
    this.checkConfigRendering(this.patchFiles, renderer);
    // The fleet file, before any server answers: machines boot with what it says.
    this.fleet = new FleetReconciler({
      inventory: this.inventory,
      renderer,
      running: (key) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], c),
      baseAutoAssign: { enabled: c.auto_assign.enabled, controlplanes: c.auto_assign.controlplanes, mode: c.auto_assign.mode, macs: splitList(c.auto_assign.macs) },
      path: c.fleet.path,
      prune: c.fleet.prune,
      dataDir: c.data_dir,
      log: this.log.child({ component: 'fleet' }),
    });
    this.fleet.start();
    const configs = new MachineConfigService({
      inventory: this.inventory,
      renderer,
      defaultTalosVersion: c.talos.version,
      tokenTtlMs: c.talos.config_token_ttl * 1000,
      tokenFetches: c.talos.config_token_fetches,
      metrics: this.metrics,
      log: this.log.child({ component: 'talos' }),
    });
    const steps = new BootSteps({ inventory: this.inventory, metrics: this.metrics, log: this.log.child({ component: 'boot' }) });
    const boot = new BootService({
      inventory: this.inventory,
      configs,
      baseUrl: () => this.baseUrl(),
      defaultTalosVersion: c.talos.version,
      retrySeconds: c.ipxe.retry_seconds,
      extraKernelArgs: [...telemetryKernelArgs(telemetry), ...(c.talos.extra_kernel_args ? c.talos.extra_kernel_args.split(' ') : [])],
      assetsPresent: (version, arch) => talosAssetsPresent(c.assets_dir, version, arch),
      discoveryPerMinute: c.inventory.discovery_per_minute,
      maxNodes: c.inventory.max_nodes,
      metrics: this.metrics,
      steps,
      log: this.log.child({ component: 'boot' }),
    });
    // For DHCP setups that can only hand out a file name: iPXE fetches boot.ipxe over TFTP.
    this.tftpFiles.register('boot.ipxe', () => Buffer.from(boot.entryScript()));
    this.ubootFiles = new UbootFiles(boot, c.assets_dir);
    this.grubFiles = new GrubFiles(boot, c.assets_dir);

    const credentials = talosApiCredentials(secrets);
    // One set of node connections for backups and power actions (the orchestrator keeps its own).
    this.talosDialer = new TalosDialer(credentials, { port: c.bootstrap.talos_api_port, timeoutMs: c.bootstrap.rpc_timeout_ms });
    const snapshots = new SnapshotStore(c.backup.dir || path.join(c.data_dir, 'backups'));
    this.backups = new EtcdBackups({
      inventory: this.inventory,
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

    this.bootstrap = new BootstrapOrchestrator({
      inventory: this.inventory,
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
      inventory: this.inventory,
      dialer: this.talosDialer,
      wol: { target: c.power.wol_address, port: c.power.wol_port, source: c.advertise_addr },
      ipmi: { cipherSuite: c.power.ipmi_cipher_suite, port: c.power.ipmi_port },
      log: this.log.child({ component: 'power' }),
    });
    this.coldStart = new ColdStart({
      inventory: this.inventory,
      dialer: this.talosDialer,
      power,
      bootstrapped: () => locks.get(c.cluster.name).state === 'bootstrapped',
      settings: { enabled: c.power.cold_start, delayMs: c.power.cold_start_delay * 1000, pollMs: c.bootstrap.poll_interval_ms, quorumTimeoutMs: c.power.cold_start_quorum_timeout * 1000 },
      log: this.log.child({ component: 'cold-start' }),
    });

    this.http = await buildHttpServer({
      logger: this.log.child({ component: 'http' }),
      inventory: this.inventory,
      boot,
      steps,
      identity: this.identity,
      lan: this.lan,
      configs,
      talosconfigs: new Talosconfigs(this.inventory, secrets, cluster),
      kubeconfigs: new Kubeconfigs(secrets, cluster, c.cluster.admin_kubeconfig_days),
      backups: this.backups,
      power,
      coldStart: this.coldStart,
      assetsDir: c.assets_dir,
      tokenHash: this.apiToken.hash,
      metrics: this.metrics,
      sessions: new Sessions(),
      defaultTalosVersion: c.talos.version,
      requestTimeoutMs: c.http.request_timeout * 1000,
      cluster: {
        cluster: c.cluster.name,
        orchestrator: this.bootstrap,
        locks,
        inventory: this.inventory,
        joinToken: () => joinToken(secrets.current(), c.cluster.name),
      },
      fleet: this.fleet,
    });
    // A cold boot of the whole fleet opens many connections at once; Node's default backlog (511)
    // overflowed in the 1000-machine storm. The kernel caps it at net.core.somaxconn.
    await this.http.listen({ host: c.http.host, port: c.http.port, backlog: HTTP_LISTEN_BACKLOG });
    const ha = this.http.server.address();
    const listening: Listening = {
      http: typeof ha === 'object' && ha ? { address: ha.address, port: ha.port } : { address: c.http.host, port: c.http.port },
    };
    this.httpPort = listening.http.port;

    if (c.tftp.enabled) {
      this.tftp = new TftpServer({
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
        logger: this.log.child({ component: 'tftp' }),
      });
      listening.tftp = await this.tftp.start();
      this.tftp.on('refused', (r: { reason: string }) => this.metrics!.refused('tftp', r.reason.split(':')[0]!));
      this.tftp.on('transfer-end', (t: TransferSummary) => steps.tftp(t, hostOfEndpoint(t.client)));
    }
    if (events) listening.events = events;
    if (c.dhcp.proxy) listening.dhcp = await this.startProxyDhcp(steps);
    if (c.assets.fetch_on_start) this.fetchAssetsInBackground();
    this.bootstrap.start();
    await this.backups.start();
    this.coldStart.start();
    this.log.info({ ...listening, baseUrl: this.baseUrl(), dashboard: `${this.baseUrl()}/`, apiToken: this.apiToken.source }, 'genesis ready');
    return listening;
  }

  /** The Talos event sink and the kernel-log receiver; returns where they listen. */
  private async startTelemetry(inventory: Inventory, metrics: Metrics): Promise<NonNullable<Listening['events']>> {
    const c = this.config;
    const caps = { maxPerAddress: c.events.max_connections_per_address, idleMs: c.events.idle_timeout * 1000 };
    this.eventSink = new EventSinkServer({ host: c.events.host, port: c.events.sink_port, inventory, metrics, ...caps, log: this.log.child({ component: 'events' }) });
    this.kernelLog = new KernelLogReceiver({
      host: c.events.host,
      port: c.events.kernel_log_port,
      inventory,
      keep: c.events.kernel_log_lines,
      metrics,
      ...caps,
      log: this.log.child({ component: 'kernel-log' }),
    });
    return { sink: await this.eventSink.start(), kernelLog: await this.kernelLog.start() };
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

  /**
   * Download what the default Talos version needs, without holding up the start: machines that
   * ask meanwhile are told to wait (the boot plan checks the files), not sent to a 404.
   */
  private fetchAssetsInBackground(): void {
    const c = this.config;
    const log = this.log.child({ component: 'assets' });
    const arches = splitList(c.assets.arches) as Arch[];
    const missing = arches.filter((a) => !talosAssetsPresent(c.assets_dir, c.talos.version, a));
    if (!missing.length) return;
    log.info({ version: c.talos.version, arches: missing }, 'fetching Talos assets in the background');
    this.assetFetch = fetchTalosAssets({
      assetsDir: c.assets_dir,
      version: c.talos.version,
      arches: missing,
      source: sourceFor({ schematic: c.talos.schematic_id, talosUrl: c.assets.talos_url, factoryUrl: c.assets.factory_url }),
    }).then(
      (results) => log.info({ version: c.talos.version, files: results.map((r) => `${r.arch}/${r.file}`) }, 'Talos assets ready'),
      (err: unknown) => log.error({ err: (err as Error).message }, 'could not fetch the Talos assets; machines wait until they are present (genesis assets fetch)'),
    );
  }

  private async startProxyDhcp(steps: BootSteps): Promise<NonNullable<Listening['dhcp']>> {
    const c = this.config;
    const where = proxyDhcpAddress(c.dhcp.interface, c.advertise_addr, os.networkInterfaces(), (name) => /^[\w.:-]+$/.test(name) && existsSync(`/sys/class/net/${name}`));
    if ('problem' in where) throw new ConfigError(`cannot run the proxyDHCP: ${where.problem}`);
    if (where.warning) this.log.warn({ iface: where.iface }, where.warning);
    const ipxeDir = path.join(c.assets_dir, 'ipxe');
    this.dhcp = new ProxyDhcpServer({
      address: where.address,
      dhcpPort: c.dhcp.port,
      pxePort: c.dhcp.pxe_port,
      // The boot file must name an address the machine can reach: the advertised one.
      context: () => ({ serverIp: c.advertise_addr, baseUrl: this.baseUrl(), haveBinary: (name) => existsSync(path.join(ipxeDir, name)), haveGrubArm64: () => existsSync(path.join(c.assets_dir, GRUB_NETBOOT_ARM64)) }),
      logger: this.log.child({ component: 'dhcp', iface: where.iface }),
    });
    this.dhcp.onAnswer = (a, port, from) => steps.dhcp(a, port, from);
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
      ports = await this.dhcp.start();
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
   * Patch files are read and a config for each role rendered once at start, so a broken patch or
   * setting stops Genesis with one line instead of failing every node's install later.
   */
  private checkConfigRendering(patchFiles: PatchFileSet, renderer: ConfigRenderer): void {
    const c = this.config;
    for (const slot of PATCH_SLOTS) {
      const problem = patchFiles.slot(slot)?.error;
      if (problem) throw new ConfigError(`invalid configuration: ${problem.message}`);
    }
    // The secrets copy beside each snapshot: a passphrase file that cannot be used stops the start
    // now, not the first backup a day later.
    if (c.backup.secrets_passphrase_file) {
      try {
        readPassphraseFile(c.backup.secrets_passphrase_file);
      } catch (err) {
        if (err instanceof PassphraseError) throw new ConfigError(`invalid configuration: ${err.message}`);
        throw err;
      }
    }
    if (!c.cluster.endpoint && !c.cluster.vip) {
      this.log.warn('cluster.endpoint is not set: machines are recorded and assigned, but they wait instead of installing until it is (set cluster.endpoint or cluster.vip and restart)');
      return;
    }
    const sample = blankNode('02:00:00:00:00:00');
    for (const role of ['controlplane', 'worker'] as const) {
      try {
        renderer.render(sample, { role });
      } catch (err) {
        if (err instanceof RenderError) throw new ConfigError(`invalid configuration: ${role} machine config: ${err.message}`);
        throw err;
      }
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
    this.fleet?.close();
    await Promise.all([this.coldStart?.stop(), this.backups?.stop(), this.bootstrap?.stop(), this.lan.watch?.stop(), this.dhcp?.close()]);
    await Promise.all([this.tftp?.close(graceMs), this.http?.close(), this.eventSink?.close(), this.kernelLog?.close()]);
    await this.talosDialer?.closeAll();
    this.patchFiles?.close();
    this.inventory?.close();
    this.inventory = undefined;
    this.database = undefined;
    this.log.info('genesis stopped');
  }
}
