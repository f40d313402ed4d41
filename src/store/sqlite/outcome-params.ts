import type { ItemOutcome } from "../../core/batch.js";

/**
 * The named parameters of an outcome write on SQLite (`@state`, `@status_code`, … `@reasoning_tokens`) from one
 * outcome; a missing usage counts 0 tokens. Shared by SqliteStore and the vendor-job store so both write the same
 * columns the same way (its own module, so neither has to import the other).
 */
export function outcomeParams(o: ItemOutcome) {
  return {
    state: o.state,
    status_code: o.status_code,
    request_id: o.request_id,
    response_body: o.response_body,
    error_code: o.error_code,
    error_message: o.error_message,
    input_tokens: o.usage?.input_tokens ?? 0,
    cached_tokens: o.usage?.cached_tokens ?? 0,
    output_tokens: o.usage?.output_tokens ?? 0,
    reasoning_tokens: o.usage?.reasoning_tokens ?? 0,
  };
}

/** Zero counter deltas of `batch_counts` (items per final state and tokens), to add outcomes to. */
export const ZERO_DELTA = { succeeded: 0, failed: 0, expired: 0, cancelled: 0, input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0 };
