import { openAIEmbeddingsKey, type CoalescedAnswer } from "../coalesce-embeddings.js";
import type { Provider, UpstreamRequest, UpstreamResponse } from "../provider.js";
import { startModuleWorker, WorkerChannel } from "../worker-thread.js";
import { GLOVE_MODEL } from "./sentence-embedder.js";

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
    return this.call<UpstreamResponse>("embed", { body: request.body }, signal);
  }

  /** One worker call that answers at once when `signal` aborts (the thread's work is dropped when done). */
  private call<T>(op: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const answer = this.worker.call<T>(op, args);
    if (!signal) return answer;
    return new Promise<T>((resolve, reject) => {
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
   * Answers the requests in one worker call, each body exactly as `send` answers it alone (the worker runs the same
   * code per body), with its usage object. Answers of different statuses (never seen: a group shares every field
   * but its one text) come back as the first error, `whole`, so the engine splits the group and sends them alone.
   *
   * Why not one merged input list, split here: the event loop parsed the merged answer and wrote every vector out
   * again per item, and the engine parsed each item's answer once more. Measured (bench/coalesce.ts, local/glove-100d,
   * 10,000 one-text items, main-thread CPU profile, loaded 2-core box): splitting took 56 µs/item and judging the split
   * answers 48 µs/item; with the answers built in the worker and their usage handed over, 6 and 5 µs/item.
   */
  async sendEmbeddings(requests: UpstreamRequest[], signal: AbortSignal): Promise<CoalescedAnswer> {
    if (requests.some((r) => r.endpoint !== "/v1/embeddings")) return { kind: "whole", answer: await this.send(requests.find((r) => r.endpoint !== "/v1/embeddings")!, signal) };
    const answers = await this.call<{ status: number; body: string; usage: Record<string, unknown> | null }[]>("embedEach", { bodies: requests.map((r) => r.body) }, signal);
    const status = answers[0]!.status;
    if (status < 200 || status >= 300 || answers.some((a) => a.status !== status)) {
      const bad = answers.find((a) => a.status < 200 || a.status >= 300) ?? answers[0]!;
      return { kind: "whole", answer: { status: bad.status, headers: {}, body: bad.body } };
    }
    return { kind: "each", status, headers: {}, bodies: answers.map((a) => a.body), usages: answers.map((a) => a.usage) };
  }

  /** Ends the worker thread (and frees the vectors). */
  async close(): Promise<void> {
    await this.worker.close();
  }
}

function error(status: number, message: string, param: string | null): UpstreamResponse {
  return { status, headers: {}, body: JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }) };
}
