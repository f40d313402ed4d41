import { Pool } from "undici";
import type { ProviderConfig } from "../core/config.js";
import { withModel } from "./http-upstream.js";
import { UpstreamUnreachableError, type Provider, type ProviderBudgets, type UpstreamRequest, type UpstreamResponse } from "./provider.js";

type OpenAICompatibleConfig = Extract<ProviderConfig, { type: "openai-compatible" }>;

/**
 * Any server that speaks the OpenAI REST API (OpenAI, xAI, vLLM, Ollama, llama.cpp server).
 * `baseURL` ends in the API root (e.g. "https://api.openai.com/v1"); batch endpoint "/v1/chat/completions" is sent to
 * `<baseURL>/chat/completions`. One keep-alive connection pool per provider, sized to its concurrency.
 */
export class OpenAICompatibleProvider implements Provider {
  readonly type = "openai-compatible";
  readonly format = "openai" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets: ProviderBudgets;
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    readonly name: string,
    private readonly config: OpenAICompatibleConfig,
  ) {
    this.maxConcurrency = config.maxConcurrency;
    this.timeoutMs = config.timeoutMs;
    this.budgets = { rpm: config.rpm, tpm: config.tpm, modelBudgets: config.modelBudgets };
    const url = new URL(config.baseURL);
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.pool = new Pool(url.origin, {
      connections: config.maxConcurrency,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    });
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    const apiKey = request.apiKey ?? this.config.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", ...this.config.headers };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    try {
      const res = await this.pool.request({
        method: "POST",
        path: this.basePath + request.endpoint.replace(/^\/v1/, ""),
        headers,
        // A body translated from Gemini names no model (it travelled in the URL there): take the request's.
        body: withModel(request.body, request.model),
        // The pool's headers/body timeouts bound the call; a non-streamed answer sends its headers last.
        signal,
      });
      const body = await res.body.text();
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(", ") : v;
      return { status: res.statusCode, headers: flat, body };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (isTimeout(err)) {
        throw new UpstreamUnreachableError(`${this.name}: no answer within ${this.timeoutMs} ms`, "upstream_timeout");
      }
      throw new UpstreamUnreachableError(`${this.name}: ${(err as Error).message}`, "upstream_unreachable");
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}
