import type { BatchView } from "../../core/batch.js";
import type { FileRecord } from "../../store/store.js";

const sec = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/** OpenAI FileObject: `{id, object:"file", bytes, created_at (unix s), filename, purpose, status, expires_at}`. */
export function renderFile(f: FileRecord) {
  return {
    id: f.id,
    object: "file" as const,
    bytes: f.bytes,
    created_at: sec(f.created_at),
    filename: f.filename,
    purpose: f.purpose,
    status: "processed",
    expires_at: sec(f.expires_at),
    status_details: null,
  };
}

/** OpenAI Batch object (times in unix s). */
export function renderBatch(b: BatchView) {
  return {
    id: b.id,
    object: "batch" as const,
    endpoint: b.endpoint,
    model: b.model,
    errors: b.errors ? { object: "list", data: b.errors } : null,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: sec(b.created_at),
    in_progress_at: sec(b.in_progress_at),
    expires_at: sec(b.expires_at),
    finalizing_at: sec(b.finalizing_at),
    completed_at: sec(b.completed_at),
    failed_at: sec(b.failed_at),
    expired_at: sec(b.expired_at),
    cancelling_at: sec(b.cancelling_at),
    cancelled_at: sec(b.cancelled_at),
    request_counts: { total: b.request_counts.total, completed: b.request_counts.completed, failed: b.request_counts.total - b.request_counts.completed - b.request_counts.pending },
    usage: {
      input_tokens: b.usage.input_tokens,
      input_tokens_details: { cached_tokens: b.usage.cached_tokens },
      output_tokens: b.usage.output_tokens,
      output_tokens_details: { reasoning_tokens: b.usage.reasoning_tokens },
      total_tokens: b.usage.input_tokens + b.usage.output_tokens,
    },
    metadata: b.metadata,
    // Our extensions: the cost of the usage so far at the configured price, and the scheduling priority.
    estimated_cost: b.estimated_cost && { currency: "USD", regular: round6(b.estimated_cost.regular), batch: round6(b.estimated_cost.batch), ...(b.estimated_cost.charged !== undefined ? { charged: round6(b.estimated_cost.charged) } : {}) },
    priority: b.priority,
  };
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** OpenAI list envelope: `{object:"list", data, first_id, last_id, has_more}`. */
export function renderList<T extends { id: string }>(data: T[], has_more: boolean) {
  return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more };
}
