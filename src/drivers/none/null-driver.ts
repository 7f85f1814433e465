/** The null driver (network "none"): a namespace with loopback only. */
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import type { Driver, DriverCapabilities, JoinTarget } from '../driver.js';
import { ipAt } from '../netns-path.js';

export class NullDriver implements Driver {
  readonly name = 'null';
  readonly capabilities: DriverCapabilities = {
    datapath: false,
    scope: 'local',
    needsParent: false,
    ownNamespace: true,
    addresses: false,
    userNetworks: false,
    embeddedDns: false,
    disconnect: true,
    exclusive: { status: 'invalid', message: 'container cannot be connected to multiple networks with one of the networks in private (none) mode' },
    // moby drops -p in none mode without a word.
    publishRefusal: '',
  };
  async createNetwork(_net: NetworkRecord): Promise<void> {}
  async deleteNetwork(_net: NetworkRecord): Promise<void> {}
  async createEndpoint(_net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async join(_net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<EndpointRecord> {
    if (target.netnsPath) await ipAt(target.netnsPath, ['link', 'set', 'dev', 'lo', 'up']);
    return ep;
  }
  async leave(): Promise<void> {}
  async deleteEndpoint(): Promise<void> {}
}
