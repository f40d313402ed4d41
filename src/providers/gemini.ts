import type { ProviderConfig } from "../core/config.js";
import { badRequest, HttpUpstream } from "./http-upstream.js";
import type { CoalescedAnswer } from "./coalesce-embeddings.js";
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
  readonly embeddingsCoalesce: number;
  private readonly http: HttpUpstream;
  private readonly root: string;

  constructor(
    readonly name: string,
    private readonly config: GeminiConfig,
  ) {
    this.maxConcurrency = config.maxConcurrency;
    this.timeoutMs = config.timeoutMs;
    this.budgets = { rpm: config.rpm, tpm: config.tpm, modelBudgets: config.modelBudgets };
    this.embeddingsCoalesce = config.embeddingsCoalesce;
    this.http = new HttpUpstream(name, config.baseURL, config.maxConcurrency, config.timeoutMs);
    this.root = this.http.basePath.replace(/\/v1beta$/, "") + "/v1beta/";
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    const method = METHODS[request.endpoint];
    if (!method) return invalid(`${this.name} serves gemini:generateContent and gemini:embedContent only, not ${request.endpoint}.`);
    const t = target(request);
    if (!t) return invalid("The request names no model; Gemini needs one in the URL.");
    return this.http.post(`${this.root}${t.path}:${method}`, this.headers(request), t.body, signal, request.maxResponseBytes);
  }

  /** Grouping key of an `embedContent` request: its model (batchEmbedContents takes one model per call). */
  embeddingsKey(request: UpstreamRequest): string | null {
    if (request.endpoint !== "gemini:embedContent") return null;
    return target(request)?.resource ?? null;
  }

  /**
   * The requests as one `:batchEmbedContents` call (`{requests:[{model, content, …}]}` → `{embeddings:[{values}]}`),
   * each answered `{embedding:{values}}` as `:embedContent` answers it alone. The call fails as a whole when one
   * request is bad: the engine splits the group and tries again.
   */
  async sendEmbeddings(requests: UpstreamRequest[], signal: AbortSignal): Promise<CoalescedAnswer> {
    const targets = requests.map((r) => target(r)!);
    const first = targets[0]!;
    const parts: string[] = [];
    for (const t of targets) {
      const b = t.body.trim();
      // Each body is a JSON object already without its model: the model field goes first, the body follows.
      parts.push(`{"model":${JSON.stringify(first.resource)}${b === "{}" ? "" : "," + b.slice(1, -1)}}`);
    }
    const body = `{"requests":[${parts.join(",")}]}`;
    const answer = await this.http.post(`${this.root}${first.path}:batchEmbedContents`, this.headers(requests[0]!), body, signal, requests[0]!.maxResponseBytes);
    if (answer.status < 200 || answer.status >= 300) return { kind: "whole", answer };
    let embeddings: unknown;
    try {
      embeddings = (JSON.parse(answer.body) as { embeddings?: unknown }).embeddings;
    } catch {
      return { kind: "whole", answer };
    }
    if (!Array.isArray(embeddings) || embeddings.length !== requests.length) return { kind: "whole", answer };
    return { kind: "each", status: answer.status, headers: answer.headers, bodies: embeddings.map((embedding) => JSON.stringify({ embedding })) };
  }

  private headers(request: UpstreamRequest): Record<string, string> {
    const apiKey = request.apiKey ?? this.config.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", ...this.config.headers };
    if (apiKey) headers["x-goog-api-key"] = apiKey;
    return headers;
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

function invalid(message: string): UpstreamResponse {
  return badRequest({ error: { code: 400, message, status: "INVALID_ARGUMENT" } });
}

/**
 * Where a request goes: its model as a resource name (`models/x`, or a full name such as `tunedModels/x`), that name
 * URL-encoded per segment, and the body without `model` (it travels in the URL). The model comes from the request,
 * else from the body. @returns null when neither names one.
 */
function target(request: UpstreamRequest): { resource: string; path: string; body: string } | null {
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
  if (!model) return null;
  const name = model.replace(/^models\//, "");
  // "tunedModels/x" and the like are full resource names; a bare id lives under models/.
  const resource = name.includes("/") ? name : `models/${name}`;
  return { resource, path: resource.split("/").map(encodeURIComponent).join("/"), body };
}
