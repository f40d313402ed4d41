import type { Provider, UpstreamRequest, UpstreamResponse } from "../provider.js";
import { SentenceEmbedder } from "./sentence-embedder.js";
import { loadWordVectors } from "./word-vectors.js";

/** The model id the embedded sentence embedder answers to. */
export const GLOVE_MODEL = "local/glove-100d";

/** Most inputs in one embeddings request (OpenAI's limit). */
const MAX_INPUTS = 2048;

/**
 * Provider type `local-embeddings`: OpenAI `/v1/embeddings` answered in-process from GloVe-derived word vectors
 * (model `local/glove-100d`, 100 dims), no key and no network. Vectors load on first use from a cache in `cacheDir`.
 * Answers follow the OpenAI embeddings response: `{object:"list", data:[{object:"embedding", index, embedding}],
 * model, usage:{prompt_tokens, total_tokens}}`; `embedding` is a float array or, with `encoding_format:"base64"`,
 * base64 of little-endian Float32. Bad requests get a 400 in OpenAI's error shape.
 */
export class LocalEmbeddingsProvider implements Provider {
  readonly type = "local-embeddings";
  readonly format = "openai" as const;
  readonly maxConcurrency = 64;
  readonly timeoutMs = 120_000;
  readonly budgets = null;
  private embedder: Promise<SentenceEmbedder> | null = null;

  constructor(
    readonly name: string,
    private readonly cacheDir: string,
  ) {}

  /** Loads the vectors now (otherwise the first request does). */
  load(): Promise<SentenceEmbedder> {
    this.embedder ??= loadWordVectors(this.cacheDir).then((w) => new SentenceEmbedder(w));
    this.embedder.catch(() => (this.embedder = null));
    return this.embedder;
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (request.endpoint !== "/v1/embeddings") {
      return error(400, `Model ${GLOVE_MODEL} only serves /v1/embeddings, not ${request.endpoint}.`, "model");
    }
    const body = JSON.parse(request.body) as Record<string, unknown>;
    const input = body.input;
    const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? (input as string[]) : null;
    if (!texts) return error(400, `'input' must be a string or an array of strings (token ids are not supported by ${GLOVE_MODEL}).`, "input");
    if (texts.length === 0 || texts.length > MAX_INPUTS) return error(400, `'input' must hold 1 to ${MAX_INPUTS} strings.`, "input");
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") return error(400, `'encoding_format' must be "float" or "base64".`, "encoding_format");
    let embedder: SentenceEmbedder;
    try {
      embedder = await this.load();
    } catch (err) {
      return error(424, `The local embedding vectors could not be loaded: ${(err as Error).message}`, null);
    }
    if (body.dimensions !== undefined && body.dimensions !== embedder.dimensions) {
      return error(400, `${GLOVE_MODEL} has ${embedder.dimensions} dimensions; 'dimensions' cannot change that.`, "dimensions");
    }
    let tokens = 0;
    const data = texts.map((text, index) => {
      const { vector, tokens: n } = embedder.embed(text);
      tokens += n;
      const embedding = format === "base64" ? Buffer.from(vector.buffer).toString("base64") : Array.from(vector, (x) => Math.round(x * 1e7) / 1e7);
      return { object: "embedding", index, embedding };
    });
    const answer = { object: "list", data, model: typeof body.model === "string" ? body.model : GLOVE_MODEL, usage: { prompt_tokens: tokens, total_tokens: tokens } };
    return { status: 200, headers: {}, body: JSON.stringify(answer) };
  }

  async close(): Promise<void> {}
}

function error(status: number, message: string, param: string | null): UpstreamResponse {
  return { status, headers: {}, body: JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }) };
}
