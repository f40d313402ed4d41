/**
 * `npm run bench`: every benchmark side by side in one run; prints tables and writes JSON reports to bench/results/.
 * Ratios compare OpenBatch with the baseline measured in the same run, never with numbers from elsewhere.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchBm25 } from "./bm25.js";
import { benchFilteredSearch } from "./filtered-search.js";
import { benchCoalesce } from "./coalesce.js";
import { benchCollections } from "./collections.js";
import { benchEventLoop } from "./event-loop.js";
import { benchLocalEmbeddings } from "./local-embeddings.js";
import { benchLocalLlm } from "./local-llm.js";
import { benchRateLimits } from "./rate-limits.js";
import { report, type BenchRow } from "./report.js";
import { benchScale } from "./scale.js";
import { benchScaleOut } from "./scale-out.js";

const cacheDir = process.env.OPENBATCH_CACHE_DIR ?? join(tmpdir(), "openbatch-bench-cache");
/** OPENBATCH_BENCH_ONLY=coalesce,rate-limits (comma-separated names) runs only those benches. */
const only = process.env.OPENBATCH_BENCH_ONLY?.split(",").map((s) => s.trim());
const benches: [string, () => Promise<BenchRow[]>][] = [
  ["rate-limits", benchRateLimits],
  ["coalesce", () => benchCoalesce(cacheDir)],
  ["local-embeddings", () => benchLocalEmbeddings(cacheDir)],
  ["local-llm", benchLocalLlm],
  ["collections", benchCollections],
  ["bm25", benchBm25],
  ["filtered-search", benchFilteredSearch],
  ["scale", benchScale],
  ["scale-out", benchScaleOut],
  ["event-loop", benchEventLoop],
];
const rows: BenchRow[] = [];
for (const [name, run] of benches) if (!only || only.includes(name)) rows.push(...(await run()));
console.log(`report: ${report("openbatch-bench", rows)}`);
