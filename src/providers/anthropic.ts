import type { ProviderConfig } from "../core/config.js";
import { badRequest, HttpUpstream, withModel } from "./http-upstream.js";
import type { Provider, ProviderBudgets, UpstreamRequest, UpstreamResponse } from "./provider.js";

type AnthropicConfig = Extract<ProviderConfig, { type: "anthropic" }>;

/** The Messages API version sent unless the config's `headers` name another. */
export const ANTHROPIC_VERSION = "2023-06-01";

/**
 * Anthropic's Messages API: `POST {baseURL}/v1/messages` with `x-api-key` and `anthropic-version`. `baseURL` is the
 * origin (default https://api.anthropic.com; a trailing `/v1` is tolerated). Requests in other formats arrive
 * translated (providers/translate); a body without `model` gets the upstream request's model.
 */
export class AnthropicProvider implements Provider {
  readonly type = "anthropic";
  readonly format = "anthropic" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets: ProviderBudgets;
  private readonly http: HttpUpstream;
  private readonly path: string;

  constructor(
    readonly name: string,
    private readonly config: AnthropicConfig,
  ) {
    this.maxConcurrency = config.maxConcurrency;
    this.timeoutMs = config.timeoutMs;
    this.budgets = { rpm: config.rpm, tpm: config.tpm, modelBudgets: config.modelBudgets };
    this.http = new HttpUpstream(name, config.baseURL, config.maxConcurrency, config.timeoutMs);
    this.path = this.http.basePath.replace(/\/v1$/, "") + "/v1/messages";
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    if (request.endpoint !== "/v1/messages") {
      return badRequest({ type: "error", error: { type: "invalid_request_error", message: `${this.name} serves /v1/messages only, not ${request.endpoint}.` } });
    }
    const apiKey = request.apiKey ?? this.config.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, ...this.config.headers };
    if (apiKey) headers["x-api-key"] = apiKey;
    return this.http.post(this.path, headers, withModel(request.body, request.model), signal, request.maxResponseBytes);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
