import type { Batch } from "../core/batch.js";
import type { Endpoint } from "../core/wire-format.js";
import { newId } from "../core/ids.js";

/**
 * A new batch record with every timestamp empty (a fresh `batch_` id; `expires_at` is now + `windowMs`, in ms).
 * Model, name and description start null; callers set them.
 */
export function draftBatch(f: {
  dialect: string;
  owner: string;
  endpoint: Endpoint;
  provider: string | null;
  input_file_id: string | null;
  completion_window: string;
  windowMs: number;
  metadata: Record<string, string> | null;
  priority: number;
  status: "created" | "validating";
}): Batch {
  const now = Date.now();
  return {
    id: newId("batch_"),
    dialect: f.dialect,
    owner: f.owner,
    endpoint: f.endpoint,
    model: null,
    provider: f.provider,
    input_file_id: f.input_file_id,
    completion_window: f.completion_window,
    status: f.status,
    errors: null,
    output_file_id: null,
    error_file_id: null,
    metadata: f.metadata,
    created_at: now,
    in_progress_at: null,
    expires_at: now + f.windowMs,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    final_status: null,
    priority: f.priority,
    name: null,
    description: null,
  };
}
