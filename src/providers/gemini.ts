import type { ProviderConfig } from "../core/config.js";
import { badRequest, HttpUpstream } from "./http-upstream.js";
import type { Provider, ProviderBudgets, UpstreamRequest, UpstreamResponse } from "./provider.js";

type GeminiConfig = Extract<ProviderConfig, { type: "gemini" }>;

const METHODS: Record<string, string> = { "gemini:generateContent": "generateContent", "gemini:embedContent": "embedContent" };

/**
 * Google's Gemini API: `POST {baseURL}/v1beta/models/{model}:generateContent` (or `:embedContent`) with
 * `x-goog-api-key`. `baseURL` is the origin (default https://generativelanguage.googleapis.com; a trailing `/v1beta`
 * is tolerated). The model comes from the upstream request (a leading "models/" is stripped), else from the body's
 * `model`, which is taken out of the body: it travels in the URL.
 */
export class GeminiProvider implements Provider {
  readonly type = "gemini";
  readonly format = "gemini" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets: ProviderBudgets;
  private readonly http: HttpUpstream;
  private readonly root: string;

  constructor(
    readonly name: string,
    private readonly config: GeminiConfig,
  ) {
    this.maxConcurrency = config.maxConcurrency;
    this.timeoutMs = config.timeoutMs;
    this.budgets = { rpm: config.rpm, tpm: config.tpm, modelBudgets: config.modelBudgets };
    this.http = new HttpUpstream(name, config.baseURL, config.maxConcurrency, config.timeoutMs);
    this.root = this.http.basePath.replace(/\/v1beta$/, "") + "/v1beta/";
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    const method = METHODS[request.endpoint];
    if (!method) return invalid(`${this.name} serves gemini:generateContent and gemini:embedContent only, not ${request.endpoint}.`);
    let body = request.body;
    let model = request.model;
    if (/"model"\s*:/.test(body)) {
      // A native Gemini body may name its model; the URL carries it, so it leaves the body.
      try {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && "model" in parsed) {
          if (!model && typeof parsed.model === "string") model = parsed.model;
          delete parsed.model;
          body = JSON.stringify(parsed);
        }
      } catch {
        // not JSON: the upstream says so
      }
    }
    if (!model) return invalid("The request names no model; Gemini needs one in the URL.");
    const name = model.replace(/^models\//, "");
    // "tunedModels/x" and the like are full resource names; a bare id lives under models/.
    const resource = (name.includes("/") ? name : `models/${name}`).split("/").map(encodeURIComponent).join("/");
    const apiKey = request.apiKey ?? this.config.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", ...this.config.headers };
    if (apiKey) headers["x-goog-api-key"] = apiKey;
    return this.http.post(`${this.root}${resource}:${method}`, headers, body, signal, request.maxResponseBytes);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

function invalid(message: string): UpstreamResponse {
  return badRequest({ error: { code: 400, message, status: "INVALID_ARGUMENT" } });
}
