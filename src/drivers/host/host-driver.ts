/** The host driver: the sandbox shares the host's (the daemon's) namespace; nothing to build. */
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import type { Driver, DriverCapabilities } from '../driver.js';

export class HostDriver implements Driver {
  readonly name = 'host';
  readonly capabilities: DriverCapabilities = {
    datapath: false,
    scope: 'local',
    needsParent: false,
    ownNamespace: false,
    addresses: false,
    userNetworks: false,
    embeddedDns: false,
    disconnect: false,
    exclusive: { status: 'forbidden', message: 'container cannot be disconnected from host network or connected to host network' },
    publishRefusal: 'Published ports are discarded when using host network mode',
  };
  async createNetwork(_net: NetworkRecord): Promise<void> {}
  async deleteNetwork(_net: NetworkRecord): Promise<void> {}
  async createEndpoint(_net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async join(_net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async leave(): Promise<void> {}
  async deleteEndpoint(): Promise<void> {}
}
