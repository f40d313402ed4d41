import { randomBytes } from "node:crypto";
import type { VendorCall, VendorEnd, VendorLimits, VendorProgress, VendorResult, VendorSubmission, NativeBatchApi, NativeRequestLine } from "./native-api.js";
import { VendorError } from "./native-api.js";
import { VendorBatches } from "./vendor-http.js";

/** OpenAI's Batch API limits: 50,000 requests and a 200 MB input file per batch. */
export const OPENAI_LIMITS: VendorLimits = { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024 };

/** The batch metadata key that carries our job id, so a job created before a crash is found again. */
export const OPENAI_TAG_KEY = "openbatch_job";

/** How far back a tag lookup pages through the vendor's batches (newest first) from the job's creation. */
const LOOKUP_SLACK_MS = 10 * 60_000;

type Json = Record<string, unknown>;

/**
 * The OpenAI Batch API on any OpenAI-compatible server that has one (OpenAI, or another OpenBatch): the input is
 * uploaded as a JSONL file (`POST {baseURL}/files`, purpose batch, streamed as multipart), the batch created with
 * `POST {baseURL}/batches` (completion_window 24h, metadata `openbatch_job: <job id>`), polled with
 * `GET /batches/{id}`, its output and error files downloaded from `GET /files/{id}/content`, and cancelled with
 * `POST /batches/{id}/cancel`. `baseURL` ends in the API root ("https://api.openai.com/v1").
 */
export class OpenAIBatches extends VendorBatches implements NativeBatchApi {
  readonly vendor = "openai" as const;
  readonly format = "openai" as const;
  readonly taggable = true;
  private readonly base: string;

  constructor(
    name: string,
    baseURL: string,
    apiKey: string | undefined,
    headers: Record<string, string>,
    limits: VendorLimits,
    timeoutMs: number,
  ) {
    super(name, apiKey, headers, limits, timeoutMs);
    this.base = baseURL.replace(/\/+$/, "");
  }

  lineOverhead(line: NativeRequestLine): number {
    return line.customId.length + 80;
  }

  protected keyHeader(key: string): Record<string, string> {
    return { authorization: `Bearer ${key}` };
  }

  async upload(s: VendorSubmission, call: VendorCall): Promise<string> {
    const boundary = "openbatch-" + randomBytes(12).toString("hex");
    async function* body() {
      yield `--${boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`;
      yield `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${s.tag}.jsonl"\r\ncontent-type: application/jsonl\r\n\r\n`;
      let text = "";
      for await (const l of s.lines()) {
        text += `{"custom_id":${JSON.stringify(l.customId)},"method":"POST","url":${JSON.stringify(s.endpoint)},"body":${l.body}}\n`;
        if (text.length >= 65_536) {
          yield text;
          text = "";
        }
      }
      yield text + `\r\n--${boundary}--\r\n`;
    }
    const file = await this.http.json("POST", `${this.base}/files`, this.auth(call, { "content-type": `multipart/form-data; boundary=${boundary}` }), body(), call.signal);
    if (typeof file.id !== "string") throw new VendorError(`The file upload answered no id: ${JSON.stringify(file).slice(0, 200)}`, null, true);
    return file.id;
  }

  async create(s: VendorSubmission, fileId: string | null, call: VendorCall): Promise<string> {
    const body = JSON.stringify({ input_file_id: fileId, endpoint: s.endpoint, completion_window: "24h", metadata: { [OPENAI_TAG_KEY]: s.tag } });
    const batch = await this.http.json("POST", `${this.base}/batches`, this.auth(call, { "content-type": "application/json" }), body, call.signal);
    if (typeof batch.id !== "string") throw new VendorError(`Batch create answered no id: ${JSON.stringify(batch).slice(0, 200)}`, null, true);
    return batch.id;
  }

  async findByTag(tag: string, since: number, call: VendorCall): Promise<string | null> {
    let after: string | undefined;
    for (;;) {
      const page = await this.http.json("GET", `${this.base}/batches?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`, this.auth(call), null, call.signal);
      const data = Array.isArray(page.data) ? (page.data as Json[]) : [];
      for (const b of data) {
        if ((b.metadata as Json | null | undefined)?.[OPENAI_TAG_KEY] === tag && typeof b.id === "string") return b.id;
      }
      const oldest = data.at(-1);
      // Newest first: once a page reaches batches older than the job, it was never created.
      if (!page.has_more || !oldest || (typeof oldest.created_at === "number" && oldest.created_at * 1000 < since - LOOKUP_SLACK_MS)) return null;
      after = String(oldest.id);
    }
  }

  async poll(vendorId: string, call: VendorCall): Promise<VendorProgress> {
    const b = await this.http.json("GET", `${this.base}/batches/${encodeURIComponent(vendorId)}`, this.auth(call), null, call.signal);
    const status = String(b.status);
    const ended: VendorEnd | null = status === "completed" || status === "failed" || status === "expired" || status === "cancelled" ? status : null;
    const counts = (b.request_counts ?? {}) as Json;
    const progress: VendorProgress = {
      status,
      ended,
      counts: { completed: Number(counts.completed) || 0, failed: Number(counts.failed) || 0 },
      resultRef: { output_file_id: b.output_file_id ?? null, error_file_id: b.error_file_id ?? null },
    };
    if (ended === "failed") {
      const data = Array.isArray((b.errors as Json | null)?.data) ? (((b.errors as Json).data as Json[]) ?? []) : [];
      const lines = data
        .filter((e) => typeof e.line === "number")
        .map((e) => ({ index: (e.line as number) - 1, code: String(e.code ?? "vendor_batch_failed"), message: String(e.message ?? "") }));
      const message = data.map((e) => (typeof e.line === "number" ? `line ${e.line}: ${e.message}` : String(e.message))).join("; ") || "The vendor failed the batch.";
      progress.failure = { message, lines };
    }
    return progress;
  }

  async *results(_vendorId: string, progress: { resultRef: unknown }, call: VendorCall): AsyncGenerator<VendorResult> {
    const ref = (progress.resultRef ?? {}) as { output_file_id?: string | null; error_file_id?: string | null };
    for (const fileId of [ref.output_file_id, ref.error_file_id]) {
      if (!fileId) continue;
      for await (const text of this.http.lines(`${this.base}/files/${encodeURIComponent(fileId)}/content`, this.auth(call), call.signal)) {
        const r = parseLine(text);
        if (r) yield r;
      }
    }
  }

  async cancel(vendorId: string, call: VendorCall): Promise<void> {
    await this.http.json("POST", `${this.base}/batches/${encodeURIComponent(vendorId)}/cancel`, this.auth(call), null, call.signal);
  }
}

/** One output/error line `{custom_id, response:{status_code, request_id, body}|null, error:{code,message}|null}`. */
function parseLine(text: string): VendorResult | null {
  let line: Json;
  try {
    line = JSON.parse(text) as Json;
  } catch {
    return null;
  }
  const customId = typeof line.custom_id === "string" ? line.custom_id : null;
  if (!customId) return null;
  const response = line.response as Json | null | undefined;
  if (response && typeof response.status_code === "number") {
    return { kind: "answer", customId, status: response.status_code, requestId: typeof response.request_id === "string" ? response.request_id : null, body: JSON.stringify(response.body ?? null) };
  }
  const error = (line.error ?? {}) as Json;
  const code = String(error.code ?? "vendor_error");
  if (code === "batch_expired") return { kind: "unrun", customId, why: "expired" };
  if (code === "batch_cancelled") return { kind: "unrun", customId, why: "cancelled" };
  return { kind: "error", customId, code, message: String(error.message ?? "The vendor reported an error without a message.") };
}
