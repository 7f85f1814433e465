// The TypeScript ABI mirror (src/datapath/abi.ts) against the C headers it mirrors
// (bpf/shared/*.h): the host compiler prints sizeof and offsetof, the codecs must agree.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '../../src/datapath/abi.js';
import type { StructCodec } from '../../src/datapath/libbpf/codec.js';
import { projectRoot } from '../../src/paths.js';

/** [header, C struct name, codec] for every struct the ABI mirrors. */
const mirrored: Array<[string, string, StructCodec<any>]> = [
  ['probe.h', 'probe_counter', abi.probeCounter],
  ['probe.h', 'probe_event', abi.probeEvent],
  ['datapath.h', 'dp_config', abi.dpConfig],
  ['datapath.h', 'network_info', abi.networkInfo],
  ['datapath.h', 'endpoint_info', abi.endpointInfo],
  ['datapath.h', 'port_key', abi.portKey],
  ['datapath.h', 'port_target', abi.portTarget],
  ['datapath.h', 'ct_key4', abi.ctKey4],
  ['datapath.h', 'ct_entry4', abi.ctEntry4],
  ['datapath.h', 'dp_config6', abi.dpConfig6],
  ['datapath.h', 'network_info6', abi.networkInfo6],
  ['datapath.h', 'net6_more_key', abi.net6MoreKey],
  ['datapath.h', 'port_key6', abi.portKey6],
  ['datapath.h', 'port_target6', abi.portTarget6],
  ['datapath.h', 'ct_key6', abi.ctKey6],
  ['datapath.h', 'ct_entry6', abi.ctEntry6],
  ['datapath.h', 'ep_stats', abi.epStats],
  ['datapath.h', 'drop_event', abi.dropEvent],
  ['datapath.h', 'flow_event', abi.flowEvent],
  ['datapath.h', 'flow_counts', abi.flowCounts],
  ['datapath.h', 'flow_event6', abi.flowEvent6],
  ['dns.h', 'dns_name_key', abi.dnsNameKey],
  ['dns.h', 'dns_name_value', abi.dnsNameValue],
  ['dns.h', 'dns_client', abi.dnsClient],
];

function cLayout(): Record<string, { size: number; offsets: Record<string, number> }> {
  const headers = [...new Set(mirrored.map(([h]) => h))];
  const lines = mirrored.map(([, name, codec]) => {
    const fields = Object.keys(codec.offsets)
      .map((f) => `printf("\\"%s\\":%zu,", "${f}", offsetof(struct ${name}, ${f}));`)
      .join(' ');
    return `printf("\\"${name}\\":{\\"size\\":%zu,\\"offsets\\":{", sizeof(struct ${name})); ${fields} printf("\\"_\\":0}},");`;
  });
  const src = `#include <stdio.h>
#include <stddef.h>
#include <linux/types.h>
${headers.map((h) => `#include "${join(projectRoot, 'bpf', 'shared', h)}"`).join('\n')}
int main(void) { printf("{"); ${lines.join('\n')} printf("\\"_\\":0}"); return 0; }`;
  const dir = mkdtempSync(join(tmpdir(), 'bpfnet-abi-'));
  try {
    writeFileSync(join(dir, 'abi.c'), src);
    execFileSync('cc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')]);
    return JSON.parse(execFileSync(join(dir, 'abi'), { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ABI mirror', () => {
  it('names every drop reason of bpf/shared/drop_reasons.h, in order', () => {
    const header = readFileSync(join(projectRoot, 'bpf', 'shared', 'drop_reasons.h'), 'utf8');
    const values = [...header.matchAll(/^\s*DROP_([A-Z_]+) = (\d+),/gm)].filter((m) => m[1] !== 'REASONS');
    expect(values.map((m) => Number(m[2]))).toEqual(values.map((_, i) => i));
    expect(abi.DROP_REASONS).toHaveLength(values.length);
    expect(header).toContain(`DROP_REASONS = ${abi.DROP_REASONS.length},`);
  });

  const layout = cLayout();
  it.each(mirrored)('%s: struct %s matches its codec', (_h, name, codec) => {
    const c = layout[name];
    const { _: _ignored, ...offsets } = c.offsets;
    expect({ size: codec.size, offsets: codec.offsets }).toEqual({ size: c.size, offsets });
  });
});
