import http from 'node:http';

/**
 * GET `path` from the Genesis on 127.0.0.1:`port` over a fresh connection leaving from
 * `localAddress` (a machine's own address): its status and body, or undefined when the
 * connection broke (as it does when Genesis is killed mid-answer).
 */
export function getFrom(port: number, localAddress: string, path: string): Promise<{ status: number; body: Buffer } | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
  });
}
