/** The null driver (network "none"): a namespace with loopback only. */
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import type { Driver } from '../driver.js';

export class NullDriver implements Driver {
  readonly name = 'null' as const;
  readonly ownNamespace = true;
  async createNetwork(_net: NetworkRecord): Promise<void> {}
  async deleteNetwork(_net: NetworkRecord): Promise<void> {}
  async join(_net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async leave(): Promise<void> {}
}
