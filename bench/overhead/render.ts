// Draws the overhead benchmark's charts and latest.md again from a latest.json (after a change to the
// charts or the report; no lab needed). Usage: node bench/overhead/render.ts [DIR]   (default bench/results)

import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCharts } from './charts.ts';
import { markdown, type Report } from './report.ts';

const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
const report = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')) as Report;
const charts = await writeCharts(report, dir);
await writeFile(join(dir, 'latest.md'), markdown(report, charts));
console.log(`wrote ${charts.join(', ')} and latest.md in ${dir}`);
