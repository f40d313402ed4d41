/**
 * `npm run bench`: every benchmark side by side in one run; prints tables and writes JSON reports to bench/results/.
 * Ratios compare OpenBatch with the baseline measured in the same run, never with numbers from elsewhere.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCollections } from "./collections.js";
import { benchEventLoop } from "./event-loop.js";
import { benchLocalEmbeddings } from "./local-embeddings.js";
import { benchLocalLlm } from "./local-llm.js";
import { benchRateLimits } from "./rate-limits.js";
import { report } from "./report.js";
import { benchScale } from "./scale.js";

const cacheDir = process.env.OPENBATCH_CACHE_DIR ?? join(tmpdir(), "openbatch-bench-cache");
const rows = [...(await benchRateLimits()), ...(await benchLocalEmbeddings(cacheDir)), ...(await benchLocalLlm()), ...(await benchCollections()), ...(await benchScale()), ...(await benchEventLoop())];
console.log(`report: ${report("openbatch-bench", rows)}`);
