// A boot conversation with fixed settings for tests that drive it through a front end (HTTP
// routes, TFTP files): Genesis at 192.0.2.1:8080, Talos v1.14.0 with every asset present, no
// render problem, and every config token it issues the same, so answers can be compared whole.

import pino from 'pino';
import { BootService } from '../../src/provision/service.ts';

export function plainBootService(inventory: ConstructorParameters<typeof BootService>[0]['inventory'], token: string): BootService {
  return new BootService({
    inventory,
    configs: { renderer: { problem: () => undefined }, issueToken: () => token },
    baseUrl: () => 'http://192.0.2.1:8080',
    defaultTalosVersion: 'v1.14.0',
    retrySeconds: 10,
    extraKernelArgs: [],
    assetsPresent: () => true,
    log: pino({ level: 'silent' }),
  });
}
