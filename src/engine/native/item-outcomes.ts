import type { Batch, ItemOutcome } from "../../core/batch.js";
import { newId } from "../../core/ids.js";
import type { VendorResult } from "../../providers/native/native-api.js";
import { translateResponse } from "../../providers/translate/translate.js";
import type { VendorJob } from "../../store/vendor-jobs.js";
import { noAnswer } from "../upstream-answer.js";
import { readUsage } from "../usage.js";

// The one outcome-without-answer builder, shared with direct mode (re-exported for chunks.ts, record.ts, runner.ts).
export { noAnswer };

/** A vendor result as an item outcome in the batch's own format, judged as direct mode judges an answer. */
export function outcomeOf(batch: Batch, job: VendorJob, r: Exclude<VendorResult, { kind: "unrun" }>): ItemOutcome {
  if (r.kind === "error") return noAnswer("failed", r.code, r.message);
  const requestId = r.requestId ?? newId("req_");
  if (r.status < 200 || r.status >= 300) {
    return { state: "failed", status_code: r.status, request_id: requestId, response_body: r.body, error_code: null, error_message: null, usage: null };
  }
  let text: string;
  try {
    text = translateResponse(batch.endpoint, job.endpoint, r.body);
  } catch (err) {
    return noAnswer("failed", "untranslatable_field", (err as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return noAnswer("failed", "invalid_upstream_response", `The vendor's result is not a JSON object: ${text.slice(0, 200)}`);
  }
  return { state: "succeeded", status_code: r.status, request_id: requestId, response_body: text, error_code: null, error_message: null, usage: readUsage(json) };
}
