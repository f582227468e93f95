// Version contracts: what a Talos minor release expects its generated machine config to contain.
// Each flag mirrors a difference in the documents `talosctl gen config` writes for that release
// (pinned by the stability fixtures in test/fixtures/talos/stability).

export type Contract = {
  version: string;
  minor: number;
  /** machine.features.rbac / stableHostname / apidCheckExtKeyUsage written out (hidden from 1.12). */
  legacyFeatureFlags: boolean;
  /** cluster.apiServer.certSANs lists the endpoint host; apiServer.disablePodSecurityPolicy set (1.11). */
  legacyApiServerFields: boolean;
  /** machine.install.grubUseUKICmdline: true (from 1.12). */
  grubUseUKICmdline: boolean;
  /** An empty machine.network mapping is written (up to 1.12; gone from the 1.13 document). */
  emptyMachineNetwork: boolean;
  /** Network settings are multi-document (HostnameConfig, LinkConfig, ...) rather than machine.network (from 1.12). */
  multidocNetwork: boolean;
};

export const SUPPORTED_MINORS = [11, 12, 13] as const;

export class ContractError extends Error {}

export function parseTalosVersion(version: string): { major: number; minor: number; patch: number } | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.]+)?$/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

/** Accepts a release tag (v1.13.9) or a minor (v1.13, 1.13). */
export function contractFor(version: string): Contract {
  const full = parseTalosVersion(version) ?? parseTalosVersion(`${version.replace(/^v?/, 'v')}.0`);
  if (!full || full.major !== 1 || !(SUPPORTED_MINORS as readonly number[]).includes(full.minor)) {
    throw new ContractError(`Genesis renders machine configs for Talos v1.${SUPPORTED_MINORS[0]} to v1.${SUPPORTED_MINORS.at(-1)}; ${version} is not one of them`);
  }
  const m = full.minor;
  return {
    version,
    minor: m,
    legacyFeatureFlags: m <= 11,
    legacyApiServerFields: m <= 11,
    grubUseUKICmdline: m >= 12,
    emptyMachineNetwork: m <= 12,
    multidocNetwork: m >= 12,
  };
}

export function isSupportedTalosVersion(version: string): boolean {
  try {
    contractFor(version);
    return true;
  } catch {
    return false;
  }
}
