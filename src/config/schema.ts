// Every configuration key Genesis knows: its type, default, bounds and meaning. The loader, the
// environment-variable names (GENESIS_ + the key path in upper case, dots as underscores) and the
// configuration reference (docs/configuration.md) all come from this one table.

export type FieldKind =
  | { type: 'string' }
  | { type: 'path' }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'host' }
  | { type: 'advertise' }
  | { type: 'secret' }
  | { type: 'talos-version' }
  | { type: 'kernel-args' }
  /** A string matching `re` (or empty when `optional`); `hint` says what is expected. */
  | { type: 'pattern'; re: RegExp; hint: string; optional?: boolean }
  /** Comma-separated (or a YAML list) of items each matching `re`; stored comma-joined. */
  | { type: 'list'; re: RegExp; hint: string; optional?: boolean }
  /** A file path, resolved against the working directory; empty for none. */
  | { type: 'optional-path' };

export type Field = {
  key: string;
  kind: FieldKind;
  default: string | number | boolean;
  doc: string;
};

const port = { type: 'int', min: 0, max: 65535 } as const;
const IPV4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;
const CIDR = /^([0-9.]+\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/;
const PROFILE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export const FIELDS: readonly Field[] = [
  { key: 'data_dir', kind: { type: 'path' }, default: './data', doc: 'Where the inventory database and generated secrets live.' },
  { key: 'assets_dir', kind: { type: 'path' }, default: './assets', doc: 'Root of served files: `ipxe/` binaries (TFTP and HTTP) and `talos/<version>/<arch>/` kernels.' },
  {
    key: 'advertise_addr',
    kind: { type: 'advertise' },
    default: 'auto',
    doc: 'IPv4 address machines use to reach Genesis. `auto`: the address of the interface holding the default route.',
  },
  { key: 'log_level', kind: { type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', doc: 'pino log level.' },
  { key: 'log_format', kind: { type: 'enum', values: ['auto', 'json', 'pretty'] }, default: 'auto', doc: '`auto`: human-readable on a TTY, JSON otherwise.' },
  { key: 'shutdown_grace', kind: { type: 'int', min: 0, max: 600 }, default: 10, doc: 'Seconds running transfers (TFTP, and HTTP requests and downloads) get to finish on SIGINT/SIGTERM.' },
  { key: 'http.host', kind: { type: 'host' }, default: '0.0.0.0', doc: 'HTTP listen address.' },
  { key: 'http.port', kind: port, default: 8080, doc: 'HTTP listen port (0: any free port).' },
  { key: 'http.request_timeout', kind: { type: 'int', min: 1, max: 3600 }, default: 30, doc: 'Seconds a client has to send a whole request (headers and body); slower ones are cut off (headers alone: at most 15 s).' },
  {
    key: 'http.bulk_process',
    kind: { type: 'bool' },
    default: true,
    doc: 'Send asset downloads of 4 MiB and more (Talos kernels and initramfs) off the main thread, so boot scripts and the API stay quick during a boot storm: with sendfile from a thread of its own (`http.sendfile`), or else from a second process, started on the first such download and gone after a quiet minute. Off: the main process sends everything.',
  },
  {
    key: 'http.sendfile',
    kind: { type: 'bool' },
    default: true,
    doc: 'With `http.bulk_process` on, send those downloads with the kernel\'s sendfile from a thread of a native addon that `npm ci` builds (Linux, a C compiler): no copy through Genesis\'s memory. Off, or the addon not built: the second process sends them. `genesis doctor` says which.',
  },
  { key: 'tftp.enabled', kind: { type: 'bool' }, default: true, doc: 'Run the TFTP server.' },
  { key: 'tftp.host', kind: { type: 'host' }, default: '0.0.0.0', doc: 'TFTP listen address; transfers are sent from this address too.' },
  { key: 'tftp.port', kind: port, default: 69, doc: 'TFTP listen port. Below 1024 needs root or CAP_NET_BIND_SERVICE.' },
  { key: 'tftp.max_blksize', kind: { type: 'int', min: 512, max: 65464 }, default: 1468, doc: 'Largest `blksize` granted. 1468 fits a 1500-byte MTU.' },
  { key: 'tftp.max_windowsize', kind: { type: 'int', min: 1, max: 1024 }, default: 64, doc: 'Largest RFC 7440 `windowsize` granted.' },
  { key: 'tftp.max_transfers', kind: { type: 'int', min: 1, max: 100000 }, default: 1000, doc: 'Concurrent transfers. At the cap a new request takes the slot of the oldest transfer whose client has not answered yet; when every client has answered, it gets a "server busy" TFTP error.' },
  { key: 'tftp.timeout', kind: { type: 'int', min: 1, max: 255 }, default: 2, doc: "Upper bound in seconds of the adaptive retransmission timer when the client sends no `timeout` option." },
  { key: 'tftp.max_timeout', kind: { type: 'int', min: 1, max: 255 }, default: 10, doc: 'Largest `timeout` option (seconds) granted; a larger request is left out of the OACK (RFC 2349), so no client holds a slot for minutes without answering.' },
  { key: 'tftp.max_transfers_per_client', kind: { type: 'int', min: 1, max: 10000 }, default: 16, doc: 'Concurrent transfers one client address may hold. Past it a new request takes the slot of that address\'s oldest transfer not answered yet (so requests spoofed with a machine\'s address cannot lock it out); when all have answered, it gets a "server busy" TFTP error.' },
  { key: 'tftp.max_transfer_seconds', kind: { type: 'int', min: 10, max: 86400 }, default: 600, doc: 'A transfer still running after this long is ended by the server.' },
  { key: 'tftp.max_retries', kind: { type: 'int', min: 1, max: 50 }, default: 8, doc: 'Consecutive retransmissions without an answer before a transfer is abandoned.' },
  { key: 'tftp.native_pump', kind: { type: 'bool' }, default: true, doc: "Send transfers of files held in memory (iPXE binaries, U-Boot and GRUB files, generated scripts) from a thread of a native addon that `npm ci` builds (Linux, a C compiler), where a block costs its two system calls: TFTP as quick as tftpd-hpa, and none of it on the main thread. Off, or the addon not built: `tftp.transfer_worker` decides. `genesis doctor` says which." },
  { key: 'tftp.transfer_worker', kind: { type: 'bool' }, default: true, doc: 'Without the native pump (`tftp.native_pump`): send transfers of files held in memory (iPXE binaries, U-Boot and GRUB files, generated scripts) from a worker thread on the other core once 16 transfers run on the main thread, so a storm of TFTP clients does not delay boot scripts and configs; a LAN that never has that many at once never starts it. Off: every transfer is sent from the main thread.' },
  { key: 'assets.talos_url', kind: { type: 'pattern', re: /^https?:\/\/\S+$/, hint: 'an http(s) URL' }, default: 'https://github.com/siderolabs/talos/releases/download', doc: 'Where Talos releases are downloaded from (`<url>/<version>/vmlinuz-<arch>`, `initramfs-<arch>.xz`, `sha256sum.txt`).' },
  { key: 'assets.factory_url', kind: { type: 'pattern', re: /^https?:\/\/\S+$/, hint: 'an http(s) URL' }, default: 'https://factory.talos.dev', doc: 'Image Factory, used when `talos.schematic_id` is set.' },
  { key: 'assets.ipxe_arm64_url', kind: { type: 'pattern', re: /^https?:\/\/\S+$/, hint: 'an http(s) URL' }, default: 'https://boot.ipxe.org/arm64-efi/snponly.efi', doc: 'Where `genesis assets ipxe` downloads the arm64 iPXE EFI binary from (Debian ships none); used only with `assets.ipxe_arm64_sha256`.' },
  { key: 'assets.ipxe_arm64_sha256', kind: { type: 'pattern', re: /^([0-9a-f]{64})?$/, hint: 'a sha256 in hex, or empty' }, default: '', doc: 'The pinned sha256 of that binary: a download that does not match is discarded. Empty: `genesis assets ipxe` needs `--sha256` or a local file.' },
  { key: 'assets.arches', kind: { type: 'list', re: /^(amd64|arm64)$/, hint: 'amd64 and/or arm64' }, default: 'amd64', doc: 'Architectures `genesis assets fetch` and the fetch at start download by default, comma-separated.' },
  { key: 'assets.fetch_on_start', kind: { type: 'bool' }, default: false, doc: 'At `serve` start, download missing assets of `talos.version` in the background (on in the compose file).' },
  { key: 'dhcp.proxy', kind: { type: 'bool' }, default: false, doc: 'Run the proxyDHCP: answer PXE and UEFI HTTP Boot clients with where to boot from, never with an address (for routers that cannot set next-server and a file name).' },
  { key: 'dhcp.interface', kind: { type: 'pattern', re: /^[A-Za-z0-9_.:@-]{1,15}$/, hint: 'a network interface name such as eth0', optional: true }, default: '', doc: 'Interface the proxyDHCP answers on. Empty: the one holding `advertise_addr`.' },
  { key: 'dhcp.port', kind: port, default: 67, doc: 'proxyDHCP port for DHCPDISCOVER (67; needs root or CAP_NET_BIND_SERVICE).' },
  { key: 'dhcp.pxe_port', kind: port, default: 4011, doc: 'PXE boot-server port (4011) for firmware that asks there after the offer.' },
  {
    key: 'dhcp.lan_probe_interval',
    kind: { type: 'int', min: 0, max: 86400 },
    default: 600,
    doc: 'With `dhcp.proxy`: every this many seconds (and at start), send one PXE DISCOVER on the proxyDHCP\'s interface and report any other PXE server that answers, a second Genesis above all (dashboard, `GET /api/v1/lan`, the log). 0: never. Needs port 68 (root or CAP_NET_BIND_SERVICE).',
  },
  { key: 'api_token', kind: { type: 'secret' }, default: '', doc: 'API bearer token. Empty: generated on first start, stored hashed in the data dir, printed once.' },
  {
    key: 'talos.version',
    kind: { type: 'talos-version' },
    default: 'v1.14.0',
    doc: 'Talos version a node installs unless its own record names another (a node pins its own with `talosVersion`). Genesis writes configs for Talos v1.11 to v1.14.',
  },
  { key: 'talos.extra_kernel_args', kind: { type: 'kernel-args' }, default: '', doc: 'Kernel arguments added after the ones Talos requires, space-separated (e.g. `console=ttyS0,115200` for a serial console).' },
  { key: 'talos.installer_image', kind: { type: 'pattern', re: /^[a-z0-9][a-z0-9._/:-]{0,250}[a-z0-9]$/, hint: 'a container image name without tag, e.g. ghcr.io/siderolabs/installer' }, default: 'ghcr.io/siderolabs/installer', doc: 'Installer image; the node\'s Talos version is the tag.' },
  { key: 'talos.schematic_id', kind: { type: 'pattern', re: /^[0-9a-f]{64}$/, hint: 'a 64-character Image Factory schematic id', optional: true }, default: '', doc: 'Image Factory schematic: when set, nodes install `factory.talos.dev/installer/<id>:<version>` (system extensions, kernel args baked in).' },
  { key: 'talos.install_disk', kind: { type: 'pattern', re: /^\/dev\/[A-Za-z0-9][A-Za-z0-9/_.:-]{0,200}$/, hint: 'a device path such as /dev/sda or /dev/nvme0n1' }, default: '/dev/sda', doc: 'Install disk for nodes with neither their own `installDisk` nor a `diskSelector` (as `talosctl gen config`).' },
  {
    key: 'talos.install_window',
    kind: { type: 'int', min: 60, max: 2592000 },
    default: 14400,
    doc: 'Seconds an install window stays open after it opens (assignment, reinstall, confirming a conflict): only then can a machine fetch its config. It closes early once the machine is installed.',
  },
  { key: 'talos.config_token_ttl', kind: { type: 'int', min: 60, max: 86400 }, default: 1800, doc: 'Seconds a node\'s machine-config URL stays valid after its boot script was served.' },
  { key: 'talos.config_token_fetches', kind: { type: 'int', min: 1, max: 100 }, default: 5, doc: 'Fetches one config URL allows (Talos retries a failed download).' },
  { key: 'talos.patches.cluster', kind: { type: 'optional-path' }, default: '', doc: 'YAML config patch file applied to every node\'s machine config.' },
  { key: 'talos.patches.controlplane', kind: { type: 'optional-path' }, default: '', doc: 'Patch file for control planes, applied after the cluster patch.' },
  { key: 'talos.patches.worker', kind: { type: 'optional-path' }, default: '', doc: 'Patch file for workers, applied after the cluster patch.' },
  { key: 'cluster.name', kind: { type: 'pattern', re: DNS_NAME, hint: 'a lower-case DNS name' }, default: 'homelab', doc: 'Cluster name (Talos `clusterName`, the talosconfig context).' },
  { key: 'cluster.endpoint', kind: { type: 'pattern', re: /^https:\/\/[A-Za-z0-9.:[\]-]+(:\d{1,5})?$/, hint: 'an https URL such as https://192.0.2.10:6443', optional: true }, default: '', doc: 'Kubernetes API endpoint (a VIP or DNS name for the control planes). Empty: `https://<cluster.vip>:6443`.' },
  { key: 'cluster.vip', kind: { type: 'pattern', re: IPV4, hint: 'an IPv4 address', optional: true }, default: '', doc: 'Shared control-plane address announced by Talos (Layer 2 VIP), written into control-plane configs.' },
  { key: 'cluster.kubernetes_version', kind: { type: 'pattern', re: /^\d+\.\d+\.\d+$/, hint: 'a Kubernetes version such as 1.36.3' }, default: '1.36.3', doc: 'Kubernetes version (images of kubelet and the control plane).' },
  { key: 'cluster.dns_domain', kind: { type: 'pattern', re: DNS_NAME, hint: 'a DNS domain' }, default: 'cluster.local', doc: 'Kubernetes cluster DNS domain.' },
  { key: 'cluster.pod_subnets', kind: { type: 'list', re: CIDR, hint: 'CIDRs such as 10.244.0.0/16' }, default: '10.244.0.0/16', doc: 'Pod networks, comma-separated.' },
  { key: 'cluster.service_subnets', kind: { type: 'list', re: CIDR, hint: 'CIDRs such as 10.96.0.0/12' }, default: '10.96.0.0/12', doc: 'Service networks, comma-separated.' },
  { key: 'cluster.cni', kind: { type: 'enum', values: ['flannel', 'none', 'custom'] }, default: 'flannel', doc: '`flannel` (Talos default), `none` (install your own, e.g. Cilium), or `custom` with `cluster.cni_urls`.' },
  { key: 'cluster.cni_urls', kind: { type: 'list', re: /^https:\/\/\S+$/, hint: 'https URLs of CNI manifests', optional: true }, default: '', doc: 'Manifests applied for `cluster.cni: custom`, comma-separated.' },
  { key: 'cluster.allow_scheduling_on_controlplanes', kind: { type: 'bool' }, default: false, doc: 'Let workloads run on control planes (small clusters without workers).' },
  { key: 'cluster.admin_kubeconfig_days', kind: { type: 'int', min: 1, max: 3650 }, default: 365, doc: 'Days the client certificate in `genesis kubeconfig` stays valid (Talos: `cluster.adminKubeconfig.certLifetime`, one year).' },
  { key: 'auto_assign.enabled', kind: { type: 'bool' }, default: false, doc: 'Give machines a role the first time they boot (off: they wait for an operator).' },
  {
    key: 'auto_assign.mode',
    kind: { type: 'enum', values: ['all', 'workers', 'listed'] },
    default: 'all',
    doc: 'With auto-assign on: `all` (any machine on the LAN that PXE-boots becomes a control plane while there are fewer than `auto_assign.controlplanes`, and receives the cluster CA keys), `workers` (new machines become workers only; you pick the control planes), `listed` (only the MACs in `auto_assign.macs`).',
  },
  { key: 'auto_assign.macs', kind: { type: 'list', re: /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, hint: 'MAC addresses such as 52:54:00:aa:bb:01, lower case, comma-separated', optional: true }, default: '', doc: 'For `auto_assign.mode: listed`: the machines that may be assigned automatically.' },
  { key: 'auto_assign.controlplanes', kind: { type: 'int', min: 1, max: 99 }, default: 3, doc: 'With auto-assign on: the first this-many machines become control planes, the rest workers.' },
  {
    key: 'fleet.path',
    kind: { type: 'optional-path' },
    default: '',
    doc: 'A fleet file, or a directory of them (docs/fleet.md): machines, roles and settings kept in git. Applied at start and whenever it changes; the fields it sets are read-only in the API and the dashboard. Empty: no file is watched (`genesis fleet apply` still works).',
  },
  { key: 'fleet.prune', kind: { type: 'bool' }, default: false, doc: 'Delete machines the fleet file does not list (except ones waiting unassigned). Off: they are only reported.' },
  {
    key: 'profiles.dir',
    kind: { type: 'path' },
    default: './profiles',
    doc: 'Boot profiles besides Talos (docs/cloud-init.md): one directory per profile, `<name>/profile.yaml` and its cloud-init templates. Read at start. Missing: only the built-in `talos` and `k3s`.',
  },
  { key: 'profiles.default', kind: { type: 'pattern', re: PROFILE, hint: 'a profile name such as talos or k3s' }, default: 'talos', doc: 'The profile a machine boots with when neither it nor its role names one: `talos`, `k3s` (built in) or one under `profiles.dir`.' },
  { key: 'profiles.controlplane', kind: { type: 'pattern', re: PROFILE, hint: 'a profile name such as talos or k3s', optional: true }, default: '', doc: "Control planes' profile, unless the machine names its own. Empty: `profiles.default`." },
  { key: 'profiles.worker', kind: { type: 'pattern', re: PROFILE, hint: 'a profile name such as talos or k3s', optional: true }, default: '', doc: "Workers' profile, unless the machine names its own. Empty: `profiles.default`." },
  { key: 'inventory.max_nodes', kind: { type: 'int', min: 1, max: 1000000 }, default: 1000, doc: 'Machines the inventory records at most; a new MAC beyond is refused (counted, logged once a minute). Known machines are never affected.' },
  { key: 'inventory.discovery_per_minute', kind: { type: 'int', min: 1, max: 100000 }, default: 30, doc: 'New MACs one source address may add per minute (a flood of made-up MACs is refused; known machines are never affected).' },
  { key: 'inventory.event_retention', kind: { type: 'int', min: 10, max: 1000000 }, default: 1000, doc: 'Events kept per machine; older ones are pruned.' },
  { key: 'bootstrap.enabled', kind: { type: 'bool' }, default: true, doc: 'Bootstrap etcd on one control plane once they answer on the Talos API (off: you run `talosctl bootstrap`; the lock and claim API still work).' },
  { key: 'bootstrap.talos_api_port', kind: port, default: 50000, doc: 'Port of the Talos API (apid) on the nodes.' },
  { key: 'bootstrap.poll_interval_ms', kind: { type: 'int', min: 50, max: 600000 }, default: 5000, doc: 'How often control planes are asked about etcd until the cluster is bootstrapped.' },
  { key: 'bootstrap.settle_ms', kind: { type: 'int', min: 0, max: 3600000 }, default: 15000, doc: 'After the first control plane answers, wait this long before electing, so nodes booting together (and an existing etcd) are all heard first.' },
  { key: 'bootstrap.lease_ms', kind: { type: 'int', min: 100, max: 3600000 }, default: 30000, doc: 'How long an election stands before another Genesis process may replace a holder that was never sent Bootstrap.' },
  { key: 'bootstrap.retry_after_ms', kind: { type: 'int', min: 100, max: 86400000 }, default: 300000, doc: 'After Bootstrap was sent, how long to wait for etcd members before sending it again, to the same node only.' },
  { key: 'bootstrap.rpc_timeout_ms', kind: { type: 'int', min: 100, max: 600000 }, default: 10000, doc: 'Deadline of each Talos API call.' },
  { key: 'backup.enabled', kind: { type: 'bool' }, default: true, doc: 'Take etcd snapshots from a healthy control plane on a schedule, once the cluster is bootstrapped.' },
  { key: 'backup.dir', kind: { type: 'optional-path' }, default: '', doc: 'Where etcd snapshots are stored (a NAS mount, for example). Empty: `backups/` in the data dir.' },
  { key: 'backup.interval_hours', kind: { type: 'int', min: 1, max: 720 }, default: 24, doc: 'Hours between scheduled snapshots (counted from the newest on disk, so a restart does not skip or repeat one).' },
  { key: 'backup.keep_daily', kind: { type: 'int', min: 0, max: 3650 }, default: 30, doc: 'Keep the newest snapshot of each of the last this-many days.' },
  { key: 'backup.keep_newest', kind: { type: 'int', min: 1, max: 1000 }, default: 3, doc: 'Also keep this many newest snapshots, whatever their day.' },
  { key: 'backup.timeout', kind: { type: 'int', min: 10, max: 86400 }, default: 1800, doc: 'Seconds one snapshot stream may take before it is abandoned (and discarded).' },
  { key: 'backup.secrets_passphrase_file', kind: { type: 'optional-path' }, default: '', doc: 'A file whose first line (12 characters or more) is the passphrase the secrets bundle is encrypted with beside each snapshot (`<name>.secrets.enc`, opened with `openssl enc -d`). Empty: the bundle is not copied; keep `genesis secrets export` safe yourself.' },
  { key: 'power.wol_address', kind: { type: 'pattern', re: IPV4, hint: 'an IPv4 broadcast address such as 255.255.255.255 or 192.0.2.255' }, default: '255.255.255.255', doc: 'Where Wake-on-LAN magic packets are sent (the LAN broadcast, or a directed broadcast such as 192.0.2.255); they leave from `advertise_addr`.' },
  { key: 'power.wol_port', kind: { type: 'int', min: 1, max: 65535 }, default: 9, doc: 'UDP port of the magic packets (9, discard; some NICs want 7).' },
  { key: 'power.ipmi_port', kind: { type: 'int', min: 1, max: 65535 }, default: 623, doc: 'UDP port of the BMCs (RMCP+).' },
  { key: 'power.cold_start', kind: { type: 'bool' }, default: false, doc: 'After a power cut: when Genesis starts and machines that were running are still silent after `power.cold_start_delay`, wake them, control planes first, workers once etcd has quorum. Machines with `manual` power are never woken.' },
  { key: 'power.cold_start_delay', kind: { type: 'int', min: 0, max: 3600 }, default: 120, doc: 'Seconds after start before the cold start looks for silent machines (those set to power on after AC loss come back by themselves first).' },
  { key: 'power.cold_start_quorum_timeout', kind: { type: 'int', min: 10, max: 86400 }, default: 900, doc: 'Seconds the cold start waits for etcd quorum before it gives up without waking the workers.' },
  { key: 'power.ipmi_cipher_suite', kind: { type: 'int', min: 0, max: 17 }, default: 3, doc: 'IPMI v2.0 cipher suite ipmitool asks BMCs for (3: AES-128 with HMAC-SHA1, which nearly every BMC offers; 17 for HMAC-SHA256 where the BMC has it).' },
  { key: 'events.enabled', kind: { type: 'bool' }, default: true, doc: 'Run the Talos event sink and kernel-log receiver, and point nodes at them (kernel arguments and config documents): install detection, stages and kernel logs.' },
  { key: 'events.host', kind: { type: 'host' }, default: '0.0.0.0', doc: 'Listen address of the event sink and the kernel-log receiver.' },
  { key: 'events.sink_port', kind: port, default: 8090, doc: 'Port of the Talos event sink (plaintext gRPC; 0: any free port).' },
  { key: 'events.kernel_log_port', kind: port, default: 8092, doc: 'Port of the kernel-log receiver (JSON lines over TCP; 0: any free port).' },
  { key: 'events.max_connections_per_address', kind: { type: 'int', min: 1, max: 1000 }, default: 4, doc: 'Connections one address may hold open to the event sink, and to the kernel-log receiver; more are closed at once.' },
  { key: 'events.idle_timeout', kind: { type: 'int', min: 10, max: 86400 }, default: 600, doc: 'Seconds a node connection may stay silent before Genesis closes it (Talos reconnects when it has events); one that never sends a byte is closed after 30 s.' },
  { key: 'events.kernel_log_lines', kind: { type: 'int', min: 100, max: 1000000 }, default: 5000, doc: 'Kernel-log lines kept per machine; older ones are pruned.' },
  { key: 'ipxe.retry_seconds', kind: { type: 'int', min: 1, max: 3600 }, default: 15, doc: 'How often a machine waiting for a role asks again.' },
];


export function envName(key: string): string {
  return 'GENESIS_' + key.toUpperCase().replace(/\./g, '_');
}
