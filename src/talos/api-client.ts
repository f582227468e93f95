// A client for the Talos machine API (apid, port 50000): gRPC over mutual TLS, the server checked
// against the cluster's OS CA and Genesis presenting an os:admin certificate signed by that CA,
// exactly as talosctl does with a talosconfig. The calls bootstrap needs, the etcd snapshot, reboot and reset.

import { createPrivateKey } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { decodeDataMessage, decodeRecoverResponse, encodeDataMessage, type DataMessage } from './data-message.ts';

const PROTO_FILE = fileURLToPath(new URL('./proto/machine.proto', import.meta.url));

export type MachineServiceClient = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void>;

let loaded: { service: grpc.ServiceClientConstructor } | undefined;

/** The MachineService definition from our .proto subset, loaded once. */
export function machineServiceDefinition(): grpc.ServiceClientConstructor {
  if (!loaded) {
    const def = protoLoader.loadSync(PROTO_FILE, { keepCase: false, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { machine: { MachineService: grpc.ServiceClientConstructor } };
    loaded = { service: pkg.machine.MachineService };
  }
  return loaded.service;
}

/** PEM strings: the OS CA certificate, and the client certificate and its key. */
export type TalosApiCredentials = { ca: string; crt: string; key: string };

export class TalosApiError extends Error {
  /** gRPC status code (grpc.status), when the failure was a gRPC status. */
  readonly code: number | undefined;
  constructor(message: string, code: number | undefined) {
    super(message);
    this.code = code;
  }
}

/**
 * grpc-js's text for a failed connection ("No connection established. Last error: Error: connect
 * ECONNREFUSED 192.0.2.5:50000. Resolution note: ") as what it means: the machine's Talos API
 * could not be reached, and why.
 */
export function grpcErrorText(err: { details?: string; message: string }): string {
  const text = err.details || err.message;
  const m = /No connection established\. Last error: (?:Error: )?(.*?)\.?\s*(?:Resolution note:.*)?$/s.exec(text);
  return m ? `cannot reach the Talos API (${m[1]!.trim()})` : text;
}

export type EtcdMember = { id: string; hostname: string; isLearner: boolean };
export type ServiceState = { id: string; state: string; healthy: boolean };

type Metadata = { hostname?: string; error?: string; status?: { code?: number; message?: string } | null };

export class TalosApiClient {
  readonly address: string;
  readonly port: number;
  private readonly client: MachineServiceClient;
  private readonly timeoutMs: number;

  constructor(address: string, port: number, creds: TalosApiCredentials, opts: { timeoutMs: number }) {
    this.address = address;
    this.port = port;
    this.timeoutMs = opts.timeoutMs;
    // Node's TLS wants a standard PKCS#8 PEM; Talos labels Ed25519 keys differently.
    const key = createPrivateKey(creds.key.replaceAll('ED25519 PRIVATE KEY', 'PRIVATE KEY')).export({ type: 'pkcs8', format: 'pem' }) as string;
    // The node's certificate must name the address we dialled (apid's certificates carry the
    // node's IPs). TLS SNI cannot carry an IP (RFC 6066; Node warns), so SNI gets a fixed name
    // and the identity check is made against the address itself.
    const channelCreds = grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(key), Buffer.from(creds.crt), {
      checkServerIdentity: (_sni, cert) => checkServerIdentity(address, cert),
    });
    const Service = machineServiceDefinition();
    this.client = new Service(`${address}:${port}`, channelCreds, {
      'grpc.ssl_target_name_override': 'talos-apid',
      // Probes run every few seconds: reconnect at that pace, not grpc's default minutes.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
    }) as unknown as MachineServiceClient;
  }

  private call<T>(method: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method]!(request, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(new TalosApiError(`${method}: ${grpcErrorText(err)}`, err.code));
        else resolve(res as T);
      });
    });
  }

  /** Talos answers with one message per node; a message may carry its node's own error. */
  private static first<M extends { metadata?: Metadata | null }>(method: string, res: { messages?: M[] }): M {
    const m = res.messages?.[0];
    if (!m) throw new TalosApiError(`${method}: empty response`, undefined);
    const md = m.metadata;
    if (md?.error) throw new TalosApiError(`${method}: ${md.error}`, md.status?.code ?? undefined);
    return m;
  }

  async version(): Promise<{ tag: string; hostname: string }> {
    const m = TalosApiClient.first('Version', await this.call<{ messages: Array<{ metadata?: Metadata; version?: { tag: string } }> }>('Version', {}));
    return { tag: m.version?.tag ?? '', hostname: m.metadata?.hostname ?? '' };
  }

  /** The etcd members this node knows; Talos fails the call while its etcd is not running. */
  async etcdMembers(): Promise<EtcdMember[]> {
    const m = TalosApiClient.first(
      'EtcdMemberList',
      await this.call<{ messages: Array<{ metadata?: Metadata; members?: Array<{ id: string; hostname: string; isLearner: boolean }>; legacyMembers?: string[] }> }>(
        'EtcdMemberList',
        { queryLocal: true },
      ),
    );
    const members = (m.members ?? []).map((x) => ({ id: String(x.id), hostname: x.hostname, isLearner: Boolean(x.isLearner) }));
    // Very old Talos filled only the hostname list.
    if (!members.length) return (m.legacyMembers ?? []).map((h) => ({ id: '', hostname: h, isLearner: false }));
    return members;
  }

  async services(): Promise<ServiceState[]> {
    const m = TalosApiClient.first('ServiceList', await this.call<{ messages: Array<{ metadata?: Metadata; services?: Array<{ id: string; state: string; health?: { healthy?: boolean } }> }> }>('ServiceList', {}));
    return (m.services ?? []).map((s) => ({ id: s.id, state: s.state, healthy: Boolean(s.health?.healthy) }));
  }

  /** Bootstrap etcd; with `recoverEtcd`, from the snapshot uploaded before with etcdRecover. */
  async bootstrap(opts: { recoverEtcd?: boolean } = {}): Promise<void> {
    const res = await this.call<{ messages?: Array<{ metadata?: Metadata }> }>('Bootstrap', { recoverEtcd: Boolean(opts.recoverEtcd), recoverSkipHashCheck: false });
    // Success may come with no message at all; a message only matters if it carries an error.
    if (res.messages?.length) TalosApiClient.first('Bootstrap', res);
  }

  async reboot(): Promise<void> {
    const res = await this.call<{ messages?: Array<{ metadata?: Metadata }> }>('Reboot', { mode: 'DEFAULT' });
    if (res.messages?.length) TalosApiClient.first('Reboot', res);
  }

  /**
   * Wipe the system disk and reboot, as `talosctl reset --wipe-mode system-disk --reboot`: the
   * machine then finds no bootable disk and PXE-boots. User disks (data volumes) are left alone.
   * `graceful` leaves etcd first (a control plane); Talos refuses it when that would break quorum.
   */
  async reset(opts: { graceful: boolean }): Promise<void> {
    const res = await this.call<{ messages?: Array<{ metadata?: Metadata }> }>('Reset', { graceful: opts.graceful, reboot: true, mode: 'SYSTEM_DISK' });
    if (res.messages?.length) TalosApiClient.first('Reset', res);
  }

  /**
   * The node's etcd snapshot as a stream of chunks (MachineService/EtcdSnapshot). The deadline
   * covers the whole stream, not one call, so a large database gets `deadlineMs`, not the RPC
   * timeout. A failure anywhere (the node dying mid-stream included) ends the iteration by throwing.
   */
  async *etcdSnapshot(deadlineMs: number): AsyncGenerator<Buffer> {
    // Decoded by hand (data-message.ts): a million 1 KiB messages through the generic decoder
    // were a hundred MB of garbage.
    const stream = this.client.makeServerStreamRequest(
      '/machine.MachineService/EtcdSnapshot',
      () => Buffer.alloc(0), // EtcdSnapshotRequest has no fields
      decodeDataMessage,
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
    );
    try {
      for await (const m of stream as AsyncIterable<DataMessage>) {
        if (m.error) throw new TalosApiError(`EtcdSnapshot: ${m.error}`, m.code ?? undefined);
        if (m.bytes.length) yield m.bytes;
      }
    } catch (err) {
      if (err instanceof TalosApiError) throw err;
      const e = err as grpc.ServiceError;
      throw new TalosApiError(`EtcdSnapshot: ${grpcErrorText(e)}`, e.code);
    } finally {
      // A consumer that stops early (a full disk) must not leave the node streaming.
      stream.cancel();
    }
  }

  /**
   * Upload an etcd snapshot for a recovery (MachineService/EtcdRecover, a client stream of
   * common.Data). Talos writes it to a file and keeps it only if the stream ends cleanly, so a
   * `source` that throws (a hash that does not match) cancels the call and leaves nothing there.
   */
  async etcdRecover(source: AsyncIterable<Buffer>, deadlineMs: number): Promise<void> {
    let call: grpc.ClientWritableStream<Buffer> | undefined;
    const answered = new Promise<{ error: string | null; code: number | null }>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(
        '/machine.MachineService/EtcdRecover',
        encodeDataMessage,
        decodeRecoverResponse,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(new TalosApiError(`EtcdRecover: ${grpcErrorText(err)}`, err.code)) : resolve(res!)),
      );
    });
    // Until the answer, a failure of the call shows as a rejected `answered`; keep it observed.
    answered.catch(() => {});
    try {
      for await (const chunk of source) {
        if (!call!.write(chunk)) {
          await Promise.race([new Promise((resolve) => call!.once('drain', resolve)), answered]);
        }
      }
    } catch (err) {
      call!.cancel();
      await answered.catch(() => {});
      throw err;
    }
    call!.end();
    const res = await answered;
    if (res.error) throw new TalosApiError(`EtcdRecover: ${res.error}`, res.code ?? undefined);
  }

  close(): void {
    this.client.close();
  }
}
