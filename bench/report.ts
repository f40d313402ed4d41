import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** One measured line of a benchmark report. `ratio` compares this case with its baseline (higher is better). */
export interface BenchRow {
  bench: string;
  case: string;
  value: number;
  unit: string;
  ratio?: number;
  ratioOf?: string;
}

/** ../shared/datasets beside the checkout, or OPENBATCH_DATASETS. */
export function datasetsDir(): string {
  return process.env.OPENBATCH_DATASETS ?? resolve(import.meta.dirname, "../../shared/datasets");
}

/** Prints rows as a table and writes them to bench/results/<name>-<time>.json. @returns the JSON path. */
export function report(name: string, rows: BenchRow[]): string {
  console.log(`\n${name}`);
  console.table(rows.map((r) => ({ bench: r.bench, case: r.case, value: `${r.value >= 100 ? r.value.toFixed(0) : r.value >= 10 ? r.value.toFixed(1) : r.value.toFixed(3)} ${r.unit}`, ratio: r.ratio === undefined ? "" : `${r.ratio.toFixed(2)} (${r.ratioOf})` })));
  const dir = resolve(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(path, JSON.stringify({ name, node: process.version, rows }, null, 2));
  return path;
}
