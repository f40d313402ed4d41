import { Pool, type Dispatcher } from "undici";
import type { ProviderConfig } from "../core/config.js";
import { flattenHeaders, isEventStream, isTimeout, readBoundedText, ResponseTooLargeError, sseFrames, withModel } from "./http-upstream.js";
import { createRequire } from "node:module";
import { openAIEmbeddingsKey, sendOpenAIEmbeddings, type CoalescedAnswer } from "./coalesce-embeddings.js";
import { UpstreamUnreachableError, type Provider, type ProviderBudgets, type UpstreamRequest, type UpstreamResponse, type UpstreamStreamResult } from "./provider.js";

type OpenAICompatibleConfig = Extract<ProviderConfig, { type: "openai-compatible" }>;

/**
 * Any server that speaks the OpenAI REST API (OpenAI, xAI, vLLM, Ollama, llama.cpp server).
 * `baseURL` ends in the API root (e.g. "https://api.openai.com/v1"); batch endpoint "/v1/chat/completions" is sent to
 * `<baseURL>/chat/completions`. One keep-alive connection pool per provider, sized to its concurrency. Streamed calls
 * (`stream`) pass the upstream's server-sent events through as they arrive.
 */
export class OpenAICompatibleProvider implements Provider {
  readonly type = "openai-compatible";
  readonly format = "openai" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets: ProviderBudgets;
  readonly embeddingsCoalesce: number;
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    readonly name: string,
    private readonly config: OpenAICompatibleConfig,
  ) {
    this.maxConcurrency = config.maxConcurrency;
    this.timeoutMs = config.timeoutMs;
    this.budgets = { rpm: config.rpm, tpm: config.tpm, modelBudgets: config.modelBudgets };
    this.embeddingsCoalesce = config.embeddingsCoalesce;
    const url = new URL(config.baseURL);
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.pool = new Pool(url.origin, {
      connections: config.maxConcurrency,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    });
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    try {
      const res = await this.request(request, null, signal);
      const body = await readBoundedText(res, request.maxResponseBytes);
      return { status: res.statusCode, headers: flattenHeaders(res.headers), body };
    } catch (err) {
      if (err instanceof ResponseTooLargeError && !signal.aborted) throw err;
      throw this.unreachable(err, signal);
    }
  }

  /** Grouping key of a one-text `/v1/embeddings` request (see openAIEmbeddingsKey), or null. */
  embeddingsKey(request: UpstreamRequest): string | null {
    return openAIEmbeddingsKey(request);
  }

  /**
   * One `/v1/embeddings` call with every request's text as `input`, split back per request. Each item's `usage` is
   * its share of the upstream's total by its cl100k_base token count (the tokenizer of OpenAI's embedding models), so
   * against OpenAI it is what the item alone is billed; the shares always sum to the call's usage.
   */
  async sendEmbeddings(requests: UpstreamRequest[], signal: AbortSignal): Promise<CoalescedAnswer> {
    return sendOpenAIEmbeddings((r, s) => this.send(r, s), requests, signal, embeddingTokens);
  }

  /**
   * A streamed call: the request goes as it is (its body asks for `stream: true`); a 2xx `text/event-stream` answer is
   * passed through event by event (see sseFrames), any other status is an answer with its body. A 2xx answer that is
   * not an event stream is a 502 answer: the upstream ignored `stream`, and the caller asked for events.
   * Between two pieces the pool's body timeout (`timeoutMs`) applies; the whole stream has no time limit. Aborting
   * `signal` (the client went away) ends the upstream request, mid-stream included.
   */
  async stream(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamStreamResult> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.request(request, "text/event-stream", signal);
    } catch (err) {
      throw this.unreachable(err, signal);
    }
    const headers = flattenHeaders(res.headers);
    if (res.statusCode < 200 || res.statusCode >= 300 || !isEventStream(headers)) {
      let body: string;
      try {
        body = await res.body.text();
      } catch (err) {
        throw this.unreachable(err, signal);
      }
      if (res.statusCode < 200 || res.statusCode >= 300) return { kind: "answer", status: res.statusCode, headers, body };
      const message = `Upstream ${this.name} answered a stream: true request with ${headers["content-type"] ?? "no content type"}, not server-sent events.`;
      return { kind: "answer", status: 502, headers: {}, body: JSON.stringify({ error: { message, type: "server_error", param: "stream", code: "upstream_not_streaming" } }) };
    }
    const body = res.body;
    const self = this;
    async function* events(): AsyncGenerator<string, void, undefined> {
      try {
        yield* sseFrames(body);
      } catch (err) {
        throw self.unreachable(err, signal, "the stream broke off: ");
      } finally {
        // A consumer that stops early (its client went away) closes the upstream connection's request too.
        if (!body.destroyed) body.destroy();
      }
    }
    return { kind: "stream", status: res.statusCode, headers, events: events() };
  }

  /** POSTs the request to the upstream; `accept` is sent when given (streams ask for text/event-stream). */
  private request(request: UpstreamRequest, accept: string | null, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const apiKey = request.apiKey ?? this.config.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", ...(accept ? { accept } : {}), ...this.config.headers };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    return this.pool.request({
      method: "POST",
      path: this.basePath + request.endpoint.replace(/^\/v1/, ""),
      headers,
      // A body translated from Gemini names no model (it travelled in the URL there): take the request's.
      body: withModel(request.body, request.model),
      // The pool's headers/body timeouts bound the call; a non-streamed answer sends its headers last.
      signal,
    });
  }

  /** The error to throw for a failed call: the signal's reason when it aborted, else UpstreamUnreachableError. */
  private unreachable(err: unknown, signal: AbortSignal, prefix = ""): unknown {
    if (signal.aborted) return signal.reason;
    if (isTimeout(err)) return new UpstreamUnreachableError(`${this.name}: ${prefix}no answer within ${this.timeoutMs} ms`, "upstream_timeout");
    return new UpstreamUnreachableError(`${this.name}: ${prefix}${(err as Error).message}`, "upstream_unreachable");
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

let cl100k: ((text: string) => number) | null = null;

/** Tokens of one embeddings input as OpenAI's embedding models count them (cl100k_base), loaded on first use. */
function embeddingTokens(text: string): number {
  cl100k ??= (createRequire(import.meta.url)("gpt-tokenizer/encoding/cl100k_base") as { countTokens: (t: string) => number }).countTokens;
  return cl100k(text);
}
