/**
 * The test command's last line: how many tests passed, failed and were skipped, and which
 * projects ran with how many files. A skipped test fails the run (CI must not pass by
 * skipping), unless the caller asked for a subset by name (-t), which skips the rest on purpose.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  #vitest?: Vitest;

  onInit(vitest: Vitest): void {
    this.#vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const perProject = new Map<string, { files: number; failedFiles: number }>();
    for (const name of this.#vitest?.projects.map((p) => p.name) ?? []) perProject.set(name, { files: 0, failedFiles: 0 });
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      const p = perProject.get(m.project.name) ?? { files: 0, failedFiles: 0 };
      p.files++;
      // A file that failed to load or whose hooks failed has no failed test of its own: count it.
      if (m.state() === 'failed') p.failedFiles++;
      perProject.set(m.project.name, p);
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    const byName = Boolean(this.#vitest?.config.testNamePattern);
    const failedFiles = [...perProject.values()].reduce((n, p) => n + p.failedFiles, 0);
    const projects = [...perProject].map(([name, p]) => `${name || 'default'} (${p.files} file${p.files === 1 ? '' : 's'})`).join(', ');
    const verdict = failed + failedFiles + unhandledErrors.length > 0 || (skipped > 0 && !byName) ? 'FAIL' : 'PASS';
    if (skipped > 0 && !byName) {
      console.log(`[summary] ${skipped} test(s) skipped: no test may skip; a missing tool must fail the test with its name`);
      process.exitCode = 1;
    }
    if (verdict === 'FAIL') process.exitCode = 1;
    console.log(
      `[summary] ${verdict}: ${passed} passed, ${failed} failed, ${skipped} skipped, ${failedFiles} file(s) failed, ${unhandledErrors.length} unhandled error(s); projects run: ${projects || 'none'}`,
    );
  }
}
