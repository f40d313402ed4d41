/**
 * The engine-overhead bench alone (bench/rate-limits.ts `engineOverhead`): for profiling the batch pipeline, e.g.
 * `OPENBATCH_BENCH_OVERHEAD_N=10000 node --cpu-prof --import tsx bench/overhead.ts`. Prints its rows as JSON.
 * `OPENBATCH_BENCH_OVERHEAD_ROUNDS=5` runs it that many times (direct and batch side by side each round) and prints
 * the median ratios too: on a shared, loaded machine one round's wall ratio can be off by 2× either way; the CPU
 * ratio (CPU time of this process per item, direct ÷ batch) moves much less with the machine's load.
 */
import { engineOverhead } from "./rate-limits.js";

const rounds = Number(process.env.OPENBATCH_BENCH_OVERHEAD_ROUNDS) || 1;
/** Ratios by what they compare (wall time, CPU time), one per round. */
const ratios = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const row of await engineOverhead()) {
    console.log(JSON.stringify(row));
    if (row.ratio !== undefined) ratios.set(row.ratioOf!, [...(ratios.get(row.ratioOf!) ?? []), row.ratio]);
  }
}
if (rounds > 1) {
  for (const [of, list] of ratios) {
    list.sort((a, b) => a - b);
    console.log(JSON.stringify({ rounds, of, ratios: list.map((x) => +x.toFixed(2)), median: list[Math.floor(list.length / 2)] }));
  }
}
