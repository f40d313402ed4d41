import type { Endpoint, WireFormat } from "../../core/wire-format.js";

/**
 * One interface over the vendors' own batch APIs (OpenAI-compatible Batch API, Anthropic Message Batches, Gemini Batch
 * Mode), so the native runner (engine/native) hands chunks of a batch to any of them the same way: submit, poll,
 * download results, cancel. Requests arrive already translated to the adapter's `format` (providers/translate);
 * results go back raw, in that format, and the runner translates them into the batch's own.
 */

/** The adapters there are. */
export type VendorName = "openai" | "anthropic" | "gemini";

/** One request of a chunk: our vendor custom id (unique per item) and its body in the adapter's format (JSON text). */
export interface NativeRequestLine {
  customId: string;
  body: string;
}

/** What a vendor job is made of. `lines()` yields the same lines each time it is called (a retried upload re-reads it). */
export interface VendorSubmission {
  /** Our job id, carried where the vendor allows a tag (OpenAI `metadata`, Gemini `displayName`). */
  tag: string;
  /** The batch's model ("gpt-4o-mini", "claude-…", "gemini-…"). */
  model: string | null;
  /** The endpoint every line targets, in the adapter's format ("/v1/chat/completions", "/v1/messages", "gemini:generateContent"). */
  endpoint: Endpoint;
  lines: () => AsyncIterable<NativeRequestLine>;
  /** The job's size as the runner cut it (bodies plus `lineOverhead`, bytes), for adapters that choose inline or file by size (Gemini). */
  bytes?: number;
}

/** Per-call settings: the upstream key (a gateway batch's own, else the provider's) and an abort signal. */
export interface VendorCall {
  apiKey?: string;
  signal: AbortSignal;
}

/** How a vendor job ended, in our words. */
export type VendorEnd = "completed" | "failed" | "expired" | "cancelled";

/** What a poll says. */
export interface VendorProgress {
  /** The vendor's own status word (for logs and the job row). */
  status: string;
  /** Set once the vendor job has ended. */
  ended: VendorEnd | null;
  /** The vendor's message when it failed the whole job (its validation), with per-line errors (0-based index of the line in the job). */
  failure?: { message: string; lines: { index: number; code: string; message: string }[] };
  /** Requests the vendor reports finished so far (while it runs), when it reports them. */
  counts?: { completed: number; failed: number };
  /** What `results` needs (file ids, a URL), JSON-serialisable. */
  resultRef?: unknown;
}

/**
 * One result the vendor gave back: an answer in the adapter's format (`ok`, any HTTP status the vendor reports), an
 * error without an answer, or `unrun` (the vendor never ran it: the job expired or was cancelled first).
 */
export type VendorResult =
  | { kind: "answer"; customId: string; status: number; requestId: string | null; body: string }
  | { kind: "error"; customId: string; code: string; message: string }
  | { kind: "unrun"; customId: string; why: "expired" | "cancelled" };

/** A vendor call that failed. `retryable`: 429, 408, 409, 5xx, or no answer at all; others are the vendor's final word. */
export class VendorError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
    /** The vendor's Retry-After, ms, when it sent one. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = "VendorError";
  }
}

/** Limits of one vendor job. */
export interface VendorLimits {
  maxRequests: number;
  maxBytes: number;
}

/** A vendor's batch API. Every method throws VendorError for a failed call, or the signal's reason when aborted. */
export interface NativeBatchApi {
  readonly vendor: VendorName;
  /** The request format its lines are in. */
  readonly format: WireFormat;
  readonly limits: VendorLimits;
  /** True when `findByTag` can find a job created before a crash; false (Anthropic) when a crash there may repeat it. */
  readonly taggable: boolean;
  /** Bytes a line adds to a job beyond its body (framing, custom id), for chunking within `limits.maxBytes`. */
  lineOverhead(line: NativeRequestLine): number;
  /**
   * Uploads the input where the vendor wants a file first (OpenAI; Gemini past its inline size).
   * @returns the vendor's file id, or null when this job needs no file (it goes inline in `create`).
   */
  upload?(submission: VendorSubmission, call: VendorCall): Promise<string | null>;
  /** Creates the vendor job (from `fileId` when `upload` made one). @returns the vendor's job id. */
  create(submission: VendorSubmission, fileId: string | null, call: VendorCall): Promise<string>;
  /** The vendor job tagged `tag`, created no earlier than `since` (unix ms, minus slack), or null. */
  findByTag(tag: string, since: number, call: VendorCall): Promise<string | null>;
  poll(vendorId: string, call: VendorCall): Promise<VendorProgress>;
  /** Every result of an ended job, streamed (memory stays flat in the job's size). */
  results(vendorId: string, progress: { resultRef: unknown; ended: VendorEnd }, call: VendorCall): AsyncIterable<VendorResult>;
  cancel(vendorId: string, call: VendorCall): Promise<void>;
  close(): Promise<void>;
}
