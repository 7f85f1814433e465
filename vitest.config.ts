import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no root) and `kernel` (root: real namespaces,
// programs and packets). The kernel project runs only as root; without root it is
// skipped with a notice rather than failing on EPERM.
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('[vitest] not root: running the unit project only');

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      ...(isRoot
        ? [
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
          ]
        : []),
    ],
  },
});
