// The iptables datapath keeps no BPF counters: /metrics still serves the engine's own series
// (no datapath series, no scrape error), /info has no tables, and the flow log says why not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { api } from '../support/api.js';

describe('operating the iptables datapath', () => {
  let lab: Lab;
  let d: LabDaemon;

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'iptables' });
    await d.bpfnet('network', 'create', '--subnet', '10.47.0.0/24', 'plain');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('serves the engine metrics without datapath series', async () => {
    const m = await api(d.socket, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/^bpfnet_networks 4$/m);
    expect(m.text).toMatch(/^bpfnet_build_info\{version="0\.1\.0",datapath="iptables"\} 1$/m);
    expect(m.text).not.toMatch(/bpfnet_datapath_packets_total/);
    expect(m.text).not.toMatch(/^bpfnet_metrics_datapath_errors_total [1-9]/m);
  });

  it('reports no tables in /info, and refuses the flow log naming the datapath', async () => {
    const info = await api(d.socket, 'GET', '/info');
    expect(info.json.Bpfnet).toMatchObject({ Datapath: 'iptables', Tables: [] });
    const flows = await api(d.socket, 'GET', '/events/flows');
    expect(flows.status).toBe(400);
    expect(flows.json.message).toBe('the iptables datapath keeps no flow log: run the daemon with --datapath ebpf');
  });
});
