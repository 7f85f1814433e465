// CI cannot pass by skipping: the summary reporter fails a run with a skipped test and prints
// what ran in its last line; a subset asked for by name (-t) is not a skip.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runRaw } from '../../src/system/exec.js';
import { projectRoot } from '../../src/paths.js';
import { missingForKernelTests } from '../support/requirements.js';

const VITEST = join(projectRoot, 'node_modules', 'vitest', 'vitest.mjs');
const CONFIG = join(projectRoot, 'test', 'fixtures', 'no-skip', 'vitest.config.ts');
const lastLine = (out: string) => out.trimEnd().split('\n').at(-1);

describe('the summary reporter', () => {
  it('fails a run that skipped a test, saying so in its last line', async () => {
    const r = await runRaw(process.execPath, [VITEST, 'run', '--config', CONFIG], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(lastLine(r.stdout)).toMatch(/^\[summary\] FAIL: 1 passed, 0 failed, 1 skipped, 0 file\(s\) failed, 0 unhandled error\(s\); projects run: .*\(1 file\)$/);
  }, 90_000);

  it('passes a subset asked for by name', async () => {
    const r = await runRaw(process.execPath, [VITEST, 'run', '--config', CONFIG, '-t', '^runs$'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(lastLine(r.stdout)).toMatch(/^\[summary\] PASS: 1 passed, 0 failed, 1 skipped, 0 file\(s\) failed/);
  }, 90_000);
});

describe('the kernel project requirements', () => {
  it('names root as missing when not root', () => {
    const getuid = process.getuid;
    process.getuid = () => 1000;
    try {
      expect(missingForKernelTests()).toEqual(['it needs root (real namespaces, BPF programs and packets): run `npm test` as root']);
    } finally {
      process.getuid = getuid;
    }
  });
});
