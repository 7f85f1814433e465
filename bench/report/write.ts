/** Writes a run's report beside its results JSON: latest.md (the tables) and the SVG charts. */
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BenchResults } from '../results-model.js';
import { renderCharts } from './charts.js';
import { renderMarkdown } from './markdown.js';

/** Renders results (stored at jsonPath) into jsonPath's directory; resolves with the markdown and the files written. */
export async function writeReport(results: BenchResults, jsonPath: string): Promise<{ markdown: string; files: string[] }> {
  const dir = dirname(jsonPath);
  const files: string[] = [];
  const charts = await renderCharts(results);
  for (const [name, svg] of Object.entries(charts)) {
    const file = join(dir, `${name}.svg`);
    writeFileSync(file, svg);
    files.push(file);
  }
  const markdown = renderMarkdown(results, './') + `\nRaw samples: [${basename(jsonPath)}](./${basename(jsonPath)})\n`;
  writeFileSync(join(dir, 'latest.md'), markdown);
  files.push(join(dir, 'latest.md'));
  return { markdown, files };
}
