import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers and real client processes; give them room on a 2-core CI box.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // `genesis serve` records its data dir under the user's state directory for the CLI
    // (src/config/serve-marker.ts): tests keep theirs to this run, never the machine's own.
    env: { XDG_STATE_HOME: path.join(tmpdir(), `genesis-test-state-${process.pid}`) },
  },
});
