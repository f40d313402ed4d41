/**
 * The engine-overhead bench alone (bench/rate-limits.ts `engineOverhead`): for profiling the batch pipeline, e.g.
 * `OPENBATCH_BENCH_OVERHEAD_N=10000 node --cpu-prof --import tsx bench/overhead.ts`. Prints its rows as JSON.
 * `OPENBATCH_BENCH_OVERHEAD_ROUNDS=5` runs it that many times (direct and batch side by side each round) and prints
 * the median ratio too: on a shared, loaded machine one round's ratio can be off by 2× either way.
 */
import { engineOverhead } from "./rate-limits.js";

const rounds = Number(process.env.OPENBATCH_BENCH_OVERHEAD_ROUNDS) || 1;
const ratios: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const row of await engineOverhead()) {
    console.log(JSON.stringify(row));
    if (row.ratio !== undefined) ratios.push(row.ratio);
  }
}
if (rounds > 1) {
  ratios.sort((a, b) => a - b);
  console.log(JSON.stringify({ rounds, ratios: ratios.map((x) => +x.toFixed(2)), median: ratios[Math.floor(ratios.length / 2)] }));
}
