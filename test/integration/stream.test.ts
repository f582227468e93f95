// GET /api/v1/stream (Server-Sent Events) read by a real HTTP client, and `genesis nodes watch`
// as a real process: changes arrive as they commit, with the node as it now is.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeScriptUrl, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of stream JSON
type Json = any;

let g: TestGenesis;
beforeAll(async () => {
  g = await startGenesis();
});
afterAll(async () => {
  await g.close();
});

/** Read SSE `event: node` payloads from the stream until `want` of them arrived. */
async function readChanges(res: Response, want: number): Promise<Json[]> {
  const out: Json[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end).split('\n');
      buf = buf.slice(end + 2);
      if (block.includes('event: node')) out.push(JSON.parse(block.find((l) => l.startsWith('data: '))!.slice(6)));
      if (out.length >= want) return out;
    }
  }
  return out;
}

describe('GET /api/v1/stream', () => {
  it('sends each committed change with the node as it now is', async () => {
    const ctl = new AbortController();
    const res = await fetch(`${g.url}/api/v1/stream`, { headers: { authorization: `Bearer ${TEST_TOKEN}` }, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reading = readChanges(res, 3);
    const mac = '52:54:00:00:10:01';
    await fetch(nodeScriptUrl(g.url, mac)); // discovered
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker', hostname: 'w-9' })).status).toBe(200);
    const changes = await reading;
    ctl.abort();
    // (An unassigned machine's waiting script is not an event: it asks every few seconds.)
    expect(changes.map((c) => c.event.type)).toEqual(['discovered', 'api-change', 'state-changed']);
    expect(changes[0]).toMatchObject({ event: { mac, type: 'discovered' }, node: { mac, role: 'unassigned' } });
    expect(changes[2]).toMatchObject({ event: { type: 'state-changed', detail: { from: 'discovered', to: 'assigned' } }, node: { role: 'worker', hostname: 'w-9', state: 'assigned' } });
  });

  it('needs the API token', async () => {
    expect((await fetch(`${g.url}/api/v1/stream`)).status).toBe(401);
  });
});

describe('genesis nodes watch', () => {
  it('prints a line per change as it happens', async () => {
    const child = spawn(process.execPath, [BIN, 'nodes', 'watch', '--url', g.url], { env: { PATH: process.env.PATH, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_ADVERTISE_ADDR: '127.0.0.1' } });
    const lines: string[] = [];
    const rl = createInterface({ input: child.stdout! });
    const got = new Promise<string>((resolve) => {
      rl.on('line', (l) => {
        lines.push(l);
        if (l.includes('api-change')) resolve(l);
      });
    });
    // The watcher is connected once Genesis has a listener on the change feed: wait for it to be added.
    const feed = g.app.inventory!.changes;
    if (feed.listenerCount('change') === 0) {
      await new Promise<void>((resolve) => {
        const added = (name: string | symbol) => {
          if (name !== 'change') return;
          feed.off('newListener', added);
          resolve();
        };
        feed.on('newListener', added);
      });
    }
    expect((await g.api('PUT', '/nodes/52:54:00:00:10:02', { role: 'controlplane', hostname: 'cp-9' })).status).toBe(201);
    const line = await got;
    child.kill();
    expect(line).toMatch(/^\S+Z {2}52:54:00:00:10:02 {2}api-change +controlplane\/assigned cp-9$/);
  });
});
