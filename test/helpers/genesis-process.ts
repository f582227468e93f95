// Run `genesis serve` as a real child process and follow its JSON log.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SERVE_NODE_FLAGS } from '../../bench/peers.ts';

export const BIN = path.resolve(import.meta.dirname, '../../bin/genesis.js');

export type LogLine = Record<string, unknown> & { msg?: string };

export class GenesisProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  private readonly waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  /**
   * `prefix`: a command to run it under, e.g. ['ip', 'netns', 'exec', 'ns'] for a test namespace.
   * Node runs with `npm start`'s flags (packaging.test.ts keeps them equal), so the tests run the
   * process users run, start-up's collection (`--expose-gc`) included. `node`: another copy of
   * this Node (one another user can run).
   */
  constructor(args: string[], env: NodeJS.ProcessEnv, cwd?: string, prefix: string[] = [], node = process.execPath) {
    const argv = [...prefix, node, ...SERVE_NODE_FLAGS, BIN, ...args];
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      env: { PATH: process.env.PATH, GENESIS_LOG_FORMAT: 'json', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, unparsed: true };
      }
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        if (w.match(line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** The first log line (past or future) that matches; rejects if the process exits first. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      this.child.once('exit', (code) => reject(new Error(`genesis exited (${code}) before the expected log line; stderr: ${this.stderr}`)));
    });
  }

  async ready(): Promise<{ http: { port: number }; tftp?: { port: number } }> {
    return (await this.waitFor((l) => l.msg === 'genesis ready')) as unknown as { http: { port: number }; tftp?: { port: number } };
  }

  async exit(): Promise<number | null> {
    // Killed by a signal: exitCode stays null, signalCode says which.
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const [code] = (await once(this.child, 'exit')) as [number | null];
    return code;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }
}
