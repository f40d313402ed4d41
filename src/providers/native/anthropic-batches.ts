import { ANTHROPIC_VERSION } from "../anthropic.js";
import type { NativeBatchApi, NativeRequestLine, VendorCall, VendorEnd, VendorLimits, VendorProgress, VendorResult, VendorSubmission } from "./native-api.js";
import { VendorError } from "./native-api.js";
import { VendorBatches, versionRoot } from "./vendor-http.js";

/** Anthropic Message Batches limits: 100,000 requests or 256 MB per batch. */
export const ANTHROPIC_LIMITS: VendorLimits = { maxRequests: 100_000, maxBytes: 256 * 1024 * 1024 };

type Json = Record<string, unknown>;

/** Anthropic error types → the HTTP status its Messages API answers them with (a batch result carries no status). */
const STATUS_OF: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/**
 * Anthropic Message Batches: `POST {baseURL}/v1/messages/batches {requests:[{custom_id, params}]}` (the body is
 * streamed), poll `GET …/{id}` until `processing_status` is `ended`, read the JSONL at its `results_url`, cancel with
 * `POST …/{id}/cancel`. `baseURL` is the origin (a trailing `/v1` is tolerated), as for the Anthropic provider.
 * Anthropic batches carry no tag of ours, so `findByTag` finds nothing: a crash after the create call reached
 * Anthropic and before its id was stored submits that chunk again (see README); its results are still recorded once.
 */
export class AnthropicBatches extends VendorBatches implements NativeBatchApi {
  readonly vendor = "anthropic" as const;
  readonly format = "anthropic" as const;
  readonly taggable = false;
  private readonly root: string;

  constructor(
    name: string,
    baseURL: string,
    apiKey: string | undefined,
    headers: Record<string, string>,
    limits: VendorLimits,
    timeoutMs: number,
  ) {
    super(name, apiKey, { "anthropic-version": ANTHROPIC_VERSION, ...headers }, limits, timeoutMs);
    this.root = versionRoot(baseURL, "v1", "/messages/batches");
  }

  lineOverhead(line: NativeRequestLine): number {
    return line.customId.length + 32;
  }

  protected keyHeader(key: string): Record<string, string> {
    return { "x-api-key": key };
  }

  async create(s: VendorSubmission, _fileId: string | null, call: VendorCall): Promise<string> {
    async function* body() {
      let text = `{"requests":[`;
      let first = true;
      for await (const l of s.lines()) {
        text += `${first ? "" : ","}{"custom_id":${JSON.stringify(l.customId)},"params":${l.body}}`;
        first = false;
        if (text.length >= 65_536) {
          yield text;
          text = "";
        }
      }
      yield text + "]}";
    }
    const batch = await this.http.json("POST", this.root, this.auth(call, { "content-type": "application/json" }), body(), call.signal);
    if (typeof batch.id !== "string") throw new VendorError(`Message batch create answered no id: ${JSON.stringify(batch).slice(0, 200)}`, null, true);
    return batch.id;
  }

  async findByTag(): Promise<string | null> {
    return null;
  }

  async poll(vendorId: string, call: VendorCall): Promise<VendorProgress> {
    const b = await this.http.json("GET", `${this.root}/${encodeURIComponent(vendorId)}`, this.auth(call), null, call.signal);
    const status = String(b.processing_status);
    const counts = (b.request_counts ?? {}) as Json;
    if (status !== "ended") return { status, ended: null, counts: { completed: Number(counts.succeeded) || 0, failed: Number(counts.errored) || 0 } };
    // A batch has no failed state: per-request results say what ran; expiry or a cancel leaves some unrun.
    const ended: VendorEnd = Number(counts.expired) > 0 ? "expired" : Number(counts.canceled) > 0 ? "cancelled" : "completed";
    return { status, ended, resultRef: { results_url: b.results_url ?? null } };
  }

  async *results(vendorId: string, progress: { resultRef: unknown }, call: VendorCall): AsyncGenerator<VendorResult> {
    const url = ((progress.resultRef ?? {}) as { results_url?: string | null }).results_url ?? `${this.root}/${encodeURIComponent(vendorId)}/results`;
    for await (const text of this.http.lines(url, this.auth(call), call.signal)) {
      let line: Json;
      try {
        line = JSON.parse(text) as Json;
      } catch {
        continue;
      }
      const customId = typeof line.custom_id === "string" ? line.custom_id : null;
      const result = (line.result ?? {}) as Json;
      if (!customId) continue;
      switch (result.type) {
        case "succeeded":
          yield { kind: "answer", customId, status: 200, requestId: null, body: JSON.stringify(result.message ?? null) };
          break;
        case "errored": {
          const error = (result.error ?? {}) as Json;
          const type = String(((error.error ?? {}) as Json).type ?? "api_error");
          yield { kind: "answer", customId, status: STATUS_OF[type] ?? 500, requestId: typeof error.request_id === "string" ? error.request_id : null, body: JSON.stringify(error) };
          break;
        }
        case "canceled":
          yield { kind: "unrun", customId, why: "cancelled" };
          break;
        case "expired":
          yield { kind: "unrun", customId, why: "expired" };
          break;
        default:
          yield { kind: "error", customId, code: "vendor_error", message: `Unknown result type ${JSON.stringify(result.type)} from Anthropic.` };
      }
    }
  }

  async cancel(vendorId: string, call: VendorCall): Promise<void> {
    await this.http.json("POST", `${this.root}/${encodeURIComponent(vendorId)}/cancel`, this.auth(call), null, call.signal);
  }
}
