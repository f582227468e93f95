import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.ts';

describe('logger', () => {
  it('writes JSON with a component per child logger and redacts secrets wherever they appear', () => {
    let out = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger({ level: 'info', format: 'json', destination });
    log.child({ component: 'api' }).info(
      { token: 'tok-123', node: { token: 'tok-456', mac: 'aa:bb:cc:dd:ee:ff' }, headers: { authorization: 'Bearer s3cret' }, machineConfig: 'version: v1alpha1' },
      'request',
    );
    const line = JSON.parse(out.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ component: 'api', msg: 'request', token: '[redacted]', node: { token: '[redacted]', mac: 'aa:bb:cc:dd:ee:ff' } });
    expect(out).not.toMatch(/tok-123|tok-456|s3cret|v1alpha1/);
  });
});
