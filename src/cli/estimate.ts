import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { costOf, priceOf } from "../core/pricing.js";
import { requestTokens } from "../engine/token-cost.js";
import { loadConfig } from "./config-file.js";
import { plannedMode, type PlannedMode } from "../engine/native/mode.js";

/** Options of `openbatch estimate`. */
export interface EstimateOptions {
  model?: string;
  config?: string;
  json: boolean;
}

/** What `openbatch estimate` reports. Tokens from a real tokenizer; costs in USD. */
export interface Estimate {
  requests: number;
  bytes: number;
  model: string | null;
  inputTokens: number;
  maxOutputTokens: number;
  cost: { regular: number; batch: number; savings: number; expected: number } | null;
  /** How the batch would run (24 h window): natively on the provider's batch API (batch prices) or directly (regular). */
  run: PlannedMode;
  split: { batches: number; requestsPerBatch: number; reason: string };
}

/**
 * `openbatch estimate input.jsonl`: request count, prompt tokens and the output bound (max_tokens), the regular vs batch
 * cost from the config's `prices` (output priced at its bound, so an upper estimate), and a recommended split that
 * keeps each batch within the request and byte limits.
 * @returns the estimate (also printed).
 */
export async function estimate(input: string, options: EstimateOptions): Promise<Estimate> {
  const config = await loadConfig(options.config);
  const bytes = (await stat(input)).size;
  let requests = 0;
  let inputTokens = 0;
  let maxOutputTokens = 0;
  let model: string | null = options.model ?? null;
  const lines = createInterface({ input: createReadStream(input), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    requests++;
    let body = "{}";
    try {
      const parsed = JSON.parse(line) as { body?: unknown; request?: unknown; params?: unknown };
      const request = (parsed.body ?? parsed.request ?? parsed.params ?? parsed) as Record<string, unknown>;
      if (model === null && typeof request.model === "string") model = request.model;
      body = JSON.stringify(request);
    } catch {
      // an invalid line still counts as a request; validation will name it
    }
    const t = requestTokens(body);
    inputTokens += t.input;
    maxOutputTokens += t.maxOutput;
  }
  const price = priceOf(config.prices, model);
  const c = price ? costOf(price, { input: inputTokens, output: maxOutputTokens }) : null;
  const run = plannedMode(config, model);
  const byRequests = Math.ceil(requests / config.limits.maxRequestsPerBatch);
  const byBytes = Math.ceil(bytes / config.limits.maxFileBytes);
  const batches = Math.max(1, byRequests, byBytes);
  const result: Estimate = {
    requests,
    bytes,
    model,
    inputTokens,
    maxOutputTokens,
    cost: c && { regular: c.regular, batch: c.batch, savings: c.regular - c.batch, expected: run.mode === "native" ? c.batch : c.regular },
    run,
    split: {
      batches,
      requestsPerBatch: Math.ceil(requests / batches),
      reason:
        batches === 1
          ? "fits one batch"
          : byBytes >= byRequests
            ? `${(bytes / 1e6).toFixed(0)} MB exceeds the ${(config.limits.maxFileBytes / 1e6).toFixed(0)} MB file limit`
            : `${requests} requests exceed the ${config.limits.maxRequestsPerBatch} per-batch limit`,
    },
  };
  if (options.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return result;
  }
  const usd = (x: number) => `$${x.toFixed(4)}`;
  const out = [
    `Requests:          ${requests} (${(bytes / 1e6).toFixed(2)} MB)`,
    `Model:             ${model ?? "(none named)"}`,
    `Input tokens:      ${inputTokens} (o200k_base)`,
    `Output tokens:     up to ${maxOutputTokens} (sum of max_tokens)`,
    c
      ? `Cost (upper):      regular ${usd(c.regular)}, batch ${usd(c.batch)}, saving ${usd(c.regular - c.batch)}`
      : `Cost:              no price for "${model}"; add one to the config: {"prices": {"${model ?? "<model>"}": {"input": 0.15, "output": 0.6}}} (USD per 1M tokens)`,
    `Runs:              ${run.mode}${run.provider ? ` on provider "${run.provider}"` : ""} (${run.reason}); ${run.mode === "native" ? "batch prices" : "regular prices"}`,
    `Recommended split: ${batches} batch(es) of up to ${result.split.requestsPerBatch} requests (${result.split.reason})`,
  ];
  process.stdout.write(out.join("\n") + "\n");
  return result;
}
