// Logging: pino, JSON for machines, pretty for a person at a terminal. Secrets are redacted by key
// wherever they appear in a logged object, as a safety net behind "never log them" in the first place.

import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

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
  return pino(base, opts.destination ?? pino.destination({ dest: 1, sync: false }));
}
