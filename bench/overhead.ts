/**
 * The engine-overhead bench alone (bench/rate-limits.ts `engineOverhead`): for profiling the batch pipeline, e.g.
 * `OPENBATCH_BENCH_OVERHEAD_N=10000 node --cpu-prof --import tsx bench/overhead.ts`. Prints its rows as JSON.
 */
import { engineOverhead } from "./rate-limits.js";

for (const row of await engineOverhead()) console.log(JSON.stringify(row));
