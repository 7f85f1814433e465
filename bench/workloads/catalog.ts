/** The data-path workloads, in the order the report lists them. */
import { connPerRequestWorkload, keepAliveWorkload, newConnectionsWorkload } from './http.js';
import { iperfWorkload } from './iperf.js';
import type { Workload } from './workload.js';

export const WORKLOADS: Workload[] = [
  iperfWorkload('same-network', 1, 'TCP, sandbox → sandbox, same network, 1 stream', false),
  iperfWorkload('same-network', 2, 'TCP, sandbox → sandbox, same network, 2 streams', false),
  iperfWorkload('published', 1, 'TCP, external client → published port, 1 stream', true),
  iperfWorkload('published', 2, 'TCP, external client → published port, 2 streams', false),
  iperfWorkload('egress', 1, 'TCP, sandbox → external (masquerade), 1 stream', false),
  iperfWorkload('egress', 2, 'TCP, sandbox → external (masquerade), 2 streams', false),
  keepAliveWorkload('published', 'HTTP keep-alive, published port (autocannon, 50 connections)'),
  keepAliveWorkload('same-network', 'HTTP keep-alive, sandbox → sandbox, same network (autocannon, 50 connections)'),
  connPerRequestWorkload('published', 'HTTP, one connection per request, published port (connrate, 32 in flight)'),
  newConnectionsWorkload('published', 'New TCP connections, published port (connrate, 32 in flight)', false),
  newConnectionsWorkload('egress', 'New TCP connections, sandbox → external (masquerade)', true),
];
