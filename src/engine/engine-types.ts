import type { Endpoint } from "../core/wire-format.js";
import type { Config } from "../core/config.js";
import type { BlobStorage } from "../store/blob-store.js";
import type { RunMode } from "../store/vendor-jobs.js";
import type { FinalizeOptions } from "./finalizer.js";
import type { Log } from "./log.js";
import type { RetentionOptions } from "./retention.js";

/** What a dialect passes to create a batch from an uploaded file (OpenAI `POST /v1/batches`). */
export interface CreateBatchInput {
  input_file_id: unknown;
  endpoint: unknown;
  completion_window: unknown;
  metadata?: unknown;
  /** Our extension: scheduling priority among batches sharing a provider (integer, higher first; default 0). */
  priority?: unknown;
  /** OpenAI `output_expires_after` `{anchor:"created_at", seconds}` for the output and error files (absent: kept). */
  output_expires_after?: unknown;
  dialect: string;
  /** Gateway routing: a provider name/type/preset from `x-openbatch-provider`, and the upstream key to use for this batch. */
  gateway?: { provider: string; apiKey: string | null };
  /** `x-openbatch-batch-mode`: run on the provider's own batch API (native) or send each request (direct); absent: the provider's batchMode. */
  batchMode?: RunMode;
}

/** One request sent inline: its custom_id and its body in the batch endpoint's format. */
export interface InlineRequest {
  custom_id: string;
  body: unknown;
}

/** What a dialect passes to create a batch from inline requests (Anthropic, Gemini, seed 001). */
export interface InlineBatchInput {
  dialect: string;
  endpoint: Endpoint;
  model: string | null;
  name?: string | null;
  description?: string | null;
  metadata?: Record<string, string> | null;
  completion_window?: string;
  requests?: InlineRequest[];
  /** Run at once (Anthropic, Gemini), or wait in `created` for requests and a start call (seed 001). */
  start: boolean;
  gateway?: CreateBatchInput["gateway"];
  batchMode?: CreateBatchInput["batchMode"];
}

/** Engine settings beyond the config file. */
export interface EngineOptions {
  dataDir: string;
  config: Config;
  log?: Log;
  /** Longest idle wait between dispatcher passes, ms (default 250). */
  pollMs?: number;
  /** Where derived model files are cached (default `<dataDir>/cache`). */
  cacheDir?: string;
  /** Expired-file sweep interval and clock (engine/retention.ts). */
  retention?: RetentionOptions;
  /** How result files are written (page limits) and how long a failing finalization is retried (engine/finalizer.ts). */
  finalization?: FinalizeOptions;
  /** Blob storage to use instead of `<dataDir>/files` (tests inject faults with it). */
  blobs?: BlobStorage;
  /**
   * A `postgres://` URL: every table and file in that database, shared with any number of other servers and workers
   * (store/open.ts). Absent: the embedded store in `dataDir`.
   */
  databaseUrl?: string | null;
  /** Run batches in this process (default true); false serves the API only (`openbatch serve --no-dispatch`). */
  dispatch?: boolean;
}
