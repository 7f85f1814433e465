/**
 * node dist/bench/render.js RESULTS.json [--readme] — renders latest.md and the SVG charts again
 * from a stored run (after a change to the report, or for an older run), beside the JSON; with
 * --readme also the README's generated Performance block.
 */
import { readFileSync } from 'node:fs';
import { writeReport } from './report/write.js';
import { RESULTS_SCHEMA, type BenchResults } from './results-model.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const path = args.find((a) => !a.startsWith('--'));
  if (!path) throw new Error('usage: node dist/bench/render.js bench/results/<timestamp>.json [--readme]');
  const results = JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
  if (results.schema !== RESULTS_SCHEMA) throw new Error(`${path}: results schema ${results.schema}, this renderer reads ${RESULTS_SCHEMA}`);
  const { files } = await writeReport(results, path, { readme: args.includes('--readme') });
  process.stderr.write(`wrote ${files.join(', ')}\n`);
}

main().catch((err) => {
  process.stderr.write(`render: ${(err as Error).message}\n`);
  process.exit(1);
});
