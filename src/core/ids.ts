import { randomBytes } from "node:crypto";

/**
 * Random object ids in OpenAI's style: `<prefix><24 lowercase hex chars>` (96 bits), e.g. `batch_3f9a…`, `file-…`.
 * Ordering never depends on ids; stores keep an insertion sequence for that.
 */
export function newId(prefix: "batch_" | "file-" | "batch_req_" | "req_"): string {
  return prefix + randomBytes(12).toString("hex");
}
