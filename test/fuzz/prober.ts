// A health prober on a thread of its own: it asks GET /healthz every `everyMs` and keeps the worst
// answer time, so what it measures is Genesis's responsiveness, not how busy the fuzzer's own
// event loop is. Started with workerData { url, everyMs, timeoutMs }; on 'stop' it posts
// { probes, worst, failures } and exits.

import { parentPort, workerData } from 'node:worker_threads';

const { url, everyMs, timeoutMs } = workerData as { url: string; everyMs: number; timeoutMs: number };
let probes = 0;
let worst = 0;
let failures = 0;
let stopping = false;

/** The first probes open the connection and warm up the client: not counted, then 'ready'. */
async function warmUp(): Promise<void> {
  for (let i = 0; i < 5; i++) await (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).arrayBuffer();
  parentPort!.postMessage('ready');
}

async function loop(): Promise<void> {
  await warmUp();
  while (!stopping) {
    const started = performance.now();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      if (res.status !== 200) failures++;
    } catch {
      failures++;
    }
    const took = performance.now() - started;
    probes++;
    worst = Math.max(worst, took);
    await new Promise((r) => setTimeout(r, Math.max(0, everyMs - took)));
  }
  parentPort!.postMessage({ probes, worst, failures });
}

parentPort!.on('message', (m) => {
  if (m === 'stop') stopping = true;
});
void loop();
