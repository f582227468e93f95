// Runs a fuzz stage while the prober thread watches /healthz; the verdict is the worst answer time.

import { Worker } from 'node:worker_threads';

export type Health = { probes: number; worst: number; failures: number };

function expectMessage(got: unknown, want: string): void {
  if (got !== want) throw new Error(`the health prober said ${JSON.stringify(got)}, expected ${want}`);
}

export async function watchingHealth<T>(url: string, stage: () => Promise<T>, everyMs = 25): Promise<{ result: T; health: Health }> {
  const worker = new Worker(new URL('./prober.ts', import.meta.url), { workerData: { url, everyMs, timeoutMs: 5000 } });
  const messages: unknown[] = [];
  let wake: (() => void) | undefined;
  worker.on('message', (m) => {
    messages.push(m);
    wake?.();
  });
  const next = async (): Promise<unknown> => {
    while (!messages.length) await new Promise<void>((r) => (wake = r));
    return messages.shift();
  };
  const failed = new Promise<never>((_, reject) => worker.once('error', reject));
  // The stage starts once the probe is warm, so its first connection is not counted as a stall.
  expectMessage(await Promise.race([next(), failed]), 'ready');
  const done = Promise.race([next() as Promise<Health>, failed]);
  let result: T;
  try {
    result = await stage();
  } finally {
    worker.postMessage('stop');
  }
  const health = await done;
  await worker.terminate();
  return { result, health };
}
