/**
 * `-d ipvlan`, refused before anything is stored or built: bpfnet ships no ipvlan code it
 * cannot test, and this kernel family may lack ipvlan altogether. The kernel is asked at
 * create time (a scratch namespace, kernel-features.ts), so the error says which it is.
 */
import { invalid } from '../../errors.js';
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import type { Driver, DriverCapabilities } from '../driver.js';
import { KernelFeatures } from '../macvlan/kernel-features.js';

export class IpvlanRefusal implements Driver {
  readonly name = 'ipvlan';
  readonly capabilities: DriverCapabilities = {
    datapath: false,
    scope: 'local',
    // false so that the kernel's answer, not a missing -o parent, is what the user reads first.
    needsParent: false,
    ownNamespace: true,
    addresses: true,
    userNetworks: true,
    embeddedDns: false,
    disconnect: true,
  };
  readonly #features: KernelFeatures;

  constructor(features: KernelFeatures = new KernelFeatures()) {
    this.#features = features;
  }

  async checkNetwork(_net: NetworkRecord): Promise<void> {
    const f = await this.#features.probe('ipvlan');
    if (!f.available)
      throw invalid(`ipvlan networks are not supported on this host: the kernel has no ipvlan driver (CONFIG_IPVLAN) — \`ip link add ... type ipvlan\` failed: ${f.detail}`);
    throw invalid('ipvlan networks are not supported by bpfnet yet (the kernel has ipvlan; use -d macvlan)');
  }

  // Never reached: checkNetwork refuses every network first.
  async createNetwork(net: NetworkRecord): Promise<void> {
    throw invalid(`ipvlan network ${net.name} cannot be built`);
  }
  async deleteNetwork(): Promise<void> {}
  async createEndpoint(net: NetworkRecord, _ep: EndpointRecord): Promise<EndpointRecord> {
    throw invalid(`ipvlan network ${net.name} has no endpoints`);
  }
  async join(net: NetworkRecord, _ep: EndpointRecord): Promise<EndpointRecord> {
    throw invalid(`ipvlan network ${net.name} has no endpoints`);
  }
  async leave(): Promise<void> {}
  async deleteEndpoint(): Promise<void> {}
}
