// Start the real TFTP server in-process on a loopback port, over a temporary directory.

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ChainProvider, DirectoryProvider, VirtualProvider } from '../../src/tftp/provider.ts';
import { TftpServer, type TftpServerOptions, type TransferSummary } from '../../src/tftp/server.ts';
import { pumpAddon } from './native-transfer.ts';

export type TestTftp = {
  server: TftpServer;
  port: number;
  root: string;
  virtual: VirtualProvider;
  /** Resolves with the next `n` transfer summaries (in completion order). */
  transfers(n: number): Promise<TransferSummary[]>;
  close(): Promise<void>;
};

export async function startTftp(overrides: Partial<TftpServerOptions> = {}): Promise<TestTftp> {
  const root = mkdtempSync(path.join(tmpdir(), 'genesis-tftp-'));
  const virtual = new VirtualProvider();
  const server = new TftpServer({
    host: '127.0.0.1',
    port: 0,
    provider: new ChainProvider(virtual, new DirectoryProvider(root)),
    limits: { maxBlksize: 1468, maxWindowsize: 64 },
    maxTransfers: 1000,
    // The clients here all come from 127.0.0.1 (200 at once in one test); the per-client cap has its own test.
    maxTransfersPerClient: 1000,
    defaultTimeoutMs: 2000,
    minRtoMs: 20,
    initialRtoMs: 250,
    maxRetries: 8,
    // What Genesis runs with: the native pump sending every file in memory (CI builds it: without
    // it this throws), the worker on for when it is off (tftp-worker.test.ts turns the pump off).
    pump: pumpAddon(),
    transferWorker: true,
    logger: pino({ level: 'silent' }),
    ...overrides,
  });
  const summaries: TransferSummary[] = [];
  server.on('transfer-end', (s: TransferSummary) => summaries.push(s));
  const { port } = await server.start();
  return {
    server,
    port,
    root,
    virtual,
    async transfers(n) {
      while (summaries.length < n) await once(server, 'transfer-end');
      return summaries.splice(0, n);
    },
    async close() {
      await server.close(0);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
