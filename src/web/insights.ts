import { BATCH_ENDPOINTS, isTerminal, type BatchEndpoint, type BatchView, type ItemState } from "../core/batch.js";
import { invalidRequest } from "../core/errors.js";
import { costOf, priceOf, type CostEstimate } from "../core/pricing.js";
import { isValidationError, RequestLineValidator } from "../core/request-line.js";
import type { Engine } from "../engine/engine.js";
import { requestTokens } from "../engine/token-cost.js";
import type { FinishedItem } from "../store/store.js";

/*
 * What the dashboard computes from engine operations for its pages: list filters, rate and ETA, the timeline, item
 * search by custom_id, errors grouped by cause, and the check of a JSONL file before a batch is made of it. Every
 * read goes through engine.getBatch / listItems (owner-checked) or, for what the engine has no operation for (request
 * bodies, batch statuses without counts), the store after the owner check.
 */

const ALL_ITEM_STATES: readonly ItemState[] = ["queued", "in_flight", "succeeded", "failed", "expired", "cancelled"];
/** Most batches looked at to answer one filtered list page or the counts by status. */
export const MAX_BATCHES_SCANNED = 5000;
/** Most items looked at for one custom_id search or one errors summary. */
export const MAX_ITEMS_SCANNED = 200_000;

/** A batches list filter; every field optional, all given ones must match. */
export interface BatchFilter {
  status?: string;
  dialect?: string;
  provider?: string;
  /** Substring of the model id. */
  model?: string;
  /** `key=value` (exact) or `key` (present). */
  metadata?: string;
}

/** A batch as the dashboard lists it: the engine's view, its rate and ETA. */
export interface BatchRow extends BatchView {
  /** Items finished per second: lately while running (last 30 s), else on average since it started; null before. */
  rate: number | null;
  /** Seconds until every item is done at `rate`; null when unknown or ended. */
  eta_s: number | null;
}

/** One status change of a batch, unix ms. */
export interface TimelineEntry {
  status: string;
  at: number;
}

/** Adds rate and ETA to a view. @param recent the sampler's recent rate (items/s), or null. */
export function rowOf(view: BatchView, recent: number | null, now = Date.now()): BatchRow {
  const c = view.request_counts;
  const finished = c.completed + c.failed + c.expired + c.cancelled;
  const end = view.completed_at ?? view.failed_at ?? view.expired_at ?? view.cancelled_at ?? view.finalizing_at ?? now;
  const average = view.in_progress_at !== null && end > view.in_progress_at ? (finished * 1000) / (end - view.in_progress_at) : null;
  const running = !isTerminal(view.status);
  const rate = running && recent !== null ? recent : average;
  const eta = running && rate !== null && rate > 0 && c.pending > 0 ? c.pending / rate : null;
  return { ...view, rate, eta_s: eta };
}

/** The status changes of a batch, in time order (from its timestamps). */
export function timelineOf(b: BatchView): TimelineEntry[] {
  const entries: [string, number | null][] = [
    [b.input_file_id ? "validating" : "created", b.created_at],
    ["in_progress", b.in_progress_at],
    ["cancelling", b.cancelling_at],
    ["finalizing", b.finalizing_at],
    ["completed", b.completed_at],
    ["failed", b.failed_at],
    ["expired", b.expired_at],
    ["cancelled", b.cancelled_at],
  ];
  return entries.filter((e): e is [string, number] => e[1] !== null).map(([status, at]) => ({ status, at })).sort((x, y) => x.at - y.at);
}

/** Parses a filter from query parameters. @throws OpenBatchError 400 for an unknown status or empty metadata key. */
export function filterOf(q: Record<string, unknown>): BatchFilter {
  const str = (k: string) => (typeof q[k] === "string" && q[k] !== "" ? (q[k] as string) : undefined);
  const f: BatchFilter = { status: str("status"), dialect: str("dialect"), provider: str("provider"), model: str("model"), metadata: str("metadata") };
  const statuses: readonly string[] = ["created", "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"];
  if (f.status && !statuses.includes(f.status)) throw invalidRequest(`Unknown status ${JSON.stringify(f.status)}: expected one of ${statuses.join(", ")}.`, "status");
  if (f.metadata !== undefined && f.metadata.split("=")[0] === "") throw invalidRequest("metadata filter must be key=value or key.", "metadata");
  return f;
}

function matches(b: { status: string; dialect: string; provider: string | null; model: string | null; metadata: Record<string, string> | null }, f: BatchFilter): boolean {
  if (f.status && b.status !== f.status) return false;
  if (f.dialect && b.dialect !== f.dialect) return false;
  if (f.provider && b.provider !== f.provider) return false;
  if (f.model && !(b.model ?? "").includes(f.model)) return false;
  if (f.metadata) {
    const at = f.metadata.indexOf("=");
    const key = at < 0 ? f.metadata : f.metadata.slice(0, at);
    if (!b.metadata || !Object.hasOwn(b.metadata, key)) return false;
    if (at >= 0 && b.metadata[key] !== f.metadata.slice(at + 1)) return false;
  }
  return true;
}

/**
 * One page of `caller`'s batches (every batch when null) matching `filter`, newest first, after batch id `after`.
 * Looks at up to 5,000 batches per page; `next` is the cursor to go on from (null at the end).
 */
export async function listRows(
  engine: Engine,
  caller: string | null,
  filter: BatchFilter,
  q: { after?: string; limit: number },
  recent: (id: string) => number | null,
): Promise<{ data: BatchRow[]; next: string | null; scanned: number }> {
  const found: string[] = [];
  let after = q.after;
  let scanned = 0;
  for (;;) {
    const page = await engine.store.listBatches({ owner: caller, after, limit: 200 });
    for (const b of page.data) {
      scanned++;
      after = b.id;
      if (matches(b, filter)) found.push(b.id);
      if (found.length === q.limit) break;
    }
    if (found.length === q.limit) break;
    if (!page.has_more) {
      after = undefined;
      break;
    }
    if (scanned >= MAX_BATCHES_SCANNED) break;
  }
  const now = Date.now();
  const data = await Promise.all(found.map(async (id) => rowOf(await engine.getBatch(caller, id), recent(id), now)));
  return { data, next: after ?? null, scanned };
}

/** Counts of `caller`'s batches by status and by dialect, over its newest 5,000. */
export async function batchCounts(engine: Engine, caller: string | null): Promise<{ by_status: Record<string, number>; by_dialect: Record<string, number>; truncated: boolean }> {
  const by_status: Record<string, number> = {};
  const by_dialect: Record<string, number> = {};
  let after: string | undefined;
  let scanned = 0;
  for (;;) {
    const page = await engine.store.listBatches({ owner: caller, after, limit: 500 });
    for (const b of page.data) {
      by_status[b.status] = (by_status[b.status] ?? 0) + 1;
      by_dialect[b.dialect] = (by_dialect[b.dialect] ?? 0) + 1;
    }
    scanned += page.data.length;
    if (!page.has_more || page.data.length === 0) return { by_status, by_dialect, truncated: false };
    if (scanned >= MAX_BATCHES_SCANNED) return { by_status, by_dialect, truncated: true };
    after = page.data[page.data.length - 1]!.id;
  }
}

/** An item with its request and its answer, for the side-by-side view. JSON bodies are parsed when they parse. */
export interface ItemDetail {
  id: string;
  line: number;
  custom_id: string;
  state: ItemState;
  status_code: number | null;
  request: unknown;
  response: unknown;
  error: { code: string | null; message: string | null } | null;
}

const parsed = (text: string | null): unknown => {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/**
 * Items of a batch whose custom_id contains `query` (every item when empty), optionally in one state, in input order,
 * with their request bodies. Scans up to 200,000 items. @throws OpenBatchError 404 (missing or someone else's batch).
 */
export async function searchItems(
  engine: Engine,
  caller: string | null,
  batchId: string,
  q: { query: string; state?: ItemState; limit: number },
): Promise<{ data: ItemDetail[]; truncated: boolean; scanned: number }> {
  await engine.getBatch(caller, batchId);
  const hits: FinishedItem[] = [];
  let after: string | undefined;
  let scanned = 0;
  let truncated = false;
  for (;;) {
    const page = await engine.listItems(caller, batchId, { after, limit: 1000, states: q.state ? [q.state] : undefined });
    for (const it of page.data) {
      scanned++;
      if (it.custom_id.includes(q.query)) hits.push(it);
      if (hits.length > q.limit) break;
    }
    if (hits.length > q.limit) {
      truncated = true;
      break;
    }
    if (!page.has_more || page.data.length === 0) break;
    if (scanned >= MAX_ITEMS_SCANNED) {
      truncated = true;
      break;
    }
    after = page.data[page.data.length - 1]!.id;
  }
  const data: ItemDetail[] = [];
  for (const it of hits.slice(0, q.limit)) {
    const [req] = await engine.store.pageRequests(batchId, it.line - 1, 1, ALL_ITEM_STATES);
    data.push({
      id: it.id,
      line: it.line,
      custom_id: it.custom_id,
      state: it.state,
      status_code: it.status_code,
      request: req && req.line === it.line ? parsed(req.body) : null,
      response: parsed(it.response_body),
      error: it.error_code !== null || it.error_message !== null ? { code: it.error_code, message: it.error_message } : null,
    });
  }
  return { data, truncated, scanned };
}

/** Failed items sharing a cause: an error code (batch_expired, upstream_timeout…) or an upstream HTTP status. */
export interface ErrorGroup {
  /** `code:<error code>` or `http:<status>`. */
  key: string;
  code: string | null;
  status_code: number | null;
  state: ItemState;
  count: number;
  /** Up to 3 examples: custom_id and the message (ours, or the upstream body's error.message). */
  samples: { custom_id: string; message: string }[];
}

/** The failed, expired and cancelled items of a batch grouped by cause, largest group first (scans up to 200,000). */
export async function errorGroups(engine: Engine, caller: string | null, batchId: string): Promise<{ groups: ErrorGroup[]; scanned: number; truncated: boolean }> {
  const groups = new Map<string, ErrorGroup>();
  let after: string | undefined;
  let scanned = 0;
  for (;;) {
    const page = await engine.listItems(caller, batchId, { after, limit: 1000, states: ["failed", "expired", "cancelled"] });
    for (const it of page.data) {
      scanned++;
      const key = it.error_code ? `code:${it.error_code}` : it.status_code !== null ? `http:${it.status_code}` : `state:${it.state}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { key, code: it.error_code, status_code: it.status_code, state: it.state, count: 0, samples: [] }));
      g.count++;
      if (g.samples.length < 3) g.samples.push({ custom_id: it.custom_id, message: messageOf(it) });
    }
    if (!page.has_more || page.data.length === 0) return { groups: sorted(groups), scanned, truncated: false };
    if (scanned >= MAX_ITEMS_SCANNED) return { groups: sorted(groups), scanned, truncated: true };
    after = page.data[page.data.length - 1]!.id;
  }
}

const sorted = (m: Map<string, ErrorGroup>) => [...m.values()].sort((a, b) => b.count - a.count);

function messageOf(it: FinishedItem): string {
  if (it.error_message) return it.error_message;
  const body = parsed(it.response_body) as { error?: { message?: unknown } | string; message?: unknown } | string | null;
  if (body && typeof body === "object") {
    if (typeof body.error === "string") return body.error;
    if (body.error && typeof body.error.message === "string") return body.error.message;
    if (typeof body.message === "string") return body.message;
  }
  return typeof body === "string" ? body.slice(0, 500) : `HTTP ${it.status_code ?? "?"}`;
}

/** What checking a JSONL file found, before a batch is made of it. Costs in USD (output priced at its bound). */
export interface FileCheck {
  /** Non-blank lines. */
  requests: number;
  bytes: number;
  /** The endpoint the first line's `url` names (every line must name it), or null. */
  endpoint: BatchEndpoint | null;
  model: string | null;
  provider: string | null;
  /** How a batch of it would run: the provider's batchMode ("direct", "native", "auto"). */
  mode: string;
  input_tokens: number;
  max_output_tokens: number;
  /** Regular price (one call at a time, direct) vs batch price (native vendor batch, or what the discount saves); null without a price. */
  cost: CostEstimate | null;
  /** Up to 100 errors with their 1-based lines; a file with any cannot be made a batch. */
  errors: { line: number | null; code: string; message: string; param: string | null }[];
}

/**
 * Checks a JSONL batch input as ingest would (core/request-line.ts: JSON, custom_id, method, url, body, one model,
 * duplicates), counts tokens with the real tokenizer, and prices it at the config's `prices`.
 */
export function checkFile(engine: Engine, text: string, maxLines: number): FileCheck {
  const lines = text.split(/\r?\n/);
  let endpoint: BatchEndpoint | null = null;
  for (const l of lines) {
    if (!l.trim()) continue;
    try {
      const url = (JSON.parse(l) as { url?: unknown }).url;
      if (BATCH_ENDPOINTS.includes(url as BatchEndpoint)) endpoint = url as BatchEndpoint;
    } catch {
      // named by the validator below
    }
    break;
  }
  const validator = new RequestLineValidator(endpoint ?? "/v1/chat/completions", maxLines);
  const errors: FileCheck["errors"] = [];
  let input = 0;
  let maxOutput = 0;
  lines.forEach((l, i) => {
    if (errors.length >= 100) return;
    const r = validator.check(l, i + 1);
    if (r === null) return;
    if (isValidationError(r)) {
      errors.push({ line: r.line, code: r.code, message: r.message, param: r.param });
      return;
    }
    const t = requestTokens(r.body);
    input += t.input;
    maxOutput += t.maxOutput;
  });
  if (validator.count === 0) errors.push({ line: null, code: "empty_file", message: "The file holds no request lines.", param: null });
  else if (endpoint === null && errors.every((e) => e.line !== 1)) {
    errors.unshift({ line: 1, code: "invalid_value", message: `The first line's url must be one of ${BATCH_ENDPOINTS.join(", ")}.`, param: "url" });
  }
  const model = validator.batchModel;
  const provider = engine.providers.routeModel(model);
  const price = priceOf(engine.prices, model);
  return {
    requests: validator.count,
    bytes: Buffer.byteLength(text),
    endpoint,
    model,
    provider,
    mode: (provider && (engine.providers.configOf(provider) as { batchMode?: string } | undefined)?.batchMode) ?? "auto",
    input_tokens: input,
    max_output_tokens: maxOutput,
    cost: price ? costOf(price, { input, output: maxOutput }) : null,
    errors,
  };
}

