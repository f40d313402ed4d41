/**
 * The queueing-upstream bench alone (bench/coalesce.ts `benchQueueing`: OpenBatch with no budget, default
 * maxConcurrency and maxConcurrency 256, against the best fixed concurrency of a sweep, on a fake with 8 slots ×
 * 200 ms and an unlimited queue). `OPENBATCH_BENCH_QUEUEING_N=400 npx tsx bench/queueing.ts` for a quicker run.
 * Prints each row as JSON (ratio = throughput ÷ the sweep's best).
 */
import { benchQueueing } from "./coalesce.js";

const n = Number(process.env.OPENBATCH_BENCH_QUEUEING_N) || undefined;
for (const row of await benchQueueing(n)) console.log(JSON.stringify(row));
