// The configuration Genesis runs with: genesis.yaml and the environment, then the fleet file's
// cluster.* and talos.* on top (they win), and the fleet's patches. `serve` starts with it;
// `doctor` judges it and `config render` renders with it, so what is set only in the fleet file
// counts there too.

import { ConfigError, loadConfig, type Config, type LoadOptions } from '../config/config.ts';
import { FleetError } from '../fleet/parse.ts';
import { fleetAtStart, type FleetAtStart } from '../fleet/reconciler.ts';

/**
 * `broken: 'throw'` (serve): a fleet file that cannot be read or parsed, with no last good version
 * to fall back on, is a ConfigError with its problems. `'ignore'` (doctor): the configuration
 * without it (the doctor's fleet check reports the problems).
 */
export function loadConfigWithFleet(opts: LoadOptions, broken: 'throw' | 'ignore'): { config: Config; patches: FleetAtStart['patches']; warning?: string } {
  const base = loadConfig(opts);
  let fleet: FleetAtStart;
  try {
    fleet = fleetAtStart(base.fleet.path, base.data_dir);
  } catch (err) {
    if (broken === 'ignore') return { config: base, patches: {} };
    if (err instanceof FleetError) throw new ConfigError(`the fleet file is not valid (nothing was applied):\n${err.message}`);
    const e = err as NodeJS.ErrnoException;
    if (e.code) throw new ConfigError(`fleet.path ${base.fleet.path}: cannot read: ${e.code}`);
    throw err;
  }
  const config = fleet.overlay.length ? loadConfig({ ...opts, overlay: fleet.overlay }) : base;
  return { config, patches: fleet.patches, ...(fleet.warning ? { warning: fleet.warning } : {}) };
}
