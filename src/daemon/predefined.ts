/** The networks every daemon has: bridge (the default bridge), host and none. */
import { BridgeOption, type NetworkRecord } from '../networks/model.js';
import type { EngineConfig } from '../networks/config.js';
import { newId, nowRfc3339Nano } from '../util/ids.js';

function base(name: string, driver: NetworkRecord['driver']): NetworkRecord {
  return {
    id: newId(),
    name,
    created: nowRfc3339Nano(),
    driver,
    scope: 'local',
    internal: false,
    attachable: false,
    ingress: false,
    configOnly: false,
    enableIPv4: true,
    enableIPv6: false,
    ipamDriver: 'default',
    ipamOptions: null,
    ipamConfig: [],
    options: {},
    labels: {},
    predefined: true,
  };
}

export function defaultBridge(cfg: EngineConfig): NetworkRecord {
  return {
    ...base('bridge', 'bridge'),
    enableIPv6: cfg.bridge6 !== undefined,
    ipamConfig: [{ Subnet: cfg.bip.subnet, Gateway: cfg.bip.gateway }, ...(cfg.bridge6 ? [{ Subnet: cfg.bridge6.subnet, Gateway: cfg.bridge6.gateway }] : [])],
    options: {
      [BridgeOption.defaultBridge]: 'true',
      [BridgeOption.icc]: 'true',
      [BridgeOption.masquerade]: 'true',
      [BridgeOption.hostBinding]: '0.0.0.0',
      [BridgeOption.name]: cfg.defaultBridgeName,
      [BridgeOption.mtu]: '1500',
    },
    subnet: cfg.bip.subnet,
    gateway: cfg.bip.gateway,
    device: cfg.defaultBridgeName,
    ...(cfg.bridge6 ? { subnet6: cfg.bridge6.subnet, gateway6: cfg.bridge6.gateway } : {}),
  };
}

export const hostNetwork = (): NetworkRecord => base('host', 'host');
export const noneNetwork = (): NetworkRecord => base('none', 'null');
