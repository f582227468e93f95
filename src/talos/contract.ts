// Version contracts: what a Talos minor release expects its generated machine config to contain.
// Each flag mirrors a difference in the documents `talosctl gen config` writes for that release
// (pinned by the stability fixtures in test/fixtures/talos/stability). The flag names follow
// Talos's own `VersionContract` methods where there is one, so a new minor is added by reading
// Talos's contract and setting the same flags here.

export type Contract = {
  version: string;
  minor: number;
  /** machine.features.rbac / stableHostname / apidCheckExtKeyUsage written out (hidden from 1.12). */
  legacyFeatureFlags: boolean;
  /** cluster.apiServer.certSANs lists the endpoint host; apiServer.disablePodSecurityPolicy set (1.11). */
  legacyApiServerFields: boolean;
  /** machine.install.grubUseUKICmdline: true (1.12 and 1.13; 1.14 has no machine.install). */
  grubUseUKICmdline: boolean;
  /** An empty machine.network mapping is written (up to 1.12; gone from the 1.13 document). */
  emptyMachineNetwork: boolean;
  /** Network settings are multi-document (HostnameConfig, LinkConfig, ...) rather than machine.network (from 1.12). */
  multidocNetwork: boolean;
  /**
   * Talos `MultidocKubernetesConfigSupported` (1.14): Kubernetes settings live in Kube*Config
   * documents, and the v1alpha1 fields they replace (machine.kubelet, cluster.apiServer, ...)
   * conflict with them.
   */
  multidocKubernetes: boolean;
  /** `UnattendedInstallConfig` (1.14): the install disk and image are a document, not machine.install. */
  unattendedInstall: boolean;
  /** `MultidocSysctlConfigSupported` (1.14): sysctls are a SysctlConfig document. */
  multidocSysctl: boolean;
  /** `DiscoveryServiceMultidocConfig` / `DiscoveryIdentityMultidocConfig` (1.14). */
  multidocDiscovery: boolean;
  /** `HostDNSMultidocConfig` (1.14): host DNS is part of ResolverConfig. */
  multidocHostDns: boolean;
  /** `FilesystemTrimEnabledByDefault` (1.14): EPHEMERAL VolumeConfig (secure mount) and FilesystemTrimConfig. */
  filesystemTrimByDefault: boolean;
  /** `WorkloadIsolationEnabledByDefault` (1.14): SecurityProfileConfig. */
  workloadIsolationByDefault: boolean;
};

export const SUPPORTED_MINORS = [11, 12, 13, 14] as const;

/** "v1.11 to v1.14": the supported range, for messages. */
export const SUPPORTED_RANGE = `v1.${SUPPORTED_MINORS[0]} to v1.${SUPPORTED_MINORS.at(-1)}`;

export class ContractError extends Error {}

export type TalosVersion = { major: number; minor: number; patch: number };

/** A Talos release tag: v1.14.0, v1.13.0-beta.1 (the leading v optional). The one parser of versions. */
export function parseTalosVersion(version: string): TalosVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.]+)?$/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

/** Accepts a release tag (v1.13.9) or a minor (v1.13, 1.13). */
export function contractFor(version: string): Contract {
  const full = parseTalosVersion(version) ?? parseTalosVersion(`${version.replace(/^v?/, 'v')}.0`);
  if (!full || full.major !== 1 || !(SUPPORTED_MINORS as readonly number[]).includes(full.minor)) {
    throw new ContractError(`Genesis renders machine configs for Talos ${SUPPORTED_RANGE}; ${version} is not one of them`);
  }
  const m = full.minor;
  return {
    version,
    minor: m,
    legacyFeatureFlags: m <= 11,
    legacyApiServerFields: m <= 11,
    grubUseUKICmdline: m >= 12 && m <= 13,
    emptyMachineNetwork: m <= 12,
    multidocNetwork: m >= 12,
    multidocKubernetes: m >= 14,
    unattendedInstall: m >= 14,
    multidocSysctl: m >= 14,
    multidocDiscovery: m >= 14,
    multidocHostDns: m >= 14,
    filesystemTrimByDefault: m >= 14,
    workloadIsolationByDefault: m >= 14,
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

/** Why a version cannot be used, or undefined when it can: for API and config errors. */
export function unsupportedVersionReason(version: string): string | undefined {
  try {
    contractFor(version);
    return undefined;
  } catch (err) {
    if (err instanceof ContractError) return err.message;
    throw err;
  }
}
