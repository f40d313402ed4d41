import type { NativeBatchApi, NativeRequestLine, VendorCall, VendorEnd, VendorLimits, VendorProgress, VendorResult, VendorSubmission } from "./native-api.js";
import { VendorError } from "./native-api.js";
import { VendorBatches, versionRoot } from "./vendor-http.js";

/**
 * Gemini Batch Mode limits as OpenBatch uses it: a job's requests go inline up to 20 MB (Gemini's inline limit,
 * GEMINI_INLINE_MAX_BYTES), and as an uploaded JSONL file up to 2 GB (Gemini's input file limit) past that.
 */
export const GEMINI_LIMITS: VendorLimits = { maxRequests: 100_000, maxBytes: 2 * 1024 * 1024 * 1024 };

/** Largest job sent inline, bytes (Gemini: "inline requests: total request size under 20 MB"); larger ones go as a file. */
export const GEMINI_INLINE_MAX_BYTES = 20 * 1024 * 1024;

/**
 * Bytes per resumable-upload request: a multiple of Google's 256 KiB chunk granularity (every chunk but the last must
 * be one), 8 MiB as `@google/genai` sends them, so memory stays flat in the file's size.
 */
const UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024;

type Json = Record<string, unknown>;

/** How far back a tag lookup pages through the vendor's batches (newest first) from the job's creation. */
const LOOKUP_SLACK_MS = 10 * 60_000;

/** `google.rpc.Code` → the HTTP status Google maps it to (a batch result carries a Status, not an HTTP answer). */
const HTTP_OF: Record<number, [number, string]> = {
  1: [499, "CANCELLED"],
  3: [400, "INVALID_ARGUMENT"],
  4: [504, "DEADLINE_EXCEEDED"],
  5: [404, "NOT_FOUND"],
  7: [403, "PERMISSION_DENIED"],
  8: [429, "RESOURCE_EXHAUSTED"],
  9: [400, "FAILED_PRECONDITION"],
  12: [501, "UNIMPLEMENTED"],
  13: [500, "INTERNAL"],
  14: [503, "UNAVAILABLE"],
  16: [401, "UNAUTHENTICATED"],
};

const ENDS: Record<string, VendorEnd> = {
  BATCH_STATE_SUCCEEDED: "completed",
  JOB_STATE_SUCCEEDED: "completed",
  BATCH_STATE_FAILED: "failed",
  JOB_STATE_FAILED: "failed",
  BATCH_STATE_CANCELLED: "cancelled",
  JOB_STATE_CANCELLED: "cancelled",
  BATCH_STATE_EXPIRED: "expired",
  JOB_STATE_EXPIRED: "expired",
};

/**
 * Gemini Batch Mode: `POST {baseURL}/v1beta/models/{model}:batchGenerateContent` (`:asyncBatchEmbedContent` for
 * embeddings) with the batch's `displayName` set to our job id (the tag a lookup after a crash searches
 * `GET /v1beta/batches` for). A job of at most `inlineMaxBytes` goes inline, each request
 * `{request, metadata:{key: <our custom id>}}`; a larger one is first uploaded as a JSONL file of `{key, request}`
 * lines with Google's resumable protocol (`POST {origin}/upload/v1beta/files`: `start`, then 8 MiB `upload` chunks,
 * the last with `finalize`) and created with `inputConfig.fileName`. Poll the Operation `GET /v1beta/batches/{id}`;
 * results from its inlined responses, or its `responsesFile` downloaded from
 * `{origin}/download/v1beta/files/{id}:download?alt=media`; cancel with `POST /v1beta/batches/{id}:cancel`.
 * `baseURL` is the origin (a trailing `/v1beta` is tolerated).
 */
export class GeminiBatches extends VendorBatches implements NativeBatchApi {
  readonly vendor = "gemini" as const;
  readonly format = "gemini" as const;
  readonly taggable = true;
  private readonly origin: string;
  private readonly root: string;

  constructor(
    name: string,
    baseURL: string,
    apiKey: string | undefined,
    headers: Record<string, string>,
    limits: VendorLimits,
    timeoutMs: number,
    /** Largest job sent inline, bytes (as counted by the runner: bodies plus `lineOverhead`); larger ones are uploaded as a file. */
    private readonly inlineMaxBytes: number = GEMINI_INLINE_MAX_BYTES,
    /** Bytes per upload request (a multiple of 256 KiB for Google; smaller only in tests). */
    private readonly uploadChunkBytes: number = UPLOAD_CHUNK_BYTES,
  ) {
    super(name, apiKey, headers, limits, timeoutMs);
    this.origin = new URL(baseURL).origin;
    this.root = versionRoot(baseURL, "v1beta");
  }

  lineOverhead(line: NativeRequestLine): number {
    return line.customId.length + 48;
  }

  protected keyHeader(key: string): Record<string, string> {
    return { "x-goog-api-key": key };
  }

  /**
   * Uploads a job larger than `inlineMaxBytes` as a JSONL file of `{"key", "request"}` lines (Google's resumable
   * protocol, streamed in 8 MiB chunks; the file's displayName is `<tag>.jsonl`). A failed chunk fails the whole
   * upload (VendorError, retryable as its status says): the runner uploads again from the start, in a new session.
   * @returns the file's name (`files/…`), or null for a job that goes inline (nothing uploaded).
   */
  async upload(s: VendorSubmission, call: VendorCall): Promise<string | null> {
    if (s.bytes === undefined || s.bytes <= this.inlineMaxBytes) return null;
    const start = await this.http.call(
      "POST",
      `${this.origin}/upload/v1beta/files`,
      this.auth(call, {
        "content-type": "application/json",
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-type": "application/jsonl",
      }),
      JSON.stringify({ file: { displayName: `${s.tag}.jsonl`, mimeType: "application/jsonl" } }),
      call.signal,
    );
    const uploadUrl = start.headers["x-goog-upload-url"];
    if (!uploadUrl) throw new VendorError(`The file upload's start answered no x-goog-upload-url (status ${start.status}).`, null, true);
    let offset = 0;
    const send = async (chunk: Buffer, last: boolean) => {
      const answer = await this.http.call(
        "POST",
        uploadUrl,
        this.auth(call, { "content-type": "application/octet-stream", "x-goog-upload-command": last ? "upload, finalize" : "upload", "x-goog-upload-offset": String(offset) }),
        (async function* () {
          yield chunk;
        })(),
        call.signal,
      );
      offset += chunk.length;
      return answer;
    };
    let pending: Buffer[] = [];
    let size = 0;
    for await (const l of s.lines()) {
      const line = Buffer.from(`{"key":${JSON.stringify(l.customId)},"request":${l.body}}\n`, "utf8");
      pending.push(line);
      size += line.length;
      while (size > this.uploadChunkBytes) {
        // Keep at least one byte back, so the last request (finalize) is never empty.
        const all = Buffer.concat(pending);
        await send(all.subarray(0, this.uploadChunkBytes), false);
        pending = [all.subarray(this.uploadChunkBytes)];
        size = all.length - this.uploadChunkBytes;
      }
    }
    const final = await send(Buffer.concat(pending), true);
    let name: unknown;
    try {
      const body = JSON.parse(final.text) as { file?: { name?: unknown }; name?: unknown };
      name = body.file?.name ?? body.name;
    } catch {
      name = undefined;
    }
    if (typeof name !== "string" || !name.startsWith("files/")) throw new VendorError(`The file upload answered no file name: ${final.text.slice(0, 200)}`, null, true);
    return name;
  }

  async create(s: VendorSubmission, fileId: string | null, call: VendorCall): Promise<string> {
    if (!s.model) throw new VendorError("Gemini batches need a model (it goes in the URL); the batch names none.", 400, false);
    const model = s.model.replace(/^models\//, "");
    const method = s.endpoint === "gemini:embedContent" ? "asyncBatchEmbedContent" : "batchGenerateContent";
    const url = `${this.root}/models/${model.split("/").map(encodeURIComponent).join("/")}:${method}`;
    if (fileId) {
      const body = JSON.stringify({ batch: { displayName: s.tag, inputConfig: { fileName: fileId } } });
      const op = await this.http.json("POST", url, this.auth(call, { "content-type": "application/json" }), body, call.signal);
      if (typeof op.name !== "string" || !op.name) throw new VendorError(`Batch create answered no name: ${JSON.stringify(op).slice(0, 200)}`, null, true);
      return op.name;
    }
    async function* body() {
      let text = `{"batch":{"displayName":${JSON.stringify(s.tag)},"inputConfig":{"requests":{"requests":[`;
      let first = true;
      for await (const l of s.lines()) {
        text += `${first ? "" : ","}{"request":${l.body},"metadata":{"key":${JSON.stringify(l.customId)}}}`;
        first = false;
        if (text.length >= 65_536) {
          yield text;
          text = "";
        }
      }
      yield text + "]}}}}";
    }
    const op = await this.http.json("POST", url, this.auth(call, { "content-type": "application/json" }), body(), call.signal);
    const name = typeof op.name === "string" ? op.name : null;
    if (!name) throw new VendorError(`Batch create answered no name: ${JSON.stringify(op).slice(0, 200)}`, null, true);
    return name;
  }

  async findByTag(tag: string, since: number, call: VendorCall): Promise<string | null> {
    let token: string | undefined;
    for (;;) {
      const page = await this.http.json("GET", `${this.root}/batches?pageSize=100${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`, this.auth(call), null, call.signal);
      const ops = Array.isArray(page.operations) ? (page.operations as Json[]) : Array.isArray(page.batches) ? (page.batches as Json[]) : [];
      for (const op of ops) {
        const meta = (op.metadata ?? op) as Json;
        if (meta.displayName === tag && typeof op.name === "string") return op.name;
      }
      const oldest = ops.at(-1);
      const created = Date.parse(String(((oldest?.metadata ?? oldest ?? {}) as Json).createTime ?? ""));
      if (typeof page.nextPageToken !== "string" || !page.nextPageToken || (Number.isFinite(created) && created < since - LOOKUP_SLACK_MS)) return null;
      token = page.nextPageToken;
    }
  }

  private async operation(vendorId: string, call: VendorCall): Promise<Json> {
    return this.http.json("GET", `${this.root}/${vendorId.split("/").map(encodeURIComponent).join("/")}`, this.auth(call), null, call.signal);
  }

  async poll(vendorId: string, call: VendorCall): Promise<VendorProgress> {
    const op = await this.operation(vendorId, call);
    const meta = (op.metadata ?? {}) as Json;
    const state = String(meta.state ?? "BATCH_STATE_PENDING");
    const ended = ENDS[state] ?? (op.done === true ? (op.error ? "failed" : "completed") : null);
    const output = (meta.output ?? ((op.response ?? {}) as Json)) as Json;
    const stats = (meta.batchStats ?? {}) as Json;
    const counts = { completed: Number(stats.successfulRequestCount) || 0, failed: Number(stats.failedRequestCount) || 0 };
    const progress: VendorProgress = { status: state, ended, counts, resultRef: { responsesFile: typeof output.responsesFile === "string" ? output.responsesFile : null } };
    if (ended === "failed") progress.failure = { message: String(((op.error ?? {}) as Json).message ?? "The vendor failed the batch."), lines: [] };
    return progress;
  }

  async *results(vendorId: string, progress: { resultRef: unknown; ended: VendorEnd }, call: VendorCall): AsyncGenerator<VendorResult> {
    const file = ((progress.resultRef ?? {}) as { responsesFile?: string | null }).responsesFile;
    if (file) {
      const url = `${this.origin}/download/v1beta/${file.split("/").map(encodeURIComponent).join("/")}:download?alt=media`;
      for await (const text of this.http.lines(url, this.auth(call), call.signal)) {
        let line: Json;
        try {
          line = JSON.parse(text) as Json;
        } catch {
          continue;
        }
        const r = resultOf(line.key, line, progress.ended);
        if (r) yield r;
      }
      return;
    }
    const op = await this.operation(vendorId, call);
    const meta = (op.metadata ?? {}) as Json;
    const output = (((op.response ?? {}) as Json).inlinedResponses ? (op.response as Json) : ((meta.output ?? {}) as Json)) as Json;
    const list = ((output.inlinedResponses ?? {}) as Json).inlinedResponses;
    for (const entry of Array.isArray(list) ? (list as Json[]) : []) {
      const r = resultOf(((entry.metadata ?? {}) as Json).key, entry, progress.ended);
      if (r) yield r;
    }
  }

  async cancel(vendorId: string, call: VendorCall): Promise<void> {
    await this.http.json("POST", `${this.root}/${vendorId.split("/").map(encodeURIComponent).join("/")}:cancel`, this.auth(call), null, call.signal);
  }
}

/** One inlined response or responses-file line `{response | error}` as a VendorResult (null without our key). */
function resultOf(key: unknown, entry: Json, ended: VendorEnd): VendorResult | null {
  if (typeof key !== "string") return null;
  if (entry.response !== undefined && entry.response !== null) return { kind: "answer", customId: key, status: 200, requestId: null, body: JSON.stringify(entry.response) };
  const error = (entry.error ?? {}) as Json;
  const code = typeof error.code === "number" ? error.code : 13;
  const reasons = (Array.isArray(error.details) ? (error.details as Json[]) : []).map((d) => d.reason);
  // What an expired or cancelled batch never ran: it carries DEADLINE_EXCEEDED / CANCELLED (OpenBatch names why).
  if (reasons.includes("BATCH_EXPIRED") || (ended === "expired" && code === 4)) return { kind: "unrun", customId: key, why: "expired" };
  if (reasons.includes("BATCH_CANCELLED") || (ended === "cancelled" && code === 1)) return { kind: "unrun", customId: key, why: "cancelled" };
  const [status, name] = HTTP_OF[code] ?? [500, "INTERNAL"];
  return { kind: "answer", customId: key, status, requestId: null, body: JSON.stringify({ error: { code: status, message: String(error.message ?? "The request failed."), status: name } }) };
}
