/** GET /metrics: the Prometheus text exposition (src/metrics/engine-metrics.ts). */
import type { EngineMetrics } from '../../metrics/engine-metrics.js';
import type { Router } from '../router.js';

export function metricsRoutes(router: Router, metrics: EngineMetrics): void {
  router.on('GET', '/metrics', async (_req, res) => {
    const { body, contentType } = await metrics.expose();
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}
