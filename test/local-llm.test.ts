import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/core/config.js";
import { LocalLlmProvider } from "../src/providers/local/local-llm.js";
import { createProvider } from "../src/providers/registry.js";
import { readJsonl, startServer, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/** A real 1.2 MB GGUF (llama architecture, 512-token vocabulary, no chat template); its text is children's-story gibberish. */
const MODEL = fileURLToPath(new URL("../../shared/models/stories260K.gguf", import.meta.url));

type Line = { custom_id: string; method: "POST"; url: string; body: Record<string, unknown> };

const chatLine = (id: string, content: string, extra: Record<string, unknown> = {}): Line => ({
  custom_id: id,
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "stories260K", messages: [{ role: "user", content }], max_tokens: 24, ...extra },
});
const completionLine = (id: string, prompt: string, extra: Record<string, unknown> = {}): Line => ({
  custom_id: id,
  method: "POST",
  url: "/v1/completions",
  body: { model: "stories260K", prompt, max_tokens: 24, ...extra },
});

async function runBatch(server: TestServer, endpoint: "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings", lines: Line[]) {
  const client = server.client();
  const file = await uploadJsonl(client, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  const batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h" });
  const done = await waitFor(client, batch.id, undefined, 110_000);
  const out = await readJsonl(client, done.output_file_id);
  const errors = await readJsonl(client, done.error_file_id);
  return { done, out, errors, byId: new Map<string, any>(out.map((l) => [l.custom_id, l.response.body])) };
}

describe("local-llm: an embedded GGUF model (stories260K) behind the OpenAI batch API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ providers: { llm: { type: "local-llm", model: MODEL, parallelSequences: 4 } }, models: { "stories*": "llm" } });
  }, 120_000);
  afterAll(async () => {
    await server.close();
  });

  it("runs a chat batch of 20 requests: one output line each, real tokens, usage summed on the batch", async () => {
    const prompts = ["Once upon a time", "Lily had a dog", "The sun was hot", "Tom went to the park", "A little bird"];
    const lines = Array.from({ length: 20 }, (_, i) => chatLine(`chat-${i}`, prompts[i % prompts.length]!, { seed: i }));
    const { done, out, errors } = await runBatch(server, "/v1/chat/completions", lines);
    expect(done.status).toBe("completed");
    expect(errors).toEqual([]);
    expect(done.request_counts).toEqual({ total: 20, completed: 20, failed: 0 });
    expect(out.map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    let prompt = 0;
    let completion = 0;
    for (const line of out) {
      expect(line.response.status_code).toBe(200);
      const body = line.response.body;
      expect(body.object).toBe("chat.completion");
      expect(body.model).toBe("stories260K");
      expect(body.id).toMatch(/^chatcmpl-/);
      expect(body.choices).toHaveLength(1);
      expect(body.choices[0].index).toBe(0);
      expect(body.choices[0].message.role).toBe("assistant");
      expect(typeof body.choices[0].message.content).toBe("string");
      expect(["stop", "length"]).toContain(body.choices[0].finish_reason);
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
      expect(body.usage.completion_tokens).toBeLessThanOrEqual(24);
      expect(body.usage.prompt_tokens).toBeGreaterThan(0);
      expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
      prompt += body.usage.prompt_tokens;
      completion += body.usage.completion_tokens;
    }
    expect(done.usage?.input_tokens).toBe(prompt);
    expect(done.usage?.output_tokens).toBe(completion);
  });

  it("runs a completions batch (raw prompt continuation) and honours max_tokens", async () => {
    const lines = [
      completionLine("c-0", "Once upon a time", { max_tokens: 5 }),
      completionLine("c-1", "Once upon a time", { max_tokens: 1 }),
      completionLine("c-2", "The dog", { max_tokens: 40, temperature: 0 }),
      completionLine("c-3", "Lily and Tom", { max_tokens: 12, n: 2, seed: 7 }),
    ];
    const { done, byId } = await runBatch(server, "/v1/completions", lines);
    expect(done.request_counts).toEqual({ total: 4, completed: 4, failed: 0 });
    for (const [id, max] of [["c-0", 5], ["c-1", 1], ["c-2", 40]] as const) {
      const body = byId.get(id);
      expect(body.object).toBe("text_completion");
      expect(body.choices).toHaveLength(1);
      expect(typeof body.choices[0].text).toBe("string");
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
      expect(body.usage.completion_tokens).toBeLessThanOrEqual(max);
      if (body.usage.completion_tokens < max) expect(body.choices[0].finish_reason).toBe("stop");
      else expect(body.choices[0].finish_reason).toBe("length");
    }
    expect(byId.get("c-1").usage.completion_tokens).toBe(1);
    expect(byId.get("c-1").choices[0].finish_reason).toBe("length");
    const two = byId.get("c-3");
    expect(two.choices.map((c: { index: number }) => c.index)).toEqual([0, 1]);
    expect(two.usage.completion_tokens).toBeLessThanOrEqual(24);
  });

  it("gives identical text for the same seed and temperature 0, and for the same seed with sampling", async () => {
    // Each request runs alone: decoded beside others, llama.cpp's batched arithmetic may round differently (as in any
    // continuous-batching server), so determinism is promised per request, not across batch compositions.
    const alone = async (line: Line, id: string) => (await runBatch(server, "/v1/completions", [line])).byId.get(id).choices[0].text as string;
    const greedyA = await alone(completionLine("greedy-a", "Once upon a time", { temperature: 0, seed: 1, max_tokens: 32 }), "greedy-a");
    const greedyB = await alone(completionLine("greedy-b", "Once upon a time", { temperature: 0, seed: 7, max_tokens: 32 }), "greedy-b");
    const sampledA = await alone(completionLine("sampled-a", "The cat", { temperature: 1, seed: 1234, max_tokens: 32 }), "sampled-a");
    const sampledB = await alone(completionLine("sampled-b", "The cat", { temperature: 1, seed: 1234, max_tokens: 32 }), "sampled-b");
    expect(greedyA.length).toBeGreaterThan(0);
    expect(greedyB).toBe(greedyA); // temperature 0 ignores the seed
    expect(sampledB).toBe(sampledA);
  });

  it("honours stop strings (string or array): the text ends before the stop and finish_reason is stop", async () => {
    // Find what the model says greedily, then stop on a word from the middle of it.
    const probe = await runBatch(server, "/v1/completions", [completionLine("probe", "Once upon a time", { temperature: 0, max_tokens: 40 })]);
    const full = probe.byId.get("probe").choices[0].text as string;
    const words = full.split(/\s+/).filter((w) => /^[a-z]{3,}$/i.test(w));
    expect(words.length).toBeGreaterThan(2);
    const word = words[2]!;
    const cutAt = full.indexOf(word);
    const { byId } = await runBatch(server, "/v1/completions", [
      completionLine("s-string", "Once upon a time", { temperature: 0, max_tokens: 40, stop: word }),
      completionLine("s-array", "Once upon a time", { temperature: 0, max_tokens: 40, stop: ["zzzz", word] }),
    ]);
    for (const id of ["s-string", "s-array"]) {
      const body = byId.get(id);
      expect(body.choices[0].text).toBe(full.slice(0, cutAt));
      expect(body.choices[0].text).not.toContain(word);
      expect(body.choices[0].finish_reason).toBe("stop");
      expect(body.usage.completion_tokens).toBeLessThan(probe.byId.get("probe").usage.completion_tokens);
    }
  });

  it("serves embeddings from the model, normalised, with usage", async () => {
    const { done, byId } = await runBatch(server, "/v1/embeddings", [
      { custom_id: "e-0", method: "POST", url: "/v1/embeddings", body: { model: "stories260K", input: ["The cat sat", "The cat sat"] } },
    ]);
    expect(done.request_counts?.completed).toBe(1);
    const body = byId.get("e-0");
    expect(body.object).toBe("list");
    expect(body.data).toHaveLength(2);
    const v = body.data[0].embedding as number[];
    expect(v).toHaveLength(64);
    expect(Math.abs(v.reduce((s, x) => s + x * x, 0) - 1)).toBeLessThan(1e-4);
    expect(body.data[1].embedding).toEqual(v);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("fails bad request bodies per item with a 400 naming the field", async () => {
    const { done, errors, out } = await runBatch(server, "/v1/chat/completions", [
      chatLine("ok", "Once upon a time"),
      { custom_id: "no-messages", method: "POST", url: "/v1/chat/completions", body: { model: "stories260K", messages: [] } },
      chatLine("bad-max", "Hi", { max_tokens: -3 }),
      chatLine("bad-temp", "Hi", { temperature: "hot" }),
      chatLine("bad-stop", "Hi", { stop: [1, 2] }),
      { custom_id: "bad-role", method: "POST", url: "/v1/chat/completions", body: { model: "stories260K", messages: [{ role: "wizard", content: "x" }] } },
    ]);
    expect(done.request_counts).toEqual({ total: 6, completed: 1, failed: 5 });
    expect(out.map((l) => l.custom_id)).toEqual(["ok"]);
    const param = new Map(errors.map((e) => [e.custom_id, e.response.body.error.param]));
    expect(Object.fromEntries(param)).toEqual({
      "no-messages": "messages",
      "bad-max": "max_tokens",
      "bad-temp": "temperature",
      "bad-stop": "stop",
      "bad-role": "messages[0].role",
    });
    for (const e of errors) {
      expect(e.response.status_code).toBe(400);
      expect(e.response.body.error.type).toBe("invalid_request_error");
    }
  });

  it("answers a synchronous chat completion through the official SDK", async () => {
    const res = await server.client().chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 8, temperature: 0 });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]!.message.content).toBeTypeOf("string");
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBeLessThanOrEqual(8);
  });
});

describe("local-llm: a model that cannot be loaded fails its items, never the server", () => {
  let server: TestServer;
  let dir: string;
  let missing: string;
  let corrupt: string;
  let truncated: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "openbatch-llm-"));
    missing = join(dir, "does-not-exist.gguf");
    corrupt = join(dir, "corrupt.gguf");
    await writeFile(corrupt, Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919 + 13) % 256)));
    // A real header whose tensor data is cut off: llama.cpp itself refuses it (the native load path).
    truncated = join(dir, "truncated.gguf");
    const real = await readFile(MODEL);
    await writeFile(truncated, real.subarray(0, Math.floor(real.length / 2)));
    server = await startServer({
      providers: {
        missing: { type: "local-llm", model: missing },
        corrupt: { type: "local-llm", model: corrupt },
        truncated: { type: "local-llm", model: truncated },
        good: { type: "local-llm", model: MODEL, parallelSequences: 2 },
      },
      models: { "missing*": "missing", "corrupt*": "corrupt", "truncated*": "truncated", "stories*": "good" },
    });
  }, 120_000);
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const kind of ["missing", "corrupt", "truncated"] as const) {
    it(`answers every item for a ${kind} model file with a final 424 naming the file`, async () => {
      const lines = Array.from({ length: 3 }, (_, i) => chatLine(`${kind}-${i}`, "Hello", { model: `${kind}-model` }));
      const { done, out, errors } = await runBatch(server, "/v1/chat/completions", lines);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
      expect(out).toEqual([]);
      expect(errors).toHaveLength(3);
      const path = { missing, corrupt, truncated }[kind];
      for (const e of errors) {
        expect(e.response.status_code).toBe(424);
        expect(e.response.body.error.message).toContain(path);
        expect(e.response.body.error.code).toBe("model_unavailable");
      }
      const why = { missing: /no such file/, corrupt: /GGUF/, truncated: /failed to load/i }[kind];
      expect(errors[0].response.body.error.message).toMatch(why);

      const health = await fetch(server.url.replace(/\/v1$/, "/healthz"));
      expect(health.status).toBe(200);
      const good = await runBatch(server, "/v1/completions", [completionLine("still-ok", "Once upon a time", { max_tokens: 4 })]);
      expect(good.done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    });
  }
});

describe("local-llm provider", () => {
  it("decodes 4 requests at once in one context (continuous batching), and a 5th waits for a free sequence", async () => {
    const provider = createProvider("llm", parseConfig({ providers: { llm: { type: "local-llm", model: MODEL, parallelSequences: 4 } } }).providers.llm!, { cacheDir: tmpdir() });
    expect(provider).toBeInstanceOf(LocalLlmProvider);
    const llm = provider as LocalLlmProvider;
    expect(llm.maxConcurrency).toBe(8); // twice the sequences: extra calls queue for a free sequence
    try {
      const signal = new AbortController().signal;
      const finished: number[] = [];
      let maxActiveAtFirstFinish = -1;
      const sends = Array.from({ length: 5 }, (_, i) =>
        llm
          .send({ endpoint: "/v1/completions", model: "stories260K", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 64 + i, temperature: 0.8, seed: i }) }, signal)
          .then((res) => {
            if (finished.length === 0) maxActiveAtFirstFinish = llm.stats.peakActive;
            finished.push(i);
            return res;
          }),
      );
      const answers = await Promise.all(sends);
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(JSON.parse(a.body).usage.completion_tokens).toBeGreaterThan(0);
      }
      // All four sequences were generating before any request finished; the fifth never made a fifth at once.
      expect(maxActiveAtFirstFinish).toBe(4);
      expect(llm.stats.peakActive).toBe(4);
      expect(llm.stats.active).toBe(0);
    } finally {
      await llm.close();
    }
  });

  it("stops generating when the signal aborts, and rejects with its reason", async () => {
    const llm = new LocalLlmProvider("llm", { type: "local-llm", model: MODEL, parallelSequences: 1, timeoutMs: 60_000 }, tmpdir());
    try {
      await llm.load();
      const controller = new AbortController();
      const reason = new Error("cancelled by test");
      const pending = llm.send({ endpoint: "/v1/completions", model: "stories260K", body: JSON.stringify({ prompt: "Once", max_tokens: 100_000 }) }, controller.signal);
      // A second request waits for the only sequence; aborting it leaves the queue.
      const waiting = llm.send({ endpoint: "/v1/completions", model: "stories260K", body: JSON.stringify({ prompt: "Once", max_tokens: 4 }) }, controller.signal).then(
        () => "answered",
        (err: unknown) => err,
      );
      setTimeout(() => controller.abort(reason), 50);
      await expect(pending).rejects.toBe(reason);
      expect(await waiting).toBe(reason);
      expect(llm.stats.active).toBe(0);
      const after = await llm.send({ endpoint: "/v1/completions", model: "stories260K", body: JSON.stringify({ prompt: "Once", max_tokens: 3 }) }, new AbortController().signal);
      expect(after.status).toBe(200);
    } finally {
      await llm.close();
    }
  });

  it("rejects endpoints and fields it cannot serve with a 400", async () => {
    const llm = new LocalLlmProvider("llm", { type: "local-llm", model: MODEL, parallelSequences: 1, timeoutMs: 60_000 }, tmpdir());
    const signal = new AbortController().signal;
    try {
      const cases: [string, unknown, string | null][] = [
        ["/v1/responses", { input: "x" }, null],
        ["/v1/completions", { prompt: 42 }, "prompt"],
        ["/v1/completions", { prompt: "x", stream: true }, "stream"],
        ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] }, "tools"],
        ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], max_completion_tokens: 0 }, "max_completion_tokens"],
        ["/v1/completions", { prompt: [999_999] }, "prompt"],
        ["/v1/embeddings", { input: "x", dimensions: 3 }, "dimensions"],
      ];
      for (const [endpoint, body, param] of cases) {
        const res = await llm.send({ endpoint: endpoint as never, model: "stories260K", body: JSON.stringify(body) }, signal);
        expect(res.status, `${endpoint} ${JSON.stringify(body)}`).toBe(400);
        expect(JSON.parse(res.body).error.param).toBe(param);
      }
      const notJson = await llm.send({ endpoint: "/v1/completions", model: "stories260K", body: "{" }, signal);
      expect(notJson.status).toBe(400);
    } finally {
      await llm.close();
    }
  });
});
