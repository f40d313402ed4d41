import { openAIEmbeddingsKey, sendOpenAIEmbeddings, type CoalescedAnswer } from "../coalesce-embeddings.js";
import type { Provider, UpstreamRequest, UpstreamResponse } from "../provider.js";
import { startModuleWorker, WorkerChannel } from "../worker-thread.js";
import { GLOVE_MODEL, tokenize } from "./sentence-embedder.js";

export { GLOVE_MODEL };

/**
 * Provider type `local-embeddings`: OpenAI `/v1/embeddings` answered in-process from GloVe-derived word vectors
 * (model `local/glove-100d`, 100 dims), no key and no network. Vectors load on first use from a cache in `cacheDir`.
 * Answers follow the OpenAI embeddings response: `{object:"list", data:[{object:"embedding", index, embedding}],
 * model, usage:{prompt_tokens, total_tokens}}`; `embedding` is a float array or, with `encoding_format:"base64"`,
 * base64 of little-endian Float32. Bad requests get a 400 in OpenAI's error shape.
 *
 * The vectors and all the work on them live in one worker thread (embedding-worker.ts): building the cache takes
 * seconds and a request of large inputs as long, which on the event loop stalled every other request and tenant.
 * Requests queue in that thread one at a time; an aborted request answers at once (its work is dropped when done).
 */
export class LocalEmbeddingsProvider implements Provider {
  readonly type = "local-embeddings";
  readonly format = "openai" as const;
  readonly maxConcurrency = 64;
  readonly timeoutMs = 120_000;
  readonly budgets = null;
  private readonly worker: WorkerChannel;

  constructor(
    readonly name: string,
    cacheDir: string,
    /** Most one-text requests answered by one `embed` of the worker (config `embeddingsCoalesce`). */
    readonly embeddingsCoalesce = 64,
  ) {
    this.worker = new WorkerChannel(() => startModuleWorker(new URL("./embedding-worker.js", import.meta.url), { cacheDir }));
  }

  /**
   * Loads the vectors now (otherwise the first request does), building the cache on first use.
   * @returns the vector length. @throws Error when the vectors cannot be loaded.
   */
  load(): Promise<number> {
    return this.worker.call<number>("load");
  }

  async send(request: UpstreamRequest, signal?: AbortSignal): Promise<UpstreamResponse> {
    if (request.endpoint !== "/v1/embeddings") {
      return error(400, `Model ${GLOVE_MODEL} only serves /v1/embeddings, not ${request.endpoint}.`, "model");
    }
    signal?.throwIfAborted();
    const answer = this.worker.call<UpstreamResponse>("embed", { body: request.body });
    if (!signal) return answer;
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Grouping key of a one-text `/v1/embeddings` request (see openAIEmbeddingsKey), or null. */
  embeddingsKey(request: UpstreamRequest): string | null {
    return openAIEmbeddingsKey(request);
  }

  /**
   * Embeds the requests' texts in one worker call and splits the answer per request. Each item's usage is its own
   * token count (the worker's tokenizer, run here on the text), so every answer is the one the request gets alone.
   */
  async sendEmbeddings(requests: UpstreamRequest[], signal: AbortSignal): Promise<CoalescedAnswer> {
    return sendOpenAIEmbeddings((r, s) => this.send(r, s), requests, signal, (t) => tokenize(t).length);
  }

  /** Ends the worker thread (and frees the vectors). */
  async close(): Promise<void> {
    await this.worker.close();
  }
}

function error(status: number, message: string, param: string | null): UpstreamResponse {
  return { status, headers: {}, body: JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }) };
}
