// The bench's knob for a NIC-like uplink: `bpfnet daemon --ebpf-uplink-shortcut on|off` reaches the
// daemon's options, and only on or off is accepted. (That the kernel then stops using
// bpf_redirect_peer is checked by the bench itself on every run: the uplink's tx counter.)
import { describe, expect, it } from 'vitest';
import type { DaemonOptions } from '../../src/cli/daemon-options.js';
import { parseTuning } from '../../src/daemon/options.js';
import { bpfnet } from './cli-fake-daemon.js';

const start = async (argv: string[]) => {
  let received: DaemonOptions | undefined;
  const r = await bpfnet(['daemon', ...argv], undefined, {
    deps: { loadDaemon: async () => ({ runDaemon: async (o: DaemonOptions) => void (received = o) }) },
  });
  return { ...r, received };
};

describe('--ebpf-uplink-shortcut', () => {
  it('passes on and off through to the daemon, and nothing when not given', async () => {
    expect((await start(['--ebpf-uplink-shortcut', 'off'])).received?.ebpfUplinkShortcut).toBe('off');
    expect((await start(['--ebpf-uplink-shortcut', 'on'])).received?.ebpfUplinkShortcut).toBe('on');
    expect((await start([])).received).not.toHaveProperty('ebpfUplinkShortcut');
  });

  it('refuses anything but on or off before starting the daemon', async () => {
    const r = await start(['--ebpf-uplink-shortcut', 'maybe']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('Allowed choices are on, off');
    expect(r.received).toBeUndefined();
  });

  it('becomes the tuning the ebpf datapath reads (uplinkShortcut false leaves DP_F_UPLINK_VETH off)', () => {
    expect(parseTuning({ ebpfUplinkShortcut: 'off' })).toEqual({ uplinkShortcut: false });
    expect(parseTuning({ ebpfUplinkShortcut: 'on' })).toEqual({ uplinkShortcut: true });
    expect(parseTuning({})).toEqual({});
    expect(() => parseTuning({ ebpfUplinkShortcut: 'sometimes' })).toThrow('--ebpf-uplink-shortcut must be on or off, not "sometimes"');
  });
});
