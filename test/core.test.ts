import { describe, expect, it } from "vitest";
import { canTransition } from "../src/core/batch.js";
import { parseConfig } from "../src/core/config.js";
import { parseCompletionWindow } from "../src/core/duration.js";
import { OpenBatchError } from "../src/core/errors.js";
import { RequestLineValidator } from "../src/core/request-line.js";
import { backoffMs, retryAfterMs } from "../src/engine/retry-policy.js";
import { readUsage } from "../src/engine/usage.js";

describe("completion windows", () => {
  it("accepts 24h and durations, in ms", () => {
    expect(parseCompletionWindow("24h")).toBe(86_400_000);
    expect(parseCompletionWindow("90s")).toBe(90_000);
    expect(parseCompletionWindow("1h30m")).toBe(5_400_000);
    expect(parseCompletionWindow("500ms")).toBe(500);
  });
  it("rejects anything else with param completion_window", () => {
    for (const bad of ["", "24", "tomorrow", "0s", "-1h", 24, null]) {
      const err = (() => {
        try {
          parseCompletionWindow(bad);
        } catch (e) {
          return e;
        }
      })() as OpenBatchError;
      expect(err).toBeInstanceOf(OpenBatchError);
      expect(err.param).toBe("completion_window");
    }
  });
});

describe("request line validation", () => {
  const line = (o: unknown) => JSON.stringify(o);
  const ok = { custom_id: "a", method: "POST", url: "/v1/chat/completions", body: { model: "m" } };
  it("passes a good line and keeps its body", () => {
    const v = new RequestLineValidator("/v1/chat/completions", 10);
    expect(v.check(line(ok), 1)).toEqual({ line: 1, custom_id: "a", model: "m", body: '{"model":"m"}' });
    expect(v.check("   ", 2)).toBeNull();
    expect(v.count).toBe(1);
  });
  it("names the code, param and line of each failure", () => {
    const v = new RequestLineValidator("/v1/chat/completions", 3);
    v.check(line(ok), 1);
    expect(v.check(line(ok), 2)).toMatchObject({ code: "duplicate_custom_id", line: 2, param: "custom_id" });
    expect(v.check(line({ ...ok, custom_id: "b", body: { model: "other" } }), 3)).toMatchObject({ code: "mismatched_model", line: 3 });
    expect(v.check(line({ ...ok, custom_id: "c", url: "/v1/embeddings" }), 4)).toMatchObject({ code: "too_many_tasks", line: 4 });
    const w = new RequestLineValidator("/v1/chat/completions", 10);
    expect(w.check("{", 7)).toMatchObject({ code: "invalid_json_line", line: 7 });
    expect(w.check("[1]", 8)).toMatchObject({ code: "invalid_json_line" });
    expect(w.check(line({ ...ok, custom_id: undefined }), 9)).toMatchObject({ code: "missing_required_parameter", param: "custom_id" });
    expect(w.check(line({ ...ok, method: "GET" }), 10)).toMatchObject({ param: "method" });
    expect(w.check(line({ ...ok, custom_id: "u", url: "/v1/embeddings" }), 11)).toMatchObject({ code: "mismatched_url", param: "url" });
    expect(w.check(line({ ...ok, custom_id: "b2", body: "x" }), 12)).toMatchObject({ param: "body" });
  });
});

describe("retry policy", () => {
  it("reads retry-after-ms, seconds and HTTP dates", () => {
    expect(retryAfterMs({ "retry-after-ms": "1500" })).toBe(1500);
    expect(retryAfterMs({ "retry-after": "2" })).toBe(2000);
    expect(retryAfterMs({ "retry-after": new Date(10_000).toUTCString() }, 4_000)).toBe(6_000);
    expect(retryAfterMs({})).toBeNull();
  });
  it("backs off exponentially with jitter, capped, with Retry-After as a floor", () => {
    const s = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(1, s, null, () => 0)).toBe(50);
    expect(backoffMs(1, s, null, () => 0.999)).toBeCloseTo(99.95);
    expect(backoffMs(3, s, null, () => 1)).toBe(400);
    expect(backoffMs(10, s, null, () => 1)).toBe(1000);
    expect(backoffMs(1, s, 5000, () => 1)).toBe(5000);
  });
});

describe("usage", () => {
  it("reads chat and Responses usage shapes", () => {
    expect(readUsage({ usage: { prompt_tokens: 3, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 1 } } })).toEqual({ input_tokens: 3, cached_tokens: 1, output_tokens: 4, reasoning_tokens: 0 });
    expect(readUsage({ usage: { input_tokens: 5, output_tokens: 6, output_tokens_details: { reasoning_tokens: 2 } } })).toEqual({ input_tokens: 5, cached_tokens: 0, output_tokens: 6, reasoning_tokens: 2 });
    expect(readUsage({})).toBeNull();
  });
});

describe("batch state machine", () => {
  it("allows only legal transitions", () => {
    expect(canTransition("validating", "in_progress")).toBe(true);
    expect(canTransition("in_progress", "finalizing")).toBe(true);
    expect(canTransition("completed", "in_progress")).toBe(false);
    expect(canTransition("failed", "cancelling")).toBe(false);
    expect(canTransition("cancelling", "cancelled")).toBe(true);
    expect(canTransition("finalizing", "cancelled")).toBe(false);
  });
});

describe("config", () => {
  it("fills defaults and resolves env: secrets", () => {
    const c = parseConfig({ providers: { up: { type: "openai-compatible", baseURL: "http://x/v1", apiKey: "env:K" } }, models: { "*": "up" } }, { K: "secret" });
    const up = c.providers.up as Extract<(typeof c.providers)[string], { type: "openai-compatible" }>;
    expect(up.apiKey).toBe("secret");
    expect(up.maxConcurrency).toBe(16);
    expect(c.limits.maxRequestsPerBatch).toBe(50_000);
    expect(c.retry.maxAttempts).toBe(6);
  });
  it("names what is wrong", () => {
    expect(() => parseConfig({ providers: { up: { type: "openai-compatible", baseURL: "x" } } })).toThrow(/providers\.up\.baseURL/);
    expect(() => parseConfig({ models: { "*": "nope" } })).toThrow(/unknown provider "nope"/);
    expect(() => parseConfig({ apiKeys: ["env:MISSING"] }, {})).toThrow(/MISSING/);
    expect(() => parseConfig({ bogus: 1 })).toThrow(/Invalid config/);
  });
});
