import { defineConfig } from 'vitest/config';
import DurationSequencer from './test/support/duration-sequencer.js';

// Two projects: `unit` (pure logic, no root) and `kernel` (root: real namespaces,
// programs and packets). Both are always configured: without root the kernel project's
// global setup fails the run with the reason, so `npm test` can never pass having silently
// run half the suite. The summary reporter's last line says what ran and fails any skip.
//
// Files run two at a time (vitest's default on 2 vCPUs is one): a kernel file mostly waits on
// daemons, engines and packets, and every lab has its own prefix, namespaces, pins and daemon,
// so files never share kernel state (eight worktrees ran these suites side by side on one
// machine all day). The longest start first (DurationSequencer). BPFNET_TEST_WORKERS=N
// overrides the count (1: one file at a time, as before). On the shared machine at load 15-30
// three at a time halved the kernel project's wall time but most files then hit their timeouts,
// as one at a time did for 8 of 29 files: the default has not been timed on a quiet machine.
const workers = Number(process.env.BPFNET_TEST_WORKERS ?? 2);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`BPFNET_TEST_WORKERS must be a positive integer, not "${process.env.BPFNET_TEST_WORKERS}"`);

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    maxWorkers: workers,
    sequence: { sequencer: DurationSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/reliability/**/*.test.ts'],
          environment: 'node',
          pool: 'forks' as const,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
