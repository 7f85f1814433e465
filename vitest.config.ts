import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no root) and `kernel` (root: real namespaces,
// programs and packets). Both are always configured: without root the kernel project's
// global setup fails the run with the reason, so `npm test` can never pass having silently
// run half the suite. The summary reporter's last line says what ran and fails any skip.
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
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
