// The status line and headers of a response written by something other than fastify (the bulk
// sender writes it to the socket it is handed). Pure, so its framing is tested without sockets.

import { createRequire } from 'node:module';

// Required, not imported: an ES import of node:http reads every export once, and reading its
// WebSocket export loads Node's bundled undici (Node 24), a few MB resident
// for the life of the process that nothing here uses. fastify requires node:http the same way.
const { STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export type HeadFields = Record<string, string | number | readonly string[] | undefined>;

/**
 * `HTTP/1.1 <status>` and the fields, ending the head with a blank line; always `Connection:
 * close`, since the connection ends with the body. A name or value that could split the head
 * (CR, LF, or a name outside the token characters) is refused with an error, never written.
 */
export function responseHead(status: number, fields: HeadFields, now = new Date()): string {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new Error(`not an HTTP status: ${status}`);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new Error(`not a header name: ${JSON.stringify(name)}`);
    if (lower === 'connection' || lower === 'date' || lower === 'transfer-encoding') continue;
    if (seen.has(lower)) throw new Error(`header ${name} given twice`);
    seen.add(lower);
    for (const v of Array.isArray(value) ? value : [value]) {
      const text = String(v);
      if (/[\r\n\0]/.test(text)) throw new Error(`header ${name} holds a line break`);
      lines.push(`${name}: ${text}`);
    }
  }
  lines.push(`Date: ${now.toUTCString()}`, 'Connection: close');
  return lines.join('\r\n') + '\r\n\r\n';
}
