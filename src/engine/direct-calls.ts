import type { BatchEndpoint } from "../core/batch.js";
import { invalidRequest, OpenBatchError } from "../core/errors.js";
import { JsonText } from "../core/json-text.js";
import { UpstreamUnreachableError, type Provider } from "../providers/provider.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";
import { backoffMs, isRetryableStatus, retryAfterMs, type RetrySettings } from "./retry-policy.js";
import { requestTokenCost } from "./token-cost.js";

/** What a synchronous call answers: a whole answer (any status, JSON text), or server-sent events (`stream: true`). */
export type InferAnswer =
  | { kind: "answer"; status: number; body: string }
  | {
      kind: "events";
      status: number;
      /**
       * OpenAI server-sent events, each piece ending on an event boundary. Iterate to the end or call `return()` (that
       * frees the provider's connection or sequence). Throws UpstreamUnreachableError, the signal's reason, or an
       * Error when the upstream fails midway.
       */
      events: AsyncIterable<string | Uint8Array>;
    };

/**
 * The rest of an iterator whose first result was already taken, as an iterable whose errors pass through `mapError`.
 * Not a generator: `return()` must reach `rest` even when nobody called `next()` yet (a generator never started
 * ignores it), or the provider would keep its connection or sequence.
 */
function resume<T>(first: IteratorResult<T>, rest: AsyncIterator<T>, mapError: (err: unknown) => unknown): AsyncIterableIterator<T> {
  let pending: IteratorResult<T> | null = first;
  const it: AsyncIterableIterator<T> = {
    next: async () => {
      if (pending) {
        const r = pending;
        pending = null;
        return r;
      }
      try {
        return await rest.next();
      } catch (err) {
        throw mapError(err);
      }
    },
    return: async () => {
      pending = null;
      await rest.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

/**
 * What a stream's failure is for the caller: the signal's reason when it aborted (the client left), else a 502
 * OpenBatchError naming the provider (code `upstream_timeout` / `upstream_unreachable`, or `upstream_stream_error`
 * for a failure of the provider itself, such as the local model's).
 */
function streamFailure(provider: Provider, err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason;
  if (err instanceof OpenBatchError) return err;
  if (err instanceof UpstreamUnreachableError) return new OpenBatchError("bad_gateway", `Upstream ${provider.name} stopped answering: ${err.message}`, { code: err.code });
  return new OpenBatchError("bad_gateway", `Upstream ${provider.name} failed while streaming: ${(err as Error)?.message ?? String(err)}`, { code: "upstream_stream_error" });
}

/**
 * Upstream calls made outside a batch: synchronous inference (the server as a drop-in OpenAI endpoint) and the
 * collections' vectorizer. Embeddings share the batches' rate limiters, so a vectorizer never overruns a budget.
 */
export class DirectCalls {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly limiterFor: (provider: Provider) => ProviderRateLimiter,
    private readonly retry: RetrySettings,
  ) {}

  /**
   * One synchronous call (gateway mode: the server as a drop-in OpenAI endpoint): `body` is the parsed JSON, or a
   * JsonText (the text is then sent upstream as received). Routes `body.model` (or the
   * gateway header) to its provider, inside the provider's rate budgets like a batch item (no retries: the caller
   * gets the upstream's answer as is). Concurrency is the provider's own (its connection pool, or the local model's
   * sequences); a stream holds its share until it ends.
   *
   * `stream: true` (chat and completions, on providers of format "openai" that can stream) answers events: OpenAI's
   * server-sent events as the provider sends them. The first piece is awaited here, so what fails before any event
   * (the upstream's error status, a model that cannot load, a timeout while queued) is still a whole answer or an
   * error with its status; failures after it are thrown by the events' iterator, for the caller to end the stream with.
   * @returns the whole answer (status and JSON text), or the events.
   * @throws OpenBatchError 400 for a bad body, a stream that cannot be served (naming `stream`) or an unroutable model,
   * 502 when the upstream did not answer; the signal's reason when it aborted.
   */
  async infer(endpoint: BatchEndpoint, body: unknown, gateway: { provider: string; apiKey: string | null } | undefined, signal: AbortSignal): Promise<InferAnswer> {
    // A body that came as text (JsonText) goes upstream as that text: re-encoding 30 MB held the loop for ~70 ms.
    const text = body instanceof JsonText ? body.text : null;
    if (body instanceof JsonText) body = body.value;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.");
    const b = body as Record<string, unknown>;
    if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") throw invalidRequest("'stream' must be true or false.", "stream");
    const streaming = b.stream === true;
    if (streaming && endpoint === "/v1/embeddings") throw invalidRequest("'stream' is not supported on /v1/embeddings: embeddings are answered whole; send stream: false.", "stream");
    const model = typeof b.model === "string" ? b.model : null;
    const name = gateway ? this.providers.resolveHeader(gateway.provider) : this.providers.routeModel(model);
    const provider = name ? this.providers.get(name) : undefined;
    if (!provider) {
      throw new OpenBatchError("not_found", `No provider serves model "${model ?? "(none)"}". Map it in the config's "models", or use "local/glove-100d" for embeddings.`, { param: "model", code: "model_not_found" });
    }
    if (streaming && (provider.format !== "openai" || !provider.stream)) {
      throw invalidRequest(`'stream' is not supported for provider type ${provider.type} (provider "${provider.name}"); send stream: false.`, "stream");
    }
    const request = { endpoint, model, body: text ?? JSON.stringify(b), apiKey: gateway?.apiKey ?? undefined };
    const limiter = this.limiterFor(provider);
    await limiter.acquire(model, limiter.needsTokenCost(model) ? requestTokenCost(request.body) : 0, signal);
    try {
      if (!streaming) {
        const res = await provider.send(request, signal);
        limiter.onAnswer(res.status, res.headers);
        return { kind: "answer", status: res.status, body: res.body };
      }
      const res = await provider.stream!(request, signal);
      limiter.onAnswer(res.status, res.headers);
      if (res.kind === "answer") return { kind: "answer", status: res.status, body: res.body };
      const events = res.events[Symbol.asyncIterator]();
      let first: IteratorResult<string | Uint8Array>;
      try {
        first = await events.next();
      } catch (err) {
        throw streamFailure(provider, err, signal);
      }
      return { kind: "events", status: res.status, events: resume(first, events, (err) => streamFailure(provider, err, signal)) };
    } catch (err) {
      if (err instanceof UpstreamUnreachableError) {
        limiter.onNoAnswer();
        throw new OpenBatchError("bad_gateway", `Upstream ${provider.name} did not answer: ${err.message}`, { code: err.code });
      }
      throw err;
    }
  }

  /**
   * Embeds texts through the provider that serves `model`, inside the same rate limits and concurrency as batches, with
   * the batch retry policy (429/5xx/no answer retried with backoff and Retry-After). For the collections' vectorizer.
   * @returns one vector per text, in order. @throws OpenBatchError 404 for an unroutable model, 502 when the upstream
   * keeps failing or answers without vectors.
   */
  async embedTexts(model: string, texts: string[], signal: AbortSignal = new AbortController().signal): Promise<number[][]> {
    const name = this.providers.routeModel(model);
    const provider = name ? this.providers.get(name) : undefined;
    if (!provider) throw new OpenBatchError("not_found", `No provider serves embedding model "${model}".`, { param: "model", code: "model_not_found" });
    const body = JSON.stringify({ model, input: texts });
    const limiter = this.limiterFor(provider);
    let last = "";
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      let retryAfter: number | null = null;
      try {
        await limiter.acquire(model, limiter.needsTokenCost(model) ? requestTokenCost(body) : 0, signal);
        const res = await provider.send({ endpoint: "/v1/embeddings", model, body }, signal);
        limiter.onAnswer(res.status, res.headers);
        if (res.status >= 200 && res.status < 300) {
          const data = (JSON.parse(res.body) as { data?: { index: number; embedding: number[] }[] }).data;
          if (!Array.isArray(data) || data.length !== texts.length) throw new Error("the answer does not hold one embedding per input");
          return [...data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
        }
        last = `${res.status} ${res.body.slice(0, 300)}`;
        if (!isRetryableStatus(res.status)) break;
        retryAfter = retryAfterMs(res.headers);
      } catch (err) {
        if (signal.aborted) throw err;
        if (!(err instanceof UpstreamUnreachableError)) {
          last = (err as Error).message;
          break;
        }
        limiter.onNoAnswer();
        last = err.message;
      }
      await new Promise((r) => setTimeout(r, backoffMs(attempt, this.retry, retryAfter)));
    }
    throw new OpenBatchError("bad_gateway", `Embedding with ${model} failed: ${last}`, { code: "vectorizer_failed" });
  }

  /**
   * Embeds for a Weaviate vectorizer module of a collection (text2vec-ollama, -openai, -transformers, -huggingface):
   * `mapping` (config `collections.vectorizerModels`) maps the module's model, or `"*"` every model of it, to an
   * OpenBatch model → embedTexts; else a provider serving the model itself → embedTexts; else the module's own
   * endpoint, as Weaviate calls it: Ollama `POST {apiEndpoint}/api/embed {model, input}` → `{embeddings}`, OpenAI
   * `POST {baseURL}/v1/embeddings` (no key: an OpenAI-compatible server that needs none), transformers
   * `POST {inferenceUrl}/vectors {text}` → `{vector}` per text. Endpoint calls are retried on 429/5xx/no answer with the
   * batch retry policy; they are outside any provider's rate budget (no provider is configured for them).
   * @returns one vector per text, in order. @throws OpenBatchError 404 when nothing serves the model, 502 when the
   * endpoint keeps failing or answers without one vector per text.
   */
  async embedForModule(
    req: { module: string; model: string; endpoint: string | null },
    texts: string[],
    mapping: Record<string, Record<string, string> | undefined>,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<number[][]> {
    const mapped = mapping[req.module]?.[req.model] ?? mapping[req.module]?.["*"];
    if (mapped) return this.embedTexts(mapped, texts, signal);
    if (this.providers.routeModel(req.model)) return this.embedTexts(req.model, texts, signal);
    const base = req.endpoint?.replace(/\/+$/, "");
    if (!base || req.module === "text2vec-huggingface") {
      throw new OpenBatchError("not_found", `No provider serves model "${req.model}" of ${req.module}: map it in the config's collections.vectorizerModels["${req.module}"] (e.g. to "local/glove-100d") or in "models".`, {
        param: "model",
        code: "model_not_found",
      });
    }
    const call = async (url: string, body: unknown): Promise<unknown> => {
      let last = "";
      for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
        let retryAfter: number | null = null;
        try {
          const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
          const text = await res.text();
          if (res.ok) return JSON.parse(text) as unknown;
          last = `${res.status} ${text.slice(0, 300)}`;
          if (!isRetryableStatus(res.status)) break;
          retryAfter = retryAfterMs(Object.fromEntries(res.headers));
        } catch (err) {
          if (signal.aborted) throw err;
          last = (err as Error).message;
          if (err instanceof SyntaxError) break;
        }
        if (attempt < this.retry.maxAttempts) await new Promise((r) => setTimeout(r, backoffMs(attempt, this.retry, retryAfter)));
      }
      throw new OpenBatchError("bad_gateway", `${req.module} at ${url} failed: ${last}`, { code: "vectorizer_failed" });
    };
    const check = (vectors: unknown, url: string): number[][] => {
      if (!Array.isArray(vectors) || vectors.length !== texts.length || !vectors.every((v) => Array.isArray(v))) {
        throw new OpenBatchError("bad_gateway", `${req.module} at ${url} did not answer one embedding per input`, { code: "vectorizer_failed" });
      }
      return vectors as number[][];
    };
    if (req.module === "text2vec-ollama") {
      const url = `${base}/api/embed`;
      return check(((await call(url, { model: req.model, input: texts })) as { embeddings?: unknown }).embeddings, url);
    }
    if (req.module === "text2vec-openai") {
      const url = /\/v1$/.test(base) ? `${base}/embeddings` : `${base}/v1/embeddings`;
      const data = ((await call(url, { model: req.model, input: texts })) as { data?: { index: number; embedding: number[] }[] }).data;
      return check(Array.isArray(data) ? [...data].sort((a, b) => a.index - b.index).map((d) => d.embedding) : null, url);
    }
    const url = `${base}/vectors`;
    const out: number[][] = [];
    for (const text of texts) out.push(((await call(url, { text })) as { vector?: number[] }).vector as number[]);
    return check(out, url);
  }
}
