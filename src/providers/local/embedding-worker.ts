/**
 * Worker thread of the `local-embeddings` provider: owns the word vectors (the cache built on first use, ~140 MB) and
 * answers `/v1/embeddings` bodies, so the cache build (seconds) and the tokenizing + SIF-weighted means of large
 * inputs never run on the server's event loop. Started by LocalEmbeddingsProvider with `{cacheDir}` as workerData.
 *
 * Ops: `load` → the vector length, once the vectors are loaded; `embed {body}` → `{status, body}`, the provider's answer;
 * `embedEach {bodies}` → one `{status, body, usage}` per body, each the answer `embed` gives that body (a coalesced
 * call: the per-item answers are built here, so the event loop neither parses the merged answer nor writes each
 * vector out again; `usage` is the answer's usage object, or null for an error).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { UpstreamResponse } from "../provider.js";
import { serveWorker } from "../worker-thread.js";
import { GLOVE_MODEL, SentenceEmbedder } from "./sentence-embedder.js";
import { loadWordVectors } from "./word-vectors.js";

/** Most inputs in one embeddings request (OpenAI's limit). */
const MAX_INPUTS = 2048;

const { cacheDir } = workerData as { cacheDir: string };
let embedder: Promise<SentenceEmbedder> | null = null;

function load(): Promise<SentenceEmbedder> {
  embedder ??= loadWordVectors(cacheDir).then((w) => new SentenceEmbedder(w));
  // A failed load is retried by the next request (the package may be installed meanwhile).
  embedder.catch(() => (embedder = null));
  return embedder;
}

/**
 * Answers one OpenAI embeddings body: `{object:"list", data:[{object:"embedding", index, embedding}], model,
 * usage:{prompt_tokens, total_tokens}}`; `embedding` is a float array or, with `encoding_format:"base64"`, base64 of
 * little-endian Float32. Bad requests get a 400 and unloadable vectors a 424, in OpenAI's error shape.
 */
async function embed(text: string): Promise<UpstreamResponse> {
  const { usage: _usage, ...answer } = await answerOf(text);
  return answer;
}

/** `embed`'s answer with the usage object it holds (null for an error answer). */
async function answerOf(text: string): Promise<UpstreamResponse & { usage: { prompt_tokens: number; total_tokens: number } | null }> {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return error(400, "The request body is not valid JSON.", null);
  }
  const input = body.input;
  const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? (input as string[]) : null;
  if (!texts) return error(400, `'input' must be a string or an array of strings (token ids are not supported by ${GLOVE_MODEL}).`, "input");
  if (texts.length === 0 || texts.length > MAX_INPUTS) return error(400, `'input' must hold 1 to ${MAX_INPUTS} strings.`, "input");
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") return error(400, `'encoding_format' must be "float" or "base64".`, "encoding_format");
  let e: SentenceEmbedder;
  try {
    e = await load();
  } catch (err) {
    return error(424, `The local embedding vectors could not be loaded: ${(err as Error).message}`, null);
  }
  if (body.dimensions !== undefined && body.dimensions !== e.dimensions) {
    return error(400, `${GLOVE_MODEL} has ${e.dimensions} dimensions; 'dimensions' cannot change that.`, "dimensions");
  }
  let tokens = 0;
  const data = texts.map((t, index) => {
    const { vector, tokens: n } = e.embed(t);
    tokens += n;
    const embedding = format === "base64" ? Buffer.from(vector.buffer).toString("base64") : Array.from(vector, (x) => Math.round(x * 1e7) / 1e7);
    return { object: "embedding", index, embedding };
  });
  const usage = { prompt_tokens: tokens, total_tokens: tokens };
  const answer = { object: "list", data, model: typeof body.model === "string" ? body.model : GLOVE_MODEL, usage };
  return { status: 200, headers: {}, body: JSON.stringify(answer), usage };
}

function error(status: number, message: string, param: string | null): UpstreamResponse & { usage: null } {
  return { status, headers: {}, body: JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }), usage: null };
}

serveWorker(parentPort!, {
  load: async () => (await load()).dimensions,
  embed: (args) => embed(args.body as string),
  embedEach: async (args) => {
    const out: { status: number; body: string; usage: unknown }[] = [];
    for (const body of args.bodies as string[]) {
      const { status, body: text, usage } = await answerOf(body);
      out.push({ status, body: text, usage });
    }
    return out;
  },
});
