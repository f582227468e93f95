// Every configuration key Genesis knows: its type, default, bounds and meaning. The loader, the
// environment-variable names (GENESIS_ + the key path in upper case, dots as underscores) and the
// README's configuration reference all come from this one table.

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
  | { type: 'kernel-args' };

export type Field = {
  key: string;
  kind: FieldKind;
  default: string | number | boolean;
  doc: string;
};

const port = { type: 'int', min: 0, max: 65535 } as const;

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
  { key: 'shutdown_grace', kind: { type: 'int', min: 0, max: 600 }, default: 10, doc: 'Seconds running transfers get to finish on SIGINT/SIGTERM.' },
  { key: 'http.host', kind: { type: 'host' }, default: '0.0.0.0', doc: 'HTTP listen address.' },
  { key: 'http.port', kind: port, default: 8080, doc: 'HTTP listen port (0: any free port).' },
  { key: 'tftp.enabled', kind: { type: 'bool' }, default: true, doc: 'Run the TFTP server.' },
  { key: 'tftp.host', kind: { type: 'host' }, default: '0.0.0.0', doc: 'TFTP listen address; transfers are sent from this address too.' },
  { key: 'tftp.port', kind: port, default: 69, doc: 'TFTP listen port. Below 1024 needs root or CAP_NET_BIND_SERVICE.' },
  { key: 'tftp.max_blksize', kind: { type: 'int', min: 512, max: 65464 }, default: 1468, doc: 'Largest `blksize` granted. 1468 fits a 1500-byte MTU.' },
  { key: 'tftp.max_windowsize', kind: { type: 'int', min: 1, max: 1024 }, default: 64, doc: 'Largest RFC 7440 `windowsize` granted.' },
  { key: 'tftp.max_transfers', kind: { type: 'int', min: 1, max: 100000 }, default: 1000, doc: 'Concurrent transfers; more get a "server busy" TFTP error.' },
  { key: 'tftp.timeout', kind: { type: 'int', min: 1, max: 255 }, default: 2, doc: "Upper bound in seconds of the adaptive retransmission timer when the client sends no `timeout` option." },
  { key: 'tftp.max_retries', kind: { type: 'int', min: 1, max: 50 }, default: 8, doc: 'Consecutive retransmissions without an answer before a transfer is abandoned.' },
  { key: 'api_token', kind: { type: 'secret' }, default: '', doc: 'API bearer token. Empty: generated on first start, stored hashed in the data dir, printed once.' },
  { key: 'talos.version', kind: { type: 'talos-version' }, default: 'v1.13.9', doc: 'Talos version a node installs unless its own record names another.' },
  { key: 'talos.extra_kernel_args', kind: { type: 'kernel-args' }, default: '', doc: 'Kernel arguments added after the ones Talos requires, space-separated (e.g. `console=ttyS0,115200` for a serial console).' },
  { key: 'auto_assign.enabled', kind: { type: 'bool' }, default: false, doc: 'Give machines a role the first time they boot (off: they wait for an operator).' },
  { key: 'auto_assign.controlplanes', kind: { type: 'int', min: 1, max: 99 }, default: 3, doc: 'With auto-assign on: the first this-many machines become control planes, the rest workers.' },
  { key: 'inventory.event_retention', kind: { type: 'int', min: 10, max: 1000000 }, default: 1000, doc: 'Events kept per machine; older ones are pruned.' },
  { key: 'ipxe.retry_seconds', kind: { type: 'int', min: 1, max: 3600 }, default: 15, doc: 'How often a machine waiting for a role asks again.' },
];

export function envName(key: string): string {
  return 'GENESIS_' + key.toUpperCase().replace(/\./g, '_');
}
