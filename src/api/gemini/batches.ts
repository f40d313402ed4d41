import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { z } from "zod";
import type { BatchView } from "../../core/batch.js";
import { invalidRequest, notFound, OpenBatchError } from "../../core/errors.js";
import type { Endpoint } from "../../core/wire-format.js";
import type { Engine, InlineRequest } from "../../engine/engine.js";
import type { Caller } from "../../engine/files.js";
import { batchModeOf, gatewayOf } from "../auth.js";
import { parseQuery } from "../query.js";
import {
  bareModel,
  batchIdOf,
  GEMINI,
  GEMINI_SEED,
  ITEMS,
  renderInlinedResponse,
  renderOperation,
  renderSeedBatch,
  SOURCE_FILE,
  streamJson,
  toCustomId,
} from "./render.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads a field spelled in camelCase or snake_case (Google's REST API accepts both). */
function field(o: Json, camel: string): unknown {
  if (o[camel] !== undefined) return o[camel];
  return o[camel.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())];
}

/** What a batch targets: text generation or embeddings. */
type Method = "batchGenerateContent" | "asyncBatchEmbedContent";
const ENDPOINT: Record<Method, Endpoint> = { batchGenerateContent: "gemini:generateContent", asyncBatchEmbedContent: "gemini:embedContent" };

/** Inline requests per create call, and file lines added per engine call when ingesting a file. */
const MAX_INLINE = 100_000;
const FILE_CHUNK = 1_000;

const seedBody = z.object({
  requests: z
    .array(
      z.looseObject({
        model: z.string().min(1),
        contents: z.array(z.unknown()).min(1),
        metadata: z.unknown().optional(),
      }),
    )
    .min(1)
    .max(MAX_INLINE),
});

const listQuery = z.object({
  pageSize: z.coerce.number().int().min(1).max(1000).default(50),
  pageToken: z.string().optional(),
});

/**
 * Checks one request body (GenerateContentRequest or EmbedContentRequest) and strips its `model`, which must be the
 * batch's when present. @returns the body to store. @throws OpenBatchError 400 naming `where`.
 */
function requestBody(request: unknown, method: Method, model: string, where: string): Json {
  if (!isObject(request)) throw invalidRequest(`${where} must be a JSON object (a ${method === "batchGenerateContent" ? "GenerateContentRequest" : "EmbedContentRequest"}).`, where);
  const { model: own, ...body } = request;
  if (own !== undefined && (typeof own !== "string" || bareModel(own) !== model)) {
    throw invalidRequest(`${where}.model is ${JSON.stringify(own)} but the batch runs models/${model}; OpenBatch runs one model per batch.`, `${where}.model`);
  }
  if (method === "batchGenerateContent") {
    const contents = body.contents;
    if (!Array.isArray(contents) || contents.length === 0) throw invalidRequest(`${where}.contents must be a non-empty list of contents.`, `${where}.contents`);
  } else if (!isObject(body.content)) {
    throw invalidRequest(`${where}.content must be a content object ({parts:[{text}]}).`, `${where}.content`);
  }
  return body;
}

/** Parses `<model>:<method>` from the path after `models/`; `called` is the path as the caller sent it (for the error). */
function parseModelPath(rest: string, called: string): { model: string; method: Method } {
  const m = /^(.+):(batchGenerateContent|asyncBatchEmbedContent)$/.exec(rest);
  if (!m) throw notFound(`Unknown method: POST ${called}. Batches are created with models/{model}:batchGenerateContent or :asyncBatchEmbedContent.`);
  return { model: m[1]!, method: m[2] as Method };
}

/**
 * The Gemini batch dialects under `/v1beta`, and under `/v1` for Gemini callers (`@google/genai` 3.x; the server
 * rewrites those URLs onto these routes, see routing.ts):
 * - the real Batch Mode as `@google/genai` calls it (dialect "gemini"): `models/{model}:batchGenerateContent` and
 *   `:asyncBatchEmbedContent` with inline requests or an uploaded JSONL file, batches as Operations, list with page
 *   tokens, `:cancel`, delete;
 * - seed 003 (dialect "gemini-seed"): `POST /v1beta/batches {requests:[{model, contents, metadata}]}`, its status
 *   shape, and `GET /v1beta/batches/{id}/results`.
 * Errors are rendered as Google API errors by the server (see api/server.ts).
 */
export const geminiBatchesRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  const own = async (caller: Caller, id: string): Promise<BatchView> => {
    const batch = await engine.getBatch(caller, batchIdOf(id)).catch((err) => {
      if (err instanceof OpenBatchError && err.kind === "not_found") throw notFound(`Batch batches/${id} not found.`, "name");
      throw err;
    });
    if (batch.dialect !== GEMINI && batch.dialect !== GEMINI_SEED) throw notFound(`Batch batches/${id} not found.`, "name");
    return batch;
  };

  /** Sends a batch in its own dialect; a done inline batch streams its responses. */
  const send = (reply: FastifyReply, caller: Caller, b: BatchView) => {
    if (b.dialect === GEMINI_SEED) return renderSeedBatch(b);
    const { op, hasItems } = renderOperation(b, { inline: true });
    if (!hasItems) return op;
    const items = () => mapItems(engine.allItems(caller, b.id), renderInlinedResponse);
    return reply.header("content-type", "application/json; charset=utf-8").send(Readable.from(streamJson(op, items), { objectMode: false }));
  };

  // --- Seed 003 ---------------------------------------------------------------------------------------------------

  app.post("/v1beta/batches", async (req) => {
    const parsed = seedBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const path = issue.path.join(".");
      throw invalidRequest(`Invalid value at '${path || "body"}': ${issue.message}`, path || null);
    }
    const requests = parsed.data.requests;
    const models = new Set(requests.map((r) => bareModel(r.model)));
    if (models.size > 1) {
      throw invalidRequest(`OpenBatch runs one model per batch; this one names ${[...models].map((m) => `models/${m}`).join(", ")}. Send one batch per model.`, "requests");
    }
    const batch = await engine.createInlineBatch(req.caller, {
      dialect: GEMINI_SEED,
      endpoint: "gemini:generateContent",
      model: [...models][0]!,
      requests: requests.map(({ model: _model, metadata, ...body }, i) => ({ custom_id: toCustomId(i, metadata), body })),
      start: true,
      gateway: gatewayOf(req.headers),
      batchMode: batchModeOf(req.headers),
    });
    return renderSeedBatch(batch);
  });

  app.get<{ Params: { id: string } }>("/v1beta/batches/:id/results", async (req, reply) => {
    const batch = await own(req.caller, req.params.id);
    // Every request that has finished, in input order (all of them once the batch has ended).
    const items = () => mapItems(engine.allItems(req.caller, batch.id, ["succeeded", "failed", "expired", "cancelled"]), renderInlinedResponse);
    return reply.header("content-type", "application/json; charset=utf-8").send(Readable.from(streamJson({ results: ITEMS }, items), { objectMode: false }));
  });

  // --- Batch Mode -------------------------------------------------------------------------------------------------

  app.post<{ Params: { "*": string } }>("/v1beta/models/*", async (req, reply) => {
    const { model: urlModel, method } = parseModelPath(req.params["*"], req.originalUrl.split("?")[0]!);
    const model = bareModel(urlModel);
    const body = isObject(req.body) ? req.body : {};
    const batch = body.batch;
    if (!isObject(batch)) throw invalidRequest("Missing required field 'batch'.", "batch");
    const displayName = field(batch, "displayName");
    if (displayName !== undefined && typeof displayName !== "string") throw invalidRequest("batch.displayName must be a string.", "batch.displayName");
    const batchModel = batch.model;
    if (batchModel !== undefined && (typeof batchModel !== "string" || bareModel(batchModel) !== model)) {
      throw invalidRequest(`batch.model ${JSON.stringify(batchModel)} differs from models/${model} in the URL.`, "batch.model");
    }
    const input = field(batch, "inputConfig");
    if (!isObject(input)) throw invalidRequest("Missing required field 'batch.inputConfig'.", "batch.inputConfig");
    const fileName = field(input, "fileName");
    const inline = field(input, "requests");
    if ((fileName === undefined) === (inline === undefined)) {
      throw invalidRequest("batch.inputConfig must hold exactly one of 'requests' or 'fileName'.", "batch.inputConfig");
    }
    const common = { dialect: GEMINI, endpoint: ENDPOINT[method], model, name: displayName ?? null, gateway: gatewayOf(req.headers), batchMode: batchModeOf(req.headers) };
    let created: BatchView;
    if (inline !== undefined) {
      const list = isObject(inline) ? inline.requests : undefined;
      if (!Array.isArray(list) || list.length === 0) throw invalidRequest("batch.inputConfig.requests.requests must be a non-empty list.", "batch.inputConfig.requests.requests");
      if (list.length > MAX_INLINE) throw invalidRequest(`At most ${MAX_INLINE} inline requests per batch; upload a file for more.`, "batch.inputConfig.requests.requests");
      const requests: InlineRequest[] = list.map((r: unknown, i) => {
        const where = `batch.inputConfig.requests.requests[${i}]`;
        if (!isObject(r)) throw invalidRequest(`${where} must be an object {request, metadata}.`, where);
        return { custom_id: toCustomId(i, r.metadata ?? undefined), body: requestBody(r.request, method, model, `${where}.request`) };
      });
      created = await engine.createInlineBatch(req.caller, { ...common, requests, start: true });
    } else {
      if (typeof fileName !== "string" || !/^files\/[^/]+$/.test(fileName)) throw invalidRequest(`batch.inputConfig.fileName must name an uploaded file ("files/…").`, "batch.inputConfig.fileName");
      created = await createFromFile(engine, req.caller, { ...common, fileName, method });
    }
    return send(reply, req.caller, created);
  });

  app.get("/v1beta/batches", async (req) => {
    const q = parseQuery(listQuery, req.query);
    const page = await engine.listBatches(req.caller, { limit: q.pageSize, after: q.pageToken ? batchIdOf(q.pageToken) : undefined, dialects: [GEMINI] });
    const operations = page.data.map((b) => renderOperation(b, { inline: false }).op);
    // No token on the last page: the SDK pages on while one is present, even an empty one.
    return page.has_more && page.data.length > 0 ? { operations, nextPageToken: page.data.at(-1)!.id } : { operations };
  });

  app.get<{ Params: { id: string } }>("/v1beta/batches/:id", async (req, reply) => send(reply, req.caller, await own(req.caller, req.params.id)));

  app.post<{ Params: { id: string } }>("/v1beta/batches/:id", async (req) => {
    const m = /^(.+):cancel$/.exec(req.params.id);
    if (!m) throw notFound(`Unknown method: POST ${req.originalUrl.split("?")[0]}.`);
    const batch = await own(req.caller, m[1]!);
    await engine.cancelBatch(req.caller, batch.id);
    return {};
  });

  app.delete<{ Params: { id: string } }>("/v1beta/batches/:id", async (req) => {
    const batch = await own(req.caller, req.params.id);
    await engine.deleteBatch(req.caller, batch.id);
    return {};
  });
};

async function* mapItems<T, U>(source: AsyncIterable<T>, f: (t: T) => U): AsyncGenerator<U> {
  for await (const t of source) yield f(t);
}

/** Lines of a stored file, numbered from 1, blank ones skipped. */
async function* fileLines(engine: Engine, caller: Caller, fileId: string): AsyncGenerator<{ n: number; line: string }> {
  const { stream } = await engine.files.content(caller, fileId);
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim()) yield { n, line };
  }
}

/**
 * Creates a batch from an uploaded JSONL file of `{"key", "request"}` lines: one pass validates every line (nothing
 * is created when one is bad), a second adds them in chunks (memory stays flat in the file's size), then it starts.
 * @throws OpenBatchError 400 naming the first bad line, or a missing file.
 */
async function createFromFile(
  engine: Engine,
  caller: Caller,
  input: { dialect: string; endpoint: Endpoint; model: string; name: string | null; gateway: ReturnType<typeof gatewayOf>; batchMode: ReturnType<typeof batchModeOf>; fileName: string; method: Method },
): Promise<BatchView> {
  const fileId = input.fileName.slice("files/".length);
  await engine.files.get(caller, fileId).catch((err) => {
    if (err instanceof OpenBatchError && err.kind === "not_found") throw invalidRequest(`File ${input.fileName} not found.`, "batch.inputConfig.fileName");
    throw err;
  });
  const parse = (n: number, line: string): InlineRequest & { index: number } => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw invalidRequest(`${input.fileName} line ${n} is not valid JSON.`, "batch.inputConfig.fileName");
    }
    if (!isObject(v)) throw invalidRequest(`${input.fileName} line ${n} must be a JSON object {"key", "request"}.`, "batch.inputConfig.fileName");
    return { index: n, custom_id: toCustomId(n, v.key ?? undefined), body: requestBody(v.request, input.method, input.model, `${input.fileName} line ${n}: request`) };
  };
  let count = 0;
  for await (const { n, line } of fileLines(engine, caller, fileId)) {
    parse(n, line);
    count++;
  }
  if (count === 0) throw invalidRequest(`${input.fileName} holds no requests.`, "batch.inputConfig.fileName");

  const { fileName, method: _method, ...rest } = input;
  const batch = await engine.createInlineBatch(caller, { ...rest, metadata: { [SOURCE_FILE]: fileName }, start: false });
  try {
    let chunk: InlineRequest[] = [];
    for await (const { n, line } of fileLines(engine, caller, fileId)) {
      const { custom_id, body } = parse(n, line);
      chunk.push({ custom_id, body });
      if (chunk.length >= FILE_CHUNK) {
        await engine.addRequests(caller, batch.id, chunk);
        chunk = [];
      }
    }
    if (chunk.length) await engine.addRequests(caller, batch.id, chunk);
    return await engine.startBatch(caller, batch.id);
  } catch (err) {
    // The file changed or could not be read between the passes: do not leave a half-filled batch waiting.
    await engine.cancelBatch(caller, batch.id).catch(() => undefined);
    throw err;
  }
}
