/** The host driver: the sandbox shares the host's (the daemon's) namespace; nothing to build. */
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import type { Driver } from '../driver.js';

export class HostDriver implements Driver {
  readonly name = 'host' as const;
  readonly ownNamespace = false;
  async createNetwork(_net: NetworkRecord): Promise<void> {}
  async deleteNetwork(_net: NetworkRecord): Promise<void> {}
  async join(_net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async leave(): Promise<void> {}
}
