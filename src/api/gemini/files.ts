import { publicOrigin } from "../public-url.js";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { Readable, PassThrough } from "node:stream";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { invalidRequest, notFound, OpenBatchError } from "../../core/errors.js";
import type { Engine } from "../../engine/engine.js";
import type { Caller, StagedUpload } from "../../engine/files.js";
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
const iso = (ms: number) => new Date(ms).toISOString();

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
    createTime: iso(f.created_at),
    updateTime: iso(f.created_at),
    ...(f.expires_at ? { expirationTime: iso(f.expires_at) } : {}),
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
export const geminiFilesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  await app.register(uploadRoutes, { engine });

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
        createTime: iso(batch.created_at),
        updateTime: iso(batch.completed_at ?? batch.expired_at ?? batch.cancelled_at ?? batch.created_at),
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

/** An upload in progress: its bytes stream into one staged blob across the chunk requests. */
interface UploadSession {
  caller: Caller;
  displayName: string;
  mimeType: string | undefined;
  declaredBytes: number | null;
  received: number;
  busy: boolean;
  pass: PassThrough | null;
  staged: Promise<StagedUpload> | null;
  timer: NodeJS.Timeout;
}

/** An upload left unfinished this long is dropped. */
const SESSION_TTL_MS = 60 * 60 * 1000;
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
 * `POST /upload/v1beta/files`, Google's resumable protocol: `X-Goog-Upload-Command: start` (JSON `{file:{displayName,
 * mimeType}}`) answers `x-goog-upload-url`; chunks follow at that URL with `upload` (and `finalize` on the last one)
 * and `X-Goog-Upload-Offset`; `query` and `cancel` are understood too. Bytes stream to disk through one staged upload;
 * the final answer (`x-goog-upload-status: final`) is `{file:{…}}`. Request bodies here are raw bytes, so this
 * plugin parses no content type itself.
 */
const uploadRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  const sessions = new Map<string, UploadSession>();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_req, _payload, done) => done(null));
  app.addHook("onClose", async () => {
    for (const [id, s] of sessions) drop(id, s);
  });

  const drop = (id: string, s: UploadSession) => {
    clearTimeout(s.timer);
    sessions.delete(id);
    s.pass?.destroy();
    void s.staged?.then((st) => st.abort()).catch(() => undefined);
  };

  app.post("/upload/v1beta/files", async (req, reply) => {
    const uploadId = (req.query as Record<string, unknown>).upload_id;
    if (typeof uploadId === "string") return chunk(req, reply, uploadId);
    const protocol = header(req, "x-goog-upload-protocol");
    const command = header(req, "x-goog-upload-command")?.toLowerCase();
    if (protocol !== "resumable" || command !== "start") {
      throw invalidRequest("Uploads here use Google's resumable protocol: send 'X-Goog-Upload-Protocol: resumable' and 'X-Goog-Upload-Command: start' first.", "x-goog-upload-protocol");
    }
    const body = await readSmallBody(req);
    const file = body && typeof body === "object" && "file" in body ? (body as { file: unknown }).file : undefined;
    const meta = file && typeof file === "object" ? (file as Record<string, unknown>) : {};
    const displayName = typeof meta.displayName === "string" && meta.displayName ? meta.displayName : (header(req, "x-goog-upload-file-name") ?? "upload");
    const mimeType = typeof meta.mimeType === "string" ? meta.mimeType : header(req, "x-goog-upload-header-content-type");
    const declared = Number(header(req, "x-goog-upload-header-content-length") ?? meta.sizeBytes ?? NaN);
    const id = randomBytes(16).toString("hex");
    const session: UploadSession = {
      caller: req.caller,
      displayName,
      mimeType,
      declaredBytes: Number.isFinite(declared) && declared >= 0 ? declared : null,
      received: 0,
      busy: false,
      pass: null,
      staged: null,
      timer: setTimeout(() => drop(id, session), SESSION_TTL_MS).unref(),
    };
    sessions.set(id, session);
    return reply
      .header("x-goog-upload-url", `${urlBase(req).origin}/upload/${urlBase(req).version}/files?upload_id=${id}&upload_protocol=resumable`)
      .header("x-goog-upload-status", "active")
      .header("x-goog-upload-chunk-granularity", "262144")
      .send();
  });

  async function chunk(req: FastifyRequest, reply: FastifyReply, uploadId: string) {
    const s = sessions.get(uploadId);
    if (!s || (s.caller !== null && s.caller !== req.caller)) throw notFound("No such upload session: it finished, was cancelled, or expired.", "upload_id");
    const commands = (header(req, "x-goog-upload-command") ?? "").toLowerCase().split(",").map((c) => c.trim());
    if (commands.includes("query")) {
      return reply.header("x-goog-upload-status", "active").header("x-goog-upload-size-received", String(s.received)).send();
    }
    if (commands.includes("cancel")) {
      drop(uploadId, s);
      return reply.header("x-goog-upload-status", "cancelled").send();
    }
    const upload = commands.includes("upload");
    const finalize = commands.includes("finalize");
    if (!upload && !finalize) throw invalidRequest("X-Goog-Upload-Command must be upload, finalize, query or cancel.", "x-goog-upload-command");
    if (s.busy) throw new OpenBatchError("conflict", "Another chunk of this upload is still being received.", { param: "x-goog-upload-offset" });
    const offset = Number(header(req, "x-goog-upload-offset") ?? s.received);
    if (offset !== s.received) {
      throw invalidRequest(`X-Goog-Upload-Offset is ${offset} but ${s.received} bytes were received so far.`, "x-goog-upload-offset");
    }
    s.busy = true;
    try {
      if (!s.pass) {
        s.pass = new PassThrough();
        s.staged = engine.files.stageUpload(s.pass);
        s.staged.catch(() => undefined);
      }
      if (upload) s.received += await feed(req.raw, s.pass, s.staged!);
      if (!finalize) return reply.header("x-goog-upload-status", "active").header("x-goog-upload-size-received", String(s.received)).send();
      if (s.declaredBytes !== null && s.received !== s.declaredBytes) {
        throw invalidRequest(`The upload declared ${s.declaredBytes} bytes but sent ${s.received}.`, "x-goog-upload-header-content-length");
      }
      s.pass.end();
      const staged = await s.staged!;
      clearTimeout(s.timer);
      sessions.delete(uploadId);
      const record = await engine.files.commitUpload(s.caller, staged, { filename: s.displayName, purpose: "batch" });
      return reply.header("x-goog-upload-status", "final").send({ file: renderFile(record, urlBase(req), s.mimeType) });
    } catch (err) {
      // A failed chunk ends the upload (a partial blob is never kept).
      drop(uploadId, s);
      throw err;
    } finally {
      s.busy = false;
    }
  }
};

/**
 * Copies a request body into the upload's stream with backpressure; stops when the staged upload fails (e.g. the
 * size limit). @returns the bytes copied.
 */
async function feed(src: Readable, dst: PassThrough, staged: Promise<StagedUpload>): Promise<number> {
  const failed = staged.then(
    () => Promise.reject(new Error("The upload stream closed early.")),
    (err: unknown) => Promise.reject(err),
  );
  failed.catch(() => undefined);
  let n = 0;
  const ac = new AbortController();
  try {
    for await (const chunk of src) {
      n += (chunk as Buffer).length;
      if (dst.destroyed) await failed;
      if (!dst.write(chunk)) await Promise.race([once(dst, "drain", { signal: ac.signal }), failed]);
    }
  } finally {
    ac.abort();
  }
  return n;
}
