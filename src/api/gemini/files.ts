import { publicOrigin } from "../public-url.js";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { invalidRequest, notFound, OpenBatchError } from "../../core/errors.js";
import { isoTime } from "../../core/time.js";
import type { Engine } from "../../engine/engine.js";
import type { Caller, PiecewiseUpload } from "../../engine/files.js";
import type { FileRecord } from "../../store/store.js";
import { parseQuery } from "../query.js";
import { batchName, batchOfResponsesFile, GEMINI, isDone, renderResponseLine } from "./render.js";
import { apiVersionOf, type GeminiApiVersion } from "./routing.js";

/**
 * Where URLs we hand out point: this server (`publicOrigin`: the configured `publicURL`, else the address the
 * connection reached, never the client's Host header), under the API version the caller used (`/v1` for
 * `@google/genai` 3.x, `/v1beta` for 2.x), so a client follows them on the version it speaks.
 */
interface UrlBase {
  origin: string;
  version: GeminiApiVersion;
}
const urlBase = (req: FastifyRequest): UrlBase => ({ origin: publicOrigin(req), version: apiVersionOf(req) });
const fileUri = (b: UrlBase, id: string) => `${b.origin}/${b.version}/files/${id}`;
const downloadUri = (b: UrlBase, id: string) => `${b.origin}/download/${b.version}/files/${id}:download?alt=media`;

/** A MIME type for a stored file, from its name (the declared one is not stored). */
function mimeOf(filename: string): string {
  const ext = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
  switch (ext) {
    case "jsonl":
    case "ndjson":
      return "application/jsonl";
    case "json":
      return "application/json";
    case "txt":
      return "text/plain";
    case "csv":
      return "text/csv";
    default:
      return "application/octet-stream";
  }
}

/** A Gemini File object for a stored file; `uri` and `downloadUri` under `base`. */
function renderFile(f: FileRecord, base: UrlBase, mimeType?: string) {
  return {
    name: `files/${f.id}`,
    displayName: f.filename,
    mimeType: mimeType ?? mimeOf(f.filename),
    sizeBytes: String(f.bytes),
    createTime: isoTime(f.created_at),
    updateTime: isoTime(f.created_at),
    ...(f.expires_at ? { expirationTime: isoTime(f.expires_at) } : {}),
    uri: fileUri(base, f.id),
    downloadUri: downloadUri(base, f.id),
    state: "ACTIVE",
    source: f.purpose === "batch_output" ? "GENERATED" : "UPLOADED",
  };
}

const listQuery = z.object({
  pageSize: z.coerce.number().int().min(1).max(100).default(10),
  pageToken: z.string().optional(),
});

/** A file id from a path segment: `file-…`, `files/file-…`, optionally ending in `:download`. */
function parseFileSegment(segment: string): { id: string; download: boolean } {
  const m = /^(?:files\/)?([^/:]+)(:download)?$/.exec(segment);
  if (!m) throw notFound(`File files/${segment} not found.`, "name");
  return { id: m[1]!, download: m[2] !== undefined };
}

/**
 * Gemini Files as `@google/genai` uses them: resumable uploads at `/upload/v1beta/files` (streamed to disk), metadata
 * `GET /v1beta/files/{id}`, list, delete, and downloads at `/download/v1beta/files/{id}:download?alt=media` (or
 * `/v1beta/files/{id}:download`); the same under `/v1` for Gemini callers (the server rewrites those URLs onto these
 * routes, see routing.ts). A batch's results are also the generated file `files/responses-<batch id>` (a file-input
 * batch names it as its output, and so do listings for inline batches), streamed from the store in input order as
 * `{"key", "response"|"error"}` lines.
 */
export const geminiFilesRoutes: FastifyPluginAsync<{ engine: Engine; uploads?: UploadSessionOptions }> = async (app, { engine, uploads }) => {
  await app.register(uploadRoutes, { engine, uploads });

  /** The batch behind a responses file, when `id` names one of a Gemini batch this caller can see. */
  const responsesBatch = async (caller: Caller, id: string) => {
    const batchId = batchOfResponsesFile(id);
    if (!batchId) return null;
    const batch = await engine.getBatch(caller, batchId).catch(() => null);
    if (!batch || batch.dialect !== GEMINI) throw notFound(`File files/${id} not found.`, "name");
    return batch;
  };

  const download = async (req: FastifyRequest, reply: FastifyReply, id: string) => {
    const batch = await responsesBatch(req.caller, id);
    if (batch) {
      const caller = req.caller;
      const lines = Readable.from(
        (async function* () {
          for await (const item of engine.allItems(caller, batch.id, ["succeeded", "failed", "expired", "cancelled"])) yield renderResponseLine(item);
        })(),
        // Bytes, not 16 objects, wait for a slow client: with large results that bounds what is held to about one.
        { objectMode: false },
      );
      return reply.header("content-type", "application/jsonl").send(lines);
    }
    const { file, stream } = await engine.files.content(req.caller, id).catch(rethrowNotFound(id));
    return reply.header("content-type", mimeOf(file.filename)).header("content-length", String(file.bytes)).send(stream);
  };

  const metadata = async (req: FastifyRequest, id: string) => {
    const batch = await responsesBatch(req.caller, id);
    if (batch) {
      return {
        name: `files/${id}`,
        displayName: `${batch.name ?? batchName(batch.id)} responses`,
        mimeType: "application/jsonl",
        createTime: isoTime(batch.created_at),
        updateTime: isoTime(batch.completed_at ?? batch.expired_at ?? batch.cancelled_at ?? batch.created_at),
        uri: fileUri(urlBase(req), id),
        downloadUri: downloadUri(urlBase(req), id),
        state: isDone(batch) ? "ACTIVE" : "PROCESSING",
        source: "GENERATED",
      };
    }
    return renderFile(await engine.files.get(req.caller, id).catch(rethrowNotFound(id)), urlBase(req));
  };

  app.get<{ Params: { name: string } }>("/v1beta/files/:name", async (req, reply) => {
    const { id, download: isDownload } = parseFileSegment(req.params.name);
    return isDownload ? download(req, reply, id) : metadata(req, id);
  });

  app.get<{ Params: { name: string } }>("/download/v1beta/files/:name", async (req, reply) => {
    const { id } = parseFileSegment(req.params.name);
    return download(req, reply, id);
  });

  app.get("/v1beta/files", async (req) => {
    const q = parseQuery(listQuery, req.query);
    const page = await engine.files.list(req.caller, { order: "desc", after: q.pageToken, limit: q.pageSize });
    const base = urlBase(req);
    const files = page.data.map((f) => renderFile(f, base));
    return page.has_more && files.length > 0 ? { files, nextPageToken: page.data.at(-1)!.id } : { files };
  });

  app.delete<{ Params: { name: string } }>("/v1beta/files/:name", async (req) => {
    const { id, download: isDownload } = parseFileSegment(req.params.name);
    if (isDownload) throw notFound(`Unknown method: DELETE ${req.originalUrl.split("?")[0]}.`);
    if (await responsesBatch(req.caller, id)) {
      throw new OpenBatchError("conflict", `files/${id} holds a batch's responses; delete the batch instead.`, { param: "name" });
    }
    await engine.files.delete(req.caller, id).catch(rethrowNotFound(id));
    return {};
  });
};

const rethrowNotFound = (id: string) => (err: unknown) => {
  if (err instanceof OpenBatchError && err.kind === "not_found") throw notFound(`File files/${id} not found.`, "name");
  throw err;
};


// ---------------------------------------------------------------------------------------------------------------
// Resumable uploads

/**
 * Limits on resumable upload sessions. A session lives between a client's `start` and its `finalize` (or `cancel`);
 * while it waits for the next chunk it holds only a few hundred bytes of memory and its `.partial` file, never a file
 * descriptor. All counts are sessions, all times milliseconds.
 */
export interface UploadSessionOptions {
  /**
   * Most unfinished sessions one caller key may hold (default 100); one more `start` answers 429 RESOURCE_EXHAUSTED.
   * With auth off every caller is the same key.
   */
  maxPerCaller?: number;
  /** Most unfinished sessions on the whole server (default 10,000); past it, 429 RESOURCE_EXHAUSTED. */
  maxTotal?: number;
  /** A session with no chunk received for this long is dropped and its `.partial` file deleted (default 1 h). */
  ttlMs?: number;
  /** How often expired sessions are swept (default 60 s, and never less often than `ttlMs`). */
  sweepMs?: number;
}

/** Defaults of UploadSessionOptions. */
export const UPLOAD_SESSION_DEFAULTS: Required<UploadSessionOptions> = { maxPerCaller: 100, maxTotal: 10_000, ttlMs: 60 * 60 * 1000, sweepMs: 60 * 1000 };

/**
 * Fills in and checks UploadSessionOptions.
 * @throws Error naming the option when one is not a positive integer.
 */
export function uploadSessionSettings(options: UploadSessionOptions = {}): Required<UploadSessionOptions> {
  const settings = { ...UPLOAD_SESSION_DEFAULTS, ...options };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`Upload session option ${name} must be a positive integer, got ${String(value)}.`);
  }
  return { ...settings, sweepMs: Math.min(settings.sweepMs, settings.ttlMs) };
}

/** An upload in progress: its chunks are appended to one partial file, each request opening and closing it. */
interface UploadSession {
  id: string;
  /** The key its cap is counted under (the caller, "" with auth off). */
  key: string;
  caller: Caller;
  displayName: string;
  mimeType: string | undefined;
  declaredBytes: number | null;
  upload: PiecewiseUpload;
  /** A chunk is being received; such a session is never expired under it. */
  busy: boolean;
  /** When the session last received something (start or a chunk), unix ms. */
  lastActiveAt: number;
}

/** Largest JSON body of an upload's start request. */
const START_BODY_LIMIT = 1024 * 1024;

const header = (req: FastifyRequest, name: string) => {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
};

async function readSmallBody(req: FastifyRequest): Promise<unknown> {
  let text = "";
  for await (const chunk of req.raw) {
    text += (chunk as Buffer).toString("utf8");
    if (text.length > START_BODY_LIMIT) throw invalidRequest("The upload's start request body is too large.");
  }
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest("The upload's start request body is not valid JSON.");
  }
}

/**
 * The open sessions, counted per caller key and in total, and the timer that expires idle ones. Dropping a session
 * (cancel, failure, expiry, server close) aborts its upload, which deletes its `.partial` file.
 */
class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();
  private readonly perKey = new Map<string, number>();
  /** Aborts still deleting partial files, awaited on close. */
  private readonly aborting = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly settings: Required<UploadSessionOptions>) {
    // unref: an idle sweep never keeps the process alive.
    this.timer = setInterval(() => this.sweep(), settings.sweepMs).unref();
  }

  /** Why a new session for `key` may not open now, or null when it may. */
  refusal(key: string): string | null {
    const { maxPerCaller, maxTotal } = this.settings;
    if ((this.perKey.get(key) ?? 0) >= maxPerCaller) {
      return `Too many unfinished uploads for this API key (the limit is ${maxPerCaller}): finalize or cancel some ('X-Goog-Upload-Command: cancel'), or let them expire after ${this.settings.ttlMs / 1000} s idle.`;
    }
    if (this.sessions.size >= maxTotal) return `Too many unfinished uploads on this server (the limit is ${maxTotal}); try again later.`;
    return null;
  }

  add(s: UploadSession): void {
    this.sessions.set(s.id, s);
    this.perKey.set(s.key, (this.perKey.get(s.key) ?? 0) + 1);
  }

  /** The session `id` when `caller` may use it. */
  get(id: string, caller: Caller): UploadSession | undefined {
    const s = this.sessions.get(id);
    return s && (s.caller === null || s.caller === caller) ? s : undefined;
  }

  /** Forgets a session that finished (its upload is committed by the caller). @returns false when it was already gone. */
  remove(s: UploadSession): boolean {
    if (this.sessions.get(s.id) !== s) return false;
    this.sessions.delete(s.id);
    const n = (this.perKey.get(s.key) ?? 1) - 1;
    if (n > 0) this.perKey.set(s.key, n);
    else this.perKey.delete(s.key);
    return true;
  }

  /** Forgets a session and deletes what it received. Idempotent. */
  drop(s: UploadSession): void {
    this.remove(s);
    const p = s.upload.abort().catch(() => undefined);
    this.aborting.add(p);
    void p.finally(() => this.aborting.delete(p));
  }

  /** Drops every session idle past the TTL (one receiving a chunk is not idle). */
  sweep(now = Date.now()): void {
    for (const s of this.sessions.values()) {
      if (!s.busy && now - s.lastActiveAt >= this.settings.ttlMs) this.drop(s);
    }
  }

  /** Stops the timer and drops every session, waiting until their partial files are deleted. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const s of this.sessions.values()) this.drop(s);
    await Promise.all([...this.aborting]);
  }
}

/** Google's answer past a session cap: 429 `{error:{code, message, status: "RESOURCE_EXHAUSTED"}}`. */
const resourceExhausted = (reply: FastifyReply, message: string) =>
  reply.status(429).send({ error: { code: 429, message, status: "RESOURCE_EXHAUSTED" } });

/**
 * `POST /upload/v1beta/files`, Google's resumable protocol: `X-Goog-Upload-Command: start` (JSON `{file:{displayName,
 * mimeType}}`) answers `x-goog-upload-url`; chunks follow at that URL with `upload` (and `finalize` on the last one)
 * and `X-Goog-Upload-Offset`; `query` and `cancel` are understood too. Each chunk is appended to the upload's partial
 * file, which is opened for that request only; the final answer (`x-goog-upload-status: final`) is `{file:{…}}`.
 * Sessions are capped per caller key and in total (429 RESOURCE_EXHAUSTED past a cap) and expire when idle (see
 * UploadSessionOptions). Request bodies here are raw bytes, so this plugin parses no content type itself.
 */
const uploadRoutes: FastifyPluginAsync<{ engine: Engine; uploads?: UploadSessionOptions }> = async (app, { engine, uploads }) => {
  const sessions = new UploadSessions(uploadSessionSettings(uploads));
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_req, _payload, done) => done(null));
  app.addHook("onClose", () => sessions.close());

  app.post("/upload/v1beta/files", async (req, reply) => {
    const uploadId = (req.query as Record<string, unknown>).upload_id;
    if (typeof uploadId === "string") return chunk(req, reply, uploadId);
    const protocol = header(req, "x-goog-upload-protocol");
    const command = header(req, "x-goog-upload-command")?.toLowerCase();
    if (protocol !== "resumable" || command !== "start") {
      throw invalidRequest("Uploads here use Google's resumable protocol: send 'X-Goog-Upload-Protocol: resumable' and 'X-Goog-Upload-Command: start' first.", "x-goog-upload-protocol");
    }
    const key = req.caller ?? "";
    const refused = sessions.refusal(key);
    if (refused) return resourceExhausted(reply, refused);
    const body = await readSmallBody(req);
    const file = body && typeof body === "object" && "file" in body ? (body as { file: unknown }).file : undefined;
    const meta = file && typeof file === "object" ? (file as Record<string, unknown>) : {};
    const displayName = typeof meta.displayName === "string" && meta.displayName ? meta.displayName : (header(req, "x-goog-upload-file-name") ?? "upload");
    const mimeType = typeof meta.mimeType === "string" ? meta.mimeType : header(req, "x-goog-upload-header-content-type");
    const declared = Number(header(req, "x-goog-upload-header-content-length") ?? meta.sizeBytes ?? NaN);
    // Checked again: other starts may have filled the cap while this body was read.
    const refusedNow = sessions.refusal(key);
    if (refusedNow) return resourceExhausted(reply, refusedNow);
    const id = randomBytes(16).toString("hex");
    sessions.add({
      id,
      key,
      caller: req.caller,
      displayName,
      mimeType,
      declaredBytes: Number.isFinite(declared) && declared >= 0 ? declared : null,
      upload: engine.files.beginPiecewiseUpload(),
      busy: false,
      lastActiveAt: Date.now(),
    });
    return reply
      .header("x-goog-upload-url", `${urlBase(req).origin}/upload/${urlBase(req).version}/files?upload_id=${id}&upload_protocol=resumable`)
      .header("x-goog-upload-status", "active")
      .header("x-goog-upload-chunk-granularity", "262144")
      .send();
  });

  async function chunk(req: FastifyRequest, reply: FastifyReply, uploadId: string) {
    const s = sessions.get(uploadId, req.caller);
    if (!s) throw notFound("No such upload session: it finished, was cancelled, or expired.", "upload_id");
    const commands = (header(req, "x-goog-upload-command") ?? "").toLowerCase().split(",").map((c) => c.trim());
    if (commands.includes("query")) {
      return reply.header("x-goog-upload-status", "active").header("x-goog-upload-size-received", String(s.upload.bytes)).send();
    }
    if (commands.includes("cancel")) {
      sessions.drop(s);
      return reply.header("x-goog-upload-status", "cancelled").send();
    }
    const upload = commands.includes("upload");
    const finalize = commands.includes("finalize");
    if (!upload && !finalize) throw invalidRequest("X-Goog-Upload-Command must be upload, finalize, query or cancel.", "x-goog-upload-command");
    if (s.busy) throw new OpenBatchError("conflict", "Another chunk of this upload is still being received.", { param: "x-goog-upload-offset" });
    const offset = Number(header(req, "x-goog-upload-offset") ?? s.upload.bytes);
    if (offset !== s.upload.bytes) {
      throw invalidRequest(`X-Goog-Upload-Offset is ${offset} but ${s.upload.bytes} bytes were received so far.`, "x-goog-upload-offset");
    }
    s.busy = true;
    try {
      if (upload) await s.upload.append(req.raw);
      s.lastActiveAt = Date.now();
      if (!finalize) return reply.header("x-goog-upload-status", "active").header("x-goog-upload-size-received", String(s.upload.bytes)).send();
      if (s.declaredBytes !== null && s.upload.bytes !== s.declaredBytes) {
        throw invalidRequest(`The upload declared ${s.declaredBytes} bytes but sent ${s.upload.bytes}.`, "x-goog-upload-header-content-length");
      }
      // Gone from the table before the commit, so neither expiry nor a cancel can delete bytes being committed.
      if (!sessions.remove(s)) throw notFound("No such upload session: it was cancelled or expired.", "upload_id");
      const staged = await s.upload.finish();
      const record = await engine.files.commitUpload(s.caller, staged, { filename: s.displayName, purpose: "batch" });
      return reply.header("x-goog-upload-status", "final").send({ file: renderFile(record, urlBase(req), s.mimeType) });
    } catch (err) {
      // A failed chunk ends the upload (a partial file is never kept).
      sessions.drop(s);
      throw err;
    } finally {
      s.busy = false;
    }
  }
};
