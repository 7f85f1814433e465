/**
 * Orders test files longest first, across both projects, so the slowest suites never start
 * last and leave the other workers idle behind them. A file's duration comes from vitest's own
 * cache of the last run in this clone; without one (a fresh clone) from file-durations.json
 * (measured here, see the README's test-time line); a kernel file in neither is treated as long,
 * since a new kernel suite usually is, a unit file as short. Vitest's default order needs its cache and otherwise sorts by
 * file size, which puts the 3-line wrappers of the behaviour and DNS suites (the longest) last.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Seconds assumed for a file nobody has timed yet: a kernel suite is usually long, a unit file short. */
const UNKNOWN_SECONDS: Record<string, number> = { kernel: 120, unit: 1 };

function measured(): Record<string, number> {
  const raw = JSON.parse(readFileSync(join(import.meta.dirname, 'file-durations.json'), 'utf8')) as { files: Record<string, number> };
  return raw.files;
}

export default class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const table = measured();
    const root = this.ctx.config.root;
    const seconds = (spec: TestSpecification): number => {
      const path = relative(root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${path}`);
      if (cached && !cached.failed && cached.duration > 0) return cached.duration / 1000;
      return table[path] ?? UNKNOWN_SECONDS[spec.project.name] ?? 1;
    };
    const order = new Map(files.map((f) => [f, seconds(f)]));
    return [...files].sort((a, b) => order.get(b)! - order.get(a)!);
  }
}
