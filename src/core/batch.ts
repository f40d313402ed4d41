import type { CostEstimate } from "./pricing.js";
import type { Endpoint } from "./wire-format.js";

/**
 * The dialect-neutral batch model: a Batch owns RequestItems; both move through legal state machines only.
 * Timestamps are unix milliseconds here; dialects convert (OpenAI renders unix seconds).
 */

/** Endpoints a batch may target (OpenAI Batch `endpoint`). */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/moderations"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** OpenAI Batch statuses, plus `created` (open for requests, not started: seed 001); other dialects map onto these. */
export type BatchStatus =
  | "created"
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";

export const TERMINAL_BATCH_STATUSES: readonly BatchStatus[] = ["failed", "completed", "expired", "cancelled"];

/**
 * Legal batch transitions. A normal end and an expiry pass through `finalizing` while the result files are written;
 * a cancel writes them while still `cancelling`, as OpenAI shows it.
 */
const BATCH_TRANSITIONS: Record<BatchStatus, readonly BatchStatus[]> = {
  // created → finalizing: a batch never started expires after its window (its items end as batch_expired).
  created: ["in_progress", "cancelling", "finalizing"],
  validating: ["in_progress", "failed", "cancelling"],
  in_progress: ["finalizing", "cancelling"],
  // → failed: the result files could not be written after every attempt (engine/finalizer.ts).
  finalizing: ["completed", "expired", "failed"],
  cancelling: ["cancelled", "failed"],
  failed: [],
  completed: [],
  expired: [],
  cancelled: [],
};

/** True when a batch may move from `from` to `to`. */
export function canTransition(from: BatchStatus, to: BatchStatus): boolean {
  return BATCH_TRANSITIONS[from].includes(to);
}

export function isTerminal(status: BatchStatus): boolean {
  return TERMINAL_BATCH_STATUSES.includes(status);
}

/** One validation failure of an input file (OpenAI `errors.data[]`): `line` is 1-based. */
export interface BatchValidationError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** Token usage summed over a batch's successful items (OpenAI Batch `usage`). */
export interface BatchUsage {
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
}

/** Live item counts of a batch. `total` counts every item; `pending` = queued + in flight. */
export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
  pending: number;
  expired: number;
  cancelled: number;
}

/** A batch as stored. Times are unix ms or null. */
export interface Batch {
  id: string;
  /** The API it was created through; it is always rendered in it ("openai"). */
  dialect: string;
  /** Owner key fingerprint when auth is on, "" otherwise. */
  owner: string;
  /** What every item targets, in its own format (OpenAI endpoints, Anthropic "/v1/messages", Gemini "gemini:…"). */
  endpoint: Endpoint;
  model: string | null;
  /** Name of the provider that serves it, resolved at creation. */
  provider: string | null;
  input_file_id: string | null;
  completion_window: string;
  status: BatchStatus;
  errors: BatchValidationError[] | null;
  output_file_id: string | null;
  error_file_id: string | null;
  metadata: Record<string, string> | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  /** The status finalizing ends in: completed, expired or cancelled. */
  final_status: BatchStatus | null;
  /** Scheduling priority among batches sharing a provider: higher first, equal ones take turns (default 0). */
  priority: number;
  /** A human name (seed 001 `name`, Gemini `displayName`), and a description. */
  name: string | null;
  description: string | null;
  /**
   * OpenAI `output_expires_after.seconds`: the output and error files expire this long after their own created_at.
   * Null or absent: they are kept until deleted.
   */
  output_expires_after?: number | null;
}

/** A batch with its live counters, as rendered. */
export interface BatchView extends Batch {
  request_counts: RequestCounts;
  usage: BatchUsage;
  /** What the usage so far would cost at the config's price for the model (USD), or null without a price. */
  estimated_cost: CostEstimate | null;
}

/** Request item states. Terminal: succeeded, failed, expired, cancelled. */
export type ItemState = "queued" | "in_flight" | "succeeded" | "failed" | "expired" | "cancelled";

/** One request of a batch (one input line), as the dispatcher sees it. */
export interface RequestItem {
  id: string;
  batch_id: string;
  /** 1-based input line number; output order follows it. */
  line: number;
  custom_id: string;
  /** The request body as JSON text, sent verbatim upstream. */
  body: string;
  state: ItemState;
  attempts: number;
}

/** The terminal outcome of an item, written once. */
export interface ItemOutcome {
  state: "succeeded" | "failed" | "expired" | "cancelled";
  /** Upstream HTTP status when an answer came back. */
  status_code: number | null;
  request_id: string | null;
  /** Upstream body as JSON text when an answer came back. */
  response_body: string | null;
  /** Set when no answer came back (e.g. batch_expired, batch_cancelled, upstream_unreachable). */
  error_code: string | null;
  error_message: string | null;
  usage: BatchUsage | null;
}
