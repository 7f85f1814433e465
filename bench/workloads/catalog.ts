/**
 * The data-path workloads, in the order the report lists them. HTTP headlines use wrk (C);
 * autocannon (Node) and connrate's http mode measure the same paths again as cross-checks,
 * and the report shows where the clients disagree.
 */
import { connPerRequestWorkload, keepAliveWorkload, newConnectionsWorkload } from './http.js';
import { iperfWorkload } from './iperf.js';
import { wrkWorkload } from './wrk.js';
import type { Workload } from './workload.js';

export const WORKLOADS: Workload[] = [
  iperfWorkload('same-network', 1, 'TCP, sandbox → sandbox, same network, 1 stream', false),
  iperfWorkload('same-network', 2, 'TCP, sandbox → sandbox, same network, 2 streams', false),
  iperfWorkload('published', 1, 'TCP, external client → published port, 1 stream', true),
  iperfWorkload('published', 2, 'TCP, external client → published port, 2 streams', false),
  iperfWorkload('egress', 1, 'TCP, sandbox → external (masquerade), 1 stream', false),
  iperfWorkload('egress', 2, 'TCP, sandbox → external (masquerade), 2 streams', false),
  wrkWorkload('published', false, 'HTTP keep-alive, published port (wrk, 50 connections)', true),
  wrkWorkload('same-network', false, 'HTTP keep-alive, sandbox → sandbox, same network (wrk, 50 connections)', false),
  wrkWorkload('published', true, 'HTTP, one connection per request (Connection: close), published port (wrk, 32 connections)', true),
  newConnectionsWorkload('published', 'New TCP connections, published port (connrate, 32 in flight)', true),
  newConnectionsWorkload('egress', 'New TCP connections, sandbox → external (masquerade) (connrate, 32 in flight)', true),
  keepAliveWorkload('published', 'HTTP keep-alive, published port (autocannon, 50 connections) — cross-check', true),
  keepAliveWorkload('same-network', 'HTTP keep-alive, same network (autocannon, 50 connections) — cross-check', false),
  connPerRequestWorkload('published', 'HTTP, one connection per request, published port (connrate http, 32 in flight) — cross-check', false),
  // IPv6 beside IPv4: the same clients on the same paths, for the setups that have IPv6 (bpfnet's).
  wrkWorkload('published6', false, 'IPv6: HTTP keep-alive, published port (wrk, 50 connections)', true),
  newConnectionsWorkload('published6', 'IPv6: new TCP connections, published port (connrate, 32 in flight)', true),
  wrkWorkload('same-network6', false, 'IPv6: HTTP keep-alive, sandbox → sandbox, same network (wrk, 50 connections)', false),
  newConnectionsWorkload('egress6', 'IPv6: new TCP connections, sandbox → external (NAT66) (connrate, 32 in flight)', true),
  iperfWorkload('published6', 1, 'IPv6: TCP, external client → published port, 1 stream', false),
];
