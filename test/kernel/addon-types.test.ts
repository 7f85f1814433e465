// No JS value reaches the native addon as the wrong type: every argument that stands for a
// kernel handle (a BpfMap for a ring buffer, a BpfProgram for a link update) is checked as that
// class before it is unwrapped, and a wrong one is a TypeError naming the argument. Each case
// runs in its own Node process, so a type confusion that crashes shows up as a crash, not as a
// lost test worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { addonPath, bpfObject } from '../../src/paths.js';
import { runRaw } from '../../src/system/exec.js';

let lab: Lab;

beforeAll(async () => {
  lab = await Lab.create();
});
afterAll(async () => {
  await lab?.destroy();
});

/**
 * Runs `body` in a fresh Node process with the addon as `addon`, a loaded probe_tc object as
 * `obj` (unpinned), its ring buffer map as `ring`, its counters map as `counters` and its
 * ingress program as `prog`; the process prints what `body` threw (or returned) as JSON.
 */
async function inChild(body: string): Promise<{ code: number; result: unknown; stderr: string }> {
  const script = `
    const addon = require(${JSON.stringify(addonPath)});
    addon.setErrorClass(class BpfError extends Error { constructor(m, c, e) { super(m); this.name = 'BpfError'; this.code = c; this.errno = e; } });
    const obj = new addon.BpfObject(${JSON.stringify(bpfObject('probe_tc'))});
    obj.load();
    const ring = obj.map('probe_events');
    const counters = obj.map('probe_counters');
    const prog = obj.program('probe_tc_ingress');
    const netns = ${JSON.stringify(lab.host.path)}, ifname = ${JSON.stringify(UPLINK.hostIf)};
    let out;
    try {
      out = { returned: String((() => { ${body} })()) };
    } catch (e) {
      out = { threw: e && e.name, message: e && e.message };
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const r = await runRaw(process.execPath, ['-e', script], { timeoutMs: 20_000 });
  let result: unknown = null;
  try {
    result = JSON.parse(r.stdout);
  } catch {
    /* crashed before printing: result stays null and the exit status says how */
  }
  // A crash (SIGSEGV, abort) is code 128 with the signal in stderr.
  return { code: r.code, result, stderr: r.stderr };
}

const typeError = (message: string) => ({ code: 0, result: { threw: 'TypeError', message } });
const outcome = (r: Awaited<ReturnType<typeof inChild>>) => ({ code: r.code, result: r.result, ...(r.code === 0 ? {} : { stderr: r.stderr.slice(-400) }) });

describe('a ring buffer accepts only a BpfMap', () => {
  it('works on the real ring buffer map (the control case)', async () => {
    const r = await inChild(`const rb = new addon.BpfRingBuffer(ring, () => {}); const n = rb.consume(); rb.close(); return n;`);
    expect(outcome(r)).toEqual({ code: 0, result: { returned: '0' } });
  });

  it('refuses a BpfProgram where a BpfMap is expected', async () => {
    const r = await inChild(`new addon.BpfRingBuffer(prog, () => {});`);
    expect(outcome(r)).toEqual(typeError('BpfRingBuffer: first argument must be a BpfMap'));
  });

  it('refuses a BpfProgram dressed as a ring buffer map (forged prototype and info())', async () => {
    const r = await inChild(`
      Object.setPrototypeOf(prog, addon.BpfMap.prototype);
      prog.info = () => ({ type: 27, name: 'probe_events' });
      new addon.BpfRingBuffer(prog, () => {});`);
    expect(outcome(r)).toEqual(typeError('BpfRingBuffer: first argument must be a BpfMap'));
  });

  it('refuses a plain object and an object made from the BpfMap prototype', async () => {
    const plain = await inChild(`new addon.BpfRingBuffer({ info: () => ({ type: 27 }) }, () => {});`);
    expect(outcome(plain)).toEqual(typeError('BpfRingBuffer: first argument must be a BpfMap'));
    const forged = await inChild(`new addon.BpfRingBuffer(Object.create(addon.BpfMap.prototype), () => {});`);
    expect(outcome(forged)).toEqual(typeError('BpfRingBuffer: first argument must be a BpfMap'));
  });

  it('refuses a map of another type with a BpfError naming it', async () => {
    const r = await inChild(`new addon.BpfRingBuffer(counters, () => {});`);
    expect(outcome(r)).toEqual({
      code: 0,
      result: { threw: 'BpfError', message: 'ring buffer on map "probe_counters": not a BPF_MAP_TYPE_RINGBUF map: Invalid argument' },
    });
  });
});

describe('a link update accepts only a BpfProgram', () => {
  // The link is attached by tcx to the lab host's uplink and ends with the child process.
  const attach = `const link = prog.attachTcx(netns, ifname, 'ingress');`;

  it('swaps in a real program (the control case)', async () => {
    const r = await inChild(`${attach} link.update(prog); return link.info().progId === prog.info().id;`);
    expect(outcome(r)).toEqual({ code: 0, result: { returned: 'true' } });
  });

  it('refuses a BpfMap where a BpfProgram is expected', async () => {
    const r = await inChild(`${attach} link.update(counters);`);
    expect(outcome(r)).toEqual(typeError('update: program must be a BpfProgram'));
  });

  it('refuses a BpfMap whose prototype was set to BpfProgram.prototype', async () => {
    const r = await inChild(`${attach} Object.setPrototypeOf(counters, addon.BpfProgram.prototype); link.update(counters);`);
    expect(outcome(r)).toEqual(typeError('update: program must be a BpfProgram'));
  });

  it('refuses an object made from the BpfProgram prototype, a plain object and a number', async () => {
    for (const arg of ['Object.create(addon.BpfProgram.prototype)', '{ fd: 3 }', '3']) {
      const r = await inChild(`${attach} link.update(${arg});`);
      expect(outcome(r)).toEqual(typeError('update: program must be a BpfProgram'));
    }
  });
});

describe('methods called on the wrong receiver', () => {
  it('refuses a map method called on a program, a plain object or a forged map', async () => {
    for (const receiver of ['prog', '{}', 'Object.create(addon.BpfMap.prototype)']) {
      const r = await inChild(`addon.BpfMap.prototype.lookup.call(${receiver}, Buffer.alloc(4));`);
      expect(outcome(r)).toEqual(typeError('Illegal invocation'));
    }
  });

  it('refuses a program method called on a map, and a ring buffer method on a map', async () => {
    const attach = await inChild(`addon.BpfProgram.prototype.attachTcx.call(counters, netns, ifname, 'ingress');`);
    expect(outcome(attach)).toEqual(typeError('Illegal invocation'));
    const consume = await inChild(`addon.BpfRingBuffer.prototype.consume.call(ring);`);
    expect(outcome(consume)).toEqual(typeError('Illegal invocation'));
  });
});
