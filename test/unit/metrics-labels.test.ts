// Label values of the API metrics stay a small fixed set whatever a client sends.
import { describe, expect, it } from 'vitest';
import { EngineMetrics } from '../../src/metrics/engine-metrics.js';
import { routeLabel } from '../../src/metrics/route-label.js';

describe('API metric labels', () => {
  it.each([
    ['/v1.45/networks/abc', '/networks/{id}'],
    ['/networks/abc/connect', '/networks/{id}/connect'],
    ['/networks', '/networks'],
    ['/_ping', '/_ping'],
    ['/v1.50/containers/x/json', '/containers/{id}/json'],
    ['/events/flows', '/events/flows'],
    ['/', '/'],
    ['/etc/passwd', 'other'],
    ['//', '/'],
    ['/networks/a/b/c/d/e/f', '/networks/{id}/{id}/{id}/…'],
    ['/networks/%00%ff', '/networks/{id}'],
  ])('%s -> %s', (path, label) => {
    expect(routeLabel(path)).toBe(label);
  });

  it('keeps one series per route pattern, method and status, however many ids and methods were sent', async () => {
    const m = new EngineMetrics({ inventory: { networkByBridge: () => new Map(), endpointByIfindex: () => new Map(), counts: () => ({ networks: 0, sandboxes: 0, endpoints: 0, publishedPorts: 0 }) }, datapathKind: 'test', version: '0' });
    for (let i = 0; i < 500; i++) m.observeRequest(i % 2 ? 'GET' : `X${i}`, `/networks/n${i}`, 404, 0.001);
    const text = (await m.expose()).body;
    const series = text.split('\n').filter((l) => l.startsWith('bpfnet_api_requests_total{'));
    expect(series).toEqual(['bpfnet_api_requests_total{route="/networks/{id}",method="other",status="404"} 250', 'bpfnet_api_requests_total{route="/networks/{id}",method="GET",status="404"} 250']);
  });
});
