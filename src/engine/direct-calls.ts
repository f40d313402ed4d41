import type { BatchEndpoint } from "../core/batch.js";
import { invalidRequest, OpenBatchError } from "../core/errors.js";
import { UpstreamUnreachableError, type Provider } from "../providers/provider.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";
import { backoffMs, isRetryableStatus, retryAfterMs, type RetrySettings } from "./retry-policy.js";
import { requestTokenCost } from "./token-cost.js";

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
   * One synchronous call (gateway mode: the server as a drop-in OpenAI endpoint): routes `body.model` (or the
   * gateway header) to its provider and returns the upstream answer as is.
   * @returns status and JSON text of the answer. @throws OpenBatchError 400 for a bad body or an unroutable model.
   */
  async infer(endpoint: BatchEndpoint, body: unknown, gateway: { provider: string; apiKey: string | null } | undefined, signal: AbortSignal): Promise<{ status: number; body: string }> {
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.");
    const b = body as Record<string, unknown>;
    if (b.stream === true) throw invalidRequest("Streaming is not supported here; send stream: false, or use a batch.", "stream");
    const model = typeof b.model === "string" ? b.model : null;
    const name = gateway ? this.providers.resolveHeader(gateway.provider) : this.providers.routeModel(model);
    const provider = name ? this.providers.get(name) : undefined;
    if (!provider) {
      throw new OpenBatchError("not_found", `No provider serves model "${model ?? "(none)"}". Map it in the config's "models", or use "local/glove-100d" for embeddings.`, { param: "model", code: "model_not_found" });
    }
    try {
      const res = await provider.send({ endpoint, model, body: JSON.stringify(b), apiKey: gateway?.apiKey ?? undefined }, signal);
      return { status: res.status, body: res.body };
    } catch (err) {
      if (err instanceof UpstreamUnreachableError) {
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
}
