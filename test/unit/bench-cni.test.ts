// The benchmark's CNI runtime, without running anything: what each plugin of a list gets on
// stdin and in its environment, as libcni builds it.
import { describe, expect, it } from 'vitest';
import { pluginConfig, pluginEnv, type CniNetworkList } from '../../bench/setups/cni-runtime.js';
import { cniNetworkList } from '../../bench/setups/cni.js';

const list: CniNetworkList = cniNetworkList('labnet', '/tmp/lab/ipam');

describe('CNI plugin configuration', () => {
  it('is the plugin section plus the list name and cniVersion', () => {
    const conf = pluginConfig(list, list.plugins[0], {});
    expect(conf).toMatchObject({ type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, name: 'labnet', cniVersion: '1.0.0' });
    expect(conf).not.toHaveProperty('runtimeConfig');
    expect(conf).not.toHaveProperty('prevResult');
    expect((conf.ipam as { dataDir: string }).dataDir).toBe('/tmp/lab/ipam');
  });

  it('hands capability arguments only to plugins that declare the capability', () => {
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
    expect(pluginConfig(list, list.plugins[0], { portMappings })).not.toHaveProperty('runtimeConfig');
    expect(pluginConfig(list, list.plugins[1], { portMappings }).runtimeConfig).toEqual({ portMappings });
    expect(pluginConfig(list, list.plugins[1], {})).not.toHaveProperty('runtimeConfig');
  });

  it('chains the previous result as prevResult', () => {
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.88.0.2/16', gateway: '10.88.0.1' }] };
    expect(pluginConfig(list, list.plugins[1], {}, prev).prevResult).toEqual(prev);
  });

  it('sets the CNI variables of the call', () => {
    const env = pluginEnv('DEL', { containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0' }, '/usr/lib/cni');
    expect(env).toMatchObject({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
    expect(env.PATH).toBeTruthy();
  });
});
