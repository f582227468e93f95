import { describe, expect, it } from 'vitest';
import { responseHead } from '../../src/http/response-head.ts';

const NOW = new Date('2026-12-02T10:00:00Z');

describe('responseHead', () => {
  it('frames a status line, the fields, Date and Connection: close, and a blank line', () => {
    const head = responseHead(206, { 'Content-Length': 10, 'Content-Range': 'bytes 0-9/100', ETag: 'W/"64-1"' }, NOW);
    expect(head).toBe(
      'HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\nETag: W/"64-1"\r\n' +
        'Date: Wed, 02 Dec 2026 10:00:00 GMT\r\nConnection: close\r\n\r\n',
    );
  });

  it('drops a Connection, Date or Transfer-Encoding it was given (the body is framed by length and close)', () => {
    const head = responseHead(200, { connection: 'keep-alive', date: 'yesterday', 'transfer-encoding': 'chunked', 'Content-Length': 1 }, NOW);
    expect(head).not.toMatch(/keep-alive|yesterday|chunked/);
    expect(head.match(/\r\n/g)).toHaveLength(5);
  });

  it('skips undefined fields and repeats a field given as a list', () => {
    expect(responseHead(200, { Vary: ['a', 'b'], Skipped: undefined }, NOW)).toContain('Vary: a\r\nVary: b\r\n');
  });

  it('refuses what could split the head or frame it twice, rather than write it', () => {
    expect(() => responseHead(200, { 'X-A': 'one\r\nSet-Cookie: x=1' })).toThrow(/line break/);
    expect(() => responseHead(200, { 'X-A': 'nul\0' })).toThrow(/line break/);
    expect(() => responseHead(200, { 'Bad Name': 'x' })).toThrow(/header name/);
    expect(() => responseHead(200, { 'Content-Length': 1, 'content-length': 2 })).toThrow(/twice/);
    expect(() => responseHead(99, {})).toThrow(/status/);
    expect(() => responseHead(200.5, {})).toThrow(/status/);
  });
});
