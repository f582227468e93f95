import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers and real client processes; give them room on a 2-core CI box.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits for a condition (the dashboard's stream connected, a row drawn); 1 s, the
    // default, is a speed limit on a loaded 2-core box (CI once failed a dashboard test on it). A
    // bound that only turns a hang into a failure, as test/helpers/wait.ts's.
    expect: { poll: { timeout: 15_000 } },
    pool: 'forks',
    // `genesis serve` records its data dir under the user's state directory for the CLI
    // (src/config/serve-marker.ts): tests keep theirs to this run, never the machine's own.
    env: { XDG_STATE_HOME: path.join(tmpdir(), `genesis-test-state-${process.pid}`) },
  },
});
