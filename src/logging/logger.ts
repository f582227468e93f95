// Logging: pino, JSON for machines, pretty for a person at a terminal. Secrets are redacted by key
// wherever they appear in a logged object, as a safety net behind "never log them" in the first place.

import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { LogSink, targetForDescriptor } from './log-sink.ts';

/** pino-pretty and its 30 modules, loaded only for a person at a terminal: a service logging JSON never needs them. */
const loadPretty = (): typeof import('pino-pretty') => createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');

export const REDACT_PATHS = [
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'key',
  '*.key',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'machineConfig',
  '*.machineConfig',
  'secrets',
  '*.secrets',
];

export type LogOptions = {
  level: string;
  format: 'auto' | 'json' | 'pretty';
  /** Where JSON goes; defaults to stdout. Tests pass a stream to capture output. */
  destination?: pino.DestinationStream;
};

export function createLogger(opts: LogOptions): Logger {
  const base: pino.LoggerOptions = {
    level: opts.level,
    base: { service: 'genesis' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && !opts.destination && process.stdout.isTTY);
  if (usePretty) {
    return pino(base, loadPretty()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }));
  }
  if (opts.destination) return pino(base, opts.destination);
  // Not pino.destination: log-sink.ts says why.
  return pino(base, new LogSink({ target: targetForDescriptor(1) }));
}

/**
 * Before process.exit: the queued lines written, waiting at most `withinMs` for a log reader that
 * has stalled. Whatever is left then is lost.
 */
export function flushLog(log: Logger, withinMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, withinMs);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
