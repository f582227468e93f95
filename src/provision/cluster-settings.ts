// The cluster's settings as the Talos renderer takes them, from the configuration: one mapping,
// shared by serve, \`genesis config render\` and the fleet's checks.

import { splitList, type Config } from '../config/config.ts';
import type { Cni } from '../talos/documents.ts';
import type { ClusterSettings, Telemetry } from '../talos/render.ts';

/**
 * Where nodes report to, at the advertised address: the ports actually bound when Genesis runs
 * (they may be 0 in the config), the configured ones for an offline render.
 */
export function telemetryEndpoints(c: Config, ports = { eventSink: c.events.sink_port, kernelLog: c.events.kernel_log_port }): Telemetry | undefined {
  if (!c.events.enabled || !ports.eventSink || !ports.kernelLog) return undefined;
  return { eventSink: `${c.advertise_addr}:${ports.eventSink}`, kernelLog: `tcp://${c.advertise_addr}:${ports.kernelLog}/` };
}

/** The Talos kernel arguments that point the network-booted kernel at the same endpoints. */
export function telemetryKernelArgs(t: Telemetry | undefined): string[] {
  return t ? [`talos.events.sink=${t.eventSink}`, `talos.logging.kernel=${t.kernelLog}`] : [];
}

export function clusterSettings(c: Config, telemetry: Telemetry | undefined = telemetryEndpoints(c)): ClusterSettings {
  const cni: Cni = c.cluster.cni === 'custom' ? { name: 'custom', urls: splitList(c.cluster.cni_urls) } : { name: c.cluster.cni };
  return {
    name: c.cluster.name,
    endpoint: c.cluster.endpoint,
    vip: c.cluster.vip,
    kubernetesVersion: c.cluster.kubernetes_version,
    dnsDomain: c.cluster.dns_domain,
    podSubnets: splitList(c.cluster.pod_subnets),
    serviceSubnets: splitList(c.cluster.service_subnets),
    cni,
    allowSchedulingOnControlPlanes: c.cluster.allow_scheduling_on_controlplanes,
    installDisk: c.talos.install_disk,
    installerImage: c.talos.installer_image,
    schematicId: c.talos.schematic_id,
    ...(telemetry ? { telemetry } : {}),
  };
}
