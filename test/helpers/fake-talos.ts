// A fake Talos apid: a real gRPC server over mutual TLS on a loopback address, with a server
// certificate from the cluster's OS CA (IP SAN = its address), requiring a client certificate
// from the same CA with Organization os:admin, as apid does. It implements the five
// MachineService calls Genesis makes (EtcdSnapshot streaming a database with etcd's appended
// hash), counts Bootstrap calls, and can be scripted to be slow, refuse, fail or die.

import { createHash, createPublicKey } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import { machineServiceDefinition } from '../../src/talos/api-client.ts';
import { osCA, type SecretsBundle } from '../../src/talos/secrets.ts';
import { createCertificate, generateKey, keyToPem } from '../../src/talos/x509.ts';

/** What the nth Bootstrap call does: accept, refuse for now, say etcd has data, or die after receiving it. */
export type BootstrapReply = 'ok' | 'not-yet' | 'already' | 'die';

export type FakeTalosOptions = {
  host: string;
  port: number;
  bundle: SecretsBundle;
  hostname?: string;
  /** The IP its certificate names (default: its own address). */
  certIp?: string;
  /** Replies to successive Bootstrap calls; past the end, 'ok'. */
  bootstrap?: BootstrapReply[];
  /** Milliseconds the Bootstrap handler takes before answering. */
  bootstrapDelayMs?: number;
  /** Already part of a cluster: etcd running with members (a node that kept its disk). */
  etcdMembers?: string[];
  /** Checked on every Version call: true makes the node die instead of answering. */
  dieOnVersion?: (fake: FakeTalos) => boolean;
  /** Called when a Bootstrap call arrives, before it is answered. */
  onBootstrap?: (fake: FakeTalos) => void;
  /** What EtcdSnapshot streams (etcd running only); default: a small database with its hash appended. */
  snapshot?: FakeSnapshot;
};

/**
 * An etcd snapshot as etcd's maintenance API streams it: `pages` × 4096 bytes of database, then
 * the sha256 of those bytes (unless `noHash`), sent in `chunkSize` pieces (1024, as Talos does). `dieAfterBytes`: the
 * node loses power once that much was sent. Bytes are generated as they go, so a 1 GiB snapshot
 * costs no memory.
 */
export type FakeSnapshot = { pages: number; chunkSize?: number; noHash?: boolean; dieAfterBytes?: number; corrupt?: boolean };

/** The database bytes of a fake snapshot at [offset, offset+n): a repeating pattern, cheap to make. */
export function fakeDatabaseBytes(offset: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = ((offset + i) * 31 + ((offset + i) >> 12)) & 0xff;
  return b;
}

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/** Like apid: only a client certificate with Organization os:admin (from the cluster's OS CA) may call. */
function isAdmin(call: { getAuthContext(): { sslPeerCertificate?: { subject?: unknown } } | null | undefined }): boolean {
  const subject = call.getAuthContext()?.sslPeerCertificate?.subject as { O?: string | string[] } | undefined;
  return [subject?.O ?? []].flat().includes('os:admin');
}

export class FakeTalos {
  readonly opts: FakeTalosOptions;
  /** Every Bootstrap call that reached the handler. */
  bootstrapCalls = 0;
  /** Calls that started etcd (answered ok, or died after starting it). */
  accepted = 0;
  versionCalls = 0;
  snapshotCalls = 0;
  /** The snapshot EtcdRecover stored (Talos keeps it in a file until a recovery uses it), or null. */
  uploaded: Buffer | null = null;
  /** Complete EtcdRecover uploads. */
  recoverUploads = 0;
  /** Every Bootstrap request's flags, in order. */
  bootstrapRequests: Array<{ recoverEtcd: boolean; recoverSkipHashCheck: boolean }> = [];
  /** sha256 of the snapshot etcd was restored from (a successful recover_etcd Bootstrap). */
  restoredFrom: string | null = null;
  /** Why etcd failed to start after a recover_etcd Bootstrap (no snapshot, a bad hash). */
  etcdFailure: string | null = null;
  /** Every Reboot and Reset request, as decoded (mode names as strings). */
  reboots: Array<{ mode: string }> = [];
  resets: Array<{ graceful: boolean; reboot: boolean; mode: string; systemPartitionsToWipe: unknown[]; userDisksToWipe: string[] }> = [];
  /** Calls refused because the client certificate was not os:admin of our CA. */
  refusedClients = 0;
  members: string[];
  /** The bound port (the requested one, or what port 0 resolved to); kept across restarts. */
  port: number;
  private server: grpc.Server | undefined;
  private creds: grpc.ServerCredentials | undefined;

  private constructor(opts: FakeTalosOptions) {
    this.opts = opts;
    this.members = [...(opts.etcdMembers ?? [])];
    this.port = opts.port;
  }

  static async start(opts: FakeTalosOptions): Promise<FakeTalos> {
    const fake = new FakeTalos(opts);
    await fake.listen();
    return fake;
  }

  get address(): string {
    return this.opts.host;
  }

  get alive(): boolean {
    return this.server !== undefined;
  }

  private async serverCredentials(): Promise<grpc.ServerCredentials> {
    if (this.creds) return this.creds;
    const ca = osCA(this.opts.bundle);
    const key = await generateKey('ed25519');
    const now = new Date();
    const crt = createCertificate(
      {
        subject: { organization: ['os:server'], commonName: this.opts.hostname ?? this.opts.host },
        publicKey: createPublicKey(key),
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + 86_400_000),
        isCA: false,
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['serverAuth'],
        ipAddresses: [this.opts.certIp ?? this.opts.host],
      },
      { certificate: ca.cert, key: ca.key },
    );
    const pkcs8 = keyToPem(key).replaceAll('ED25519 PRIVATE KEY', 'PRIVATE KEY');
    this.creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.cert.toString()), [{ private_key: Buffer.from(pkcs8), cert_chain: Buffer.from(crt) }], true);
    return this.creds;
  }

  /** (Re)start serving on the same address and port, keeping the counters and etcd state. */
  async listen(): Promise<void> {
    const server = new grpc.Server();
    const guard = (fn: Unary): Unary => (call, cb) => {
      if (!isAdmin(call)) {
        this.refusedClients++;
        cb({ code: grpc.status.PERMISSION_DENIED, details: 'not authorized' });
        return;
      }
      fn(call, cb);
    };
    const hostname = this.opts.hostname ?? this.opts.host;
    const metadata = { hostname };
    server.addService(machineServiceDefinition().service, {
      Version: guard((_call, cb) => {
        this.versionCalls++;
        if (this.opts.dieOnVersion?.(this)) {
          cb({ code: grpc.status.UNAVAILABLE, details: 'shutting down' });
          this.die();
          return;
        }
        cb(null, { messages: [{ metadata, version: { tag: 'v1.13.9', arch: 'amd64' } }] });
      }),
      EtcdMemberList: guard((_call, cb) => {
        if (!this.members.length) {
          cb({ code: grpc.status.UNAVAILABLE, details: 'etcd is not running' });
          return;
        }
        cb(null, { messages: [{ metadata, members: this.members.map((h, i) => ({ id: String(1000 + i), hostname: h, peerUrls: [], clientUrls: [], isLearner: false })) }] });
      }),
      ServiceList: guard((_call, cb) => {
        const etcd = this.members.length ? { id: 'etcd', state: 'Running', health: { healthy: true } } : { id: 'etcd', state: 'Preparing', health: { unknown: true } };
        cb(null, { messages: [{ metadata, services: [{ id: 'apid', state: 'Running', health: { healthy: true } }, etcd] }] });
      }),
      EtcdSnapshot: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        if (!isAdmin(call)) {
          this.refusedClients++;
          call.destroy(Object.assign(new Error('not authorized'), { code: grpc.status.PERMISSION_DENIED, details: 'not authorized' }));
          return;
        }
        this.snapshotCalls++;
        if (!this.members.length) {
          call.destroy(Object.assign(new Error('etcd is not running'), { code: grpc.status.FAILED_PRECONDITION, details: 'etcd is not running' }));
          return;
        }
        void this.streamSnapshot(call, metadata);
      },
      // Like Talos, both answer first and then go down: the API is gone until the machine is back.
      Reboot: guard((call, cb) => {
        this.reboots.push(call.request as { mode: string });
        cb(null, { messages: [{ metadata, actorId: 'fake' }] });
        this.goDown();
      }),
      Reset: guard((call, cb) => {
        const req = call.request as FakeTalos['resets'][number];
        // Talos refuses a graceful reset of the last etcd member: leaving would lose the cluster.
        if (req.graceful && this.members.length === 1 && this.members[0] === hostname) {
          cb({ code: grpc.status.FAILED_PRECONDITION, details: 'etcd member is the only member of the cluster, cannot leave gracefully' });
          return;
        }
        this.resets.push(req);
        cb(null, { messages: [{ metadata, actorId: 'fake' }] });
        this.goDown();
      }),
      // As Talos: the upload goes to a file that is kept only when the stream ends cleanly.
      EtcdRecover: (call: grpc.ServerReadableStream<{ bytes: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (!isAdmin(call)) {
          this.refusedClients++;
          cb({ code: grpc.status.PERMISSION_DENIED, details: 'not authorized' });
          return;
        }
        const chunks: Buffer[] = [];
        let failed = false;
        this.uploaded = null;
        call.on('data', (m: { bytes: Buffer }) => chunks.push(Buffer.from(m.bytes)));
        call.on('error', () => (failed = true));
        call.on('cancelled', () => (failed = true));
        call.on('end', () => {
          // grpc-go's Recv returns an error on a cancelled stream, so Talos drops that file. grpc-js
          // may report the end of a cancelled stream before its cancellation, so this fake can
          // keep one (an empty or partial upload): tests must not rely on it dropping one.
          setImmediate(() => {
            if (failed || call.cancelled) return;
            this.uploaded = Buffer.concat(chunks);
            this.recoverUploads++;
            cb(null, { messages: [{ metadata }] });
          });
        });
      },
      Bootstrap: guard((call, cb) => {
        const req = call.request as { recoverEtcd: boolean; recoverSkipHashCheck: boolean };
        this.bootstrapRequests.push({ recoverEtcd: req.recoverEtcd, recoverSkipHashCheck: req.recoverSkipHashCheck });
        const reply = this.opts.bootstrap?.[this.bootstrapCalls] ?? 'ok';
        this.bootstrapCalls++;
        this.opts.onBootstrap?.(this);
        const answer = () => {
          switch (reply) {
            case 'ok':
              if (req.recoverEtcd) this.restore(req.recoverSkipHashCheck);
              else this.startEtcd();
              cb(null, { messages: [{ metadata }] });
              return;
            case 'not-yet':
              cb({ code: grpc.status.FAILED_PRECONDITION, details: 'bootstrap is not available yet' });
              return;
            case 'already':
              cb({ code: grpc.status.ALREADY_EXISTS, details: 'etcd data directory is not empty' });
              return;
            case 'die':
              this.startEtcd();
              this.die();
              return;
          }
        };
        if (this.opts.bootstrapDelayMs) setTimeout(answer, this.opts.bootstrapDelayMs);
        else answer();
      }),
    });
    const creds = await this.serverCredentials();
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${this.opts.host}:${this.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
  }

  private async streamSnapshot(call: grpc.ServerWritableStream<unknown, unknown>, metadata: { hostname: string }): Promise<void> {
    const spec = this.opts.snapshot ?? { pages: 16 };
    // Talos's chunker (pkg/chunker/stream) sends 1 KiB messages.
    const chunk = spec.chunkSize ?? 1024;
    const dbSize = spec.pages * 4096;
    const hash = createHash('sha256');
    let sent = 0;
    let cancelled = false;
    call.on('cancelled', () => (cancelled = true));
    const send = async (bytes: Buffer) => {
      if (spec.dieAfterBytes !== undefined && sent + bytes.length > spec.dieAfterBytes) {
        const part = bytes.subarray(0, Math.max(0, spec.dieAfterBytes - sent));
        if (part.length) call.write({ metadata, bytes: part });
        // Let the partial chunk leave before the power goes.
        await new Promise((r) => setImmediate(r));
        this.die();
        throw new Error('died');
      }
      sent += bytes.length;
      if (!call.write({ metadata, bytes })) await new Promise((r) => call.once('drain', r));
    };
    try {
      for (let off = 0; off < dbSize && !cancelled; off += chunk) {
        const bytes = fakeDatabaseBytes(off, Math.min(chunk, dbSize - off));
        hash.update(bytes);
        await send(bytes);
      }
      if (cancelled) return;
      if (!spec.noHash) {
        const digest = hash.digest();
        if (spec.corrupt) digest[0]! ^= 0xff;
        await send(digest);
      }
      call.end();
    } catch {
      // The node died mid-stream: the client sees the connection drop.
    }
  }

  /**
   * etcd's start in recovery mode: restore the uploaded snapshot (checking etcd's appended sha256
   * unless told not to), then delete it. Without one, or with a bad hash, etcd fails to start, and
   * the Bootstrap call has already been answered: Talos starts etcd after answering.
   */
  private restore(skipHashCheck: boolean): void {
    const snap = this.uploaded;
    if (!snap) {
      this.etcdFailure = 'error verifying snapshot: open /var/lib/etcd.snapshot: no such file or directory';
      return;
    }
    const hashed = snap.length % 512 === 32;
    if (!skipHashCheck && (!hashed || !createHash('sha256').update(snap.subarray(0, -32)).digest().equals(snap.subarray(-32)))) {
      this.etcdFailure = 'error recovering from the snapshot: snapshot file integrity check failed';
      return;
    }
    this.restoredFrom = createHash('sha256').update(snap).digest('hex');
    this.uploaded = null;
    this.startEtcd();
  }

  private startEtcd(): void {
    this.accepted++;
    if (!this.members.includes(this.opts.hostname ?? this.opts.host)) this.members.push(this.opts.hostname ?? this.opts.host);
  }

  /** Go down as a rebooting machine does: the answer already given still arrives, then nothing does. */
  goDown(): void {
    const server = this.server;
    this.server = undefined;
    server?.tryShutdown(() => {});
  }

  /** Stop at once, as a node losing power: open calls are cut. */
  die(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  async stop(): Promise<void> {
    this.die();
  }
}

/** Find a port free on every one of `hosts` and start a fake on each (Talos uses one port, 50000, on every node). */
export async function startFakes(hosts: string[], make: (host: string, port: number) => FakeTalosOptions): Promise<{ port: number; fakes: FakeTalos[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await FakeTalos.start(make(hosts[0]!, 0)).catch(() => undefined);
    if (!first) continue;
    const port = first.port;
    const rest: FakeTalos[] = [];
    try {
      for (const h of hosts.slice(1)) rest.push(await FakeTalos.start(make(h, port)));
      return { port, fakes: [first, ...rest] };
    } catch {
      first.die();
      for (const f of rest) f.die();
    }
  }
  throw new Error('no port free on all fake Talos addresses');
}
