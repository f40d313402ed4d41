import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GoogleGenAI, type BatchJob } from "google-genai-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { SHARED_CACHE_DIR, startServer, upstreamConfig, type TestServer } from "./support/harness.js";

const API_KEY = "gm-test-key";
const ENDED = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Gemini Batch Mode through @google/genai, and seed 003 over fetch, run on an OpenAI-compatible upstream", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let base: string;
  let ai: GoogleGenAI;
  let tmp: string;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer({ ...upstreamConfig(upstream.url, { maxConcurrency: 4 }), apiKeys: [API_KEY] }, { cacheDir: SHARED_CACHE_DIR });
    base = server.url.replace(/\/v1$/, "");
    ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: base } });
    tmp = await mkdtemp(join(tmpdir(), "openbatch-gemini-"));
  }, 120_000);
  afterAll(async () => {
    await server.close();
    await upstream.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  /** Raw call with the Gemini key header; JSON in and out. */
  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { "x-goog-api-key": API_KEY, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  }

  async function untilEnded(name: string): Promise<BatchJob> {
    for (let i = 0; i < 2400; i++) {
      const job = await ai.batches.get({ name });
      if (ENDED.includes(job.state!)) return job;
      await sleep(25);
    }
    throw new Error(`batch ${name} never ended`);
  }

  const prompt = (text: string) => ({ contents: [{ role: "user", parts: [{ text }] }] });

  it("inline batchGenerateContent: create → get until SUCCEEDED → inlinedResponses in input order with metadata", async () => {
    const created = await ai.batches.create({
      model: "gemini-2.5-flash",
      src: [0, 1, 2].map((i) => ({ ...prompt(`hello ${i}`), metadata: { key: `k${i}` }, config: { maxOutputTokens: 16, temperature: 0.1, systemInstruction: "Answer briefly." } })),
      config: { displayName: "inline test" },
    });
    expect(created.name).toMatch(/^batches\/batch_[0-9a-f]+$/);
    expect(created.displayName).toBe("inline test");
    expect(created.model).toBe("models/gemini-2.5-flash");
    expect(["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]).toContain(created.state);
    expect(created.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);

    const done = await untilEnded(created.name!);
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    expect(done.endTime).toBeTruthy();
    const responses = done.dest!.inlinedResponses!;
    expect(responses.map((r) => r.metadata)).toEqual([{ key: "k0" }, { key: "k1" }, { key: "k2" }]);
    expect(responses.map((r) => r.response!.candidates![0]!.content!.parts![0]!.text)).toEqual(["echo: hello 0", "echo: hello 1", "echo: hello 2"]);
    expect(responses.every((r) => r.error === undefined)).toBe(true);

    // The OpenAI upstream got chat requests translated from Gemini's format, the model from the URL.
    const sent = upstream.calls.find((c) => c.key === "hello 1")!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.body).toMatchObject({ model: "gemini-2.5-flash", messages: [{ role: "system", content: "Answer briefly." }, { role: "user", content: "hello 1" }], max_tokens: 16, temperature: 0.1 });

    // The raw Operation: int64 stats as strings, zeros left out, output both in metadata and response.
    const raw = await call("GET", `/v1beta/${created.name}`);
    expect(raw.status).toBe(200);
    expect(raw.json.done).toBe(true);
    expect(raw.json.metadata["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch");
    expect(raw.json.metadata.state).toBe("BATCH_STATE_SUCCEEDED");
    expect(raw.json.metadata.batchStats).toEqual({ requestCount: "3", successfulRequestCount: "3" });
    expect(raw.json.response["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput");
    expect(raw.json.response.inlinedResponses.inlinedResponses).toHaveLength(3);
  });

  it("file input: ai.files.upload a JSONL, create from its name, download the responsesFile in input order", async () => {
    const lines = [0, 1, 2, 3, 4].map((i) => JSON.stringify({ key: `f${i}`, request: { ...prompt(`file ${i}`), generationConfig: { maxOutputTokens: 8 } } }));
    const path = join(tmp, "requests.jsonl");
    await writeFile(path, lines.join("\n") + "\n");
    const file = await ai.files.upload({ file: path, config: { displayName: "requests.jsonl", mimeType: "jsonl" } });
    expect(file.name).toMatch(/^files\/file-[0-9a-f]+$/);
    expect(file.state).toBe("ACTIVE");
    expect(file.sizeBytes).toBe(String((lines.join("\n") + "\n").length));
    const meta = await ai.files.get({ name: file.name! });
    expect(meta).toMatchObject({ name: file.name, displayName: "requests.jsonl", sizeBytes: file.sizeBytes });
    const listed: string[] = [];
    for await (const f of await ai.files.list({ config: { pageSize: 1 } })) listed.push(f.name!);
    expect(listed).toContain(file.name);

    const created = await ai.batches.create({ model: "gemini-2.5-flash", src: file.name!, config: { displayName: "from file" } });
    const done = await untilEnded(created.name!);
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    expect(done.dest?.fileName).toMatch(/^files\/responses-batch_/);
    expect(done.dest?.inlinedResponses).toBeUndefined();

    const out = join(tmp, "responses.jsonl");
    await ai.files.download({ file: done.dest!.fileName!, downloadPath: out });
    // The SDK's downloader pipes without waiting for the last write to land; give it a moment.
    let text = "";
    for (let i = 0; i < 100 && text.split("\n").filter(Boolean).length < 5; i++, await sleep(10)) text = await readFile(out, "utf8");
    const parsed = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(parsed.map((l) => l.key)).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    expect(parsed[3].response.candidates[0].content.parts[0].text).toBe("echo: file 3");

    // The same bytes over raw fetch, at both download paths.
    for (const p of [`/download/v1beta/${done.dest!.fileName}:download?alt=media`, `/v1beta/${done.dest!.fileName}:download?alt=media`]) {
      const res = await fetch(base + p, { headers: { "x-goog-api-key": API_KEY } });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(text);
    }
    // The uploaded file downloads as it was sent.
    const res = await fetch(`${base}/download/v1beta/${file.name}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
    expect(await res.text()).toBe(lines.join("\n") + "\n");
  });

  it("resumable upload in several chunks over raw fetch; a wrong offset is refused", async () => {
    const start = await fetch(`${base}/upload/v1beta/files`, {
      method: "POST",
      headers: { "x-goog-api-key": API_KEY, "content-type": "application/json", "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", "x-goog-upload-header-content-length": "11" },
      body: JSON.stringify({ file: { displayName: "chunks.txt", mimeType: "text/plain" } }),
    });
    expect(start.status).toBe(200);
    const url = start.headers.get("x-goog-upload-url")!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/upload\/v1beta\/files\?/);
    const send = (command: string, offset: number, body: string) =>
      fetch(url, { method: "POST", headers: { "x-goog-api-key": API_KEY, "x-goog-upload-command": command, "x-goog-upload-offset": String(offset) }, body });
    const first = await send("upload", 0, "hello ");
    expect(first.headers.get("x-goog-upload-status")).toBe("active");
    const wrong = await send("upload", 3, "xx");
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error.status).toBe("INVALID_ARGUMENT");

    // The refused chunk ended that session; a new one goes through to the end.
    const start2 = await fetch(`${base}/upload/v1beta/files`, {
      method: "POST",
      headers: { "x-goog-api-key": API_KEY, "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start" },
    });
    const url2 = start2.headers.get("x-goog-upload-url")!;
    const post = (command: string, offset: number, body: string) =>
      fetch(url2, { method: "POST", headers: { "x-goog-api-key": API_KEY, "x-goog-upload-command": command, "x-goog-upload-offset": String(offset) }, body });
    expect((await post("upload", 0, "hello ")).headers.get("x-goog-upload-status")).toBe("active");
    const last = await post("upload, finalize", 6, "world");
    expect(last.headers.get("x-goog-upload-status")).toBe("final");
    const { file } = await last.json();
    expect(file).toMatchObject({ state: "ACTIVE", sizeBytes: "11" });
    const content = await fetch(`${base}/v1beta/${file.name}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
    expect(await content.text()).toBe("hello world");
    await ai.files.delete({ name: file.name });
    await expect(ai.files.get({ name: file.name })).rejects.toMatchObject({ status: 404 });
  });

  it("lists batches page by page to the last page (no nextPageToken there)", async () => {
    const names: string[] = [];
    for (let i = 0; i < 3; i++) names.push((await ai.batches.create({ model: "gemini-2.5-flash", src: [prompt(`list ${i}`)] })).name!);
    const seen: string[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) seen.push(job.name!);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 3)).toEqual([...names].reverse());

    const first = await call("GET", "/v1beta/batches?pageSize=2");
    expect(first.json.operations).toHaveLength(2);
    expect(typeof first.json.nextPageToken).toBe("string");
    let token: string | undefined = first.json.nextPageToken;
    let last = first;
    while (token) {
      last = await call("GET", `/v1beta/batches?pageSize=2&pageToken=${encodeURIComponent(token)}`);
      token = last.json.nextPageToken;
    }
    expect("nextPageToken" in last.json).toBe(false);
  });

  it("cancels a running batch (slow upstream); delete is refused until it ended, then the batch is gone", async () => {
    upstream.plan = () => ({ kind: "delay", ms: 400 });
    try {
      const created = await ai.batches.create({ model: "gemini-2.5-flash", src: Array.from({ length: 8 }, (_, i) => ({ ...prompt(`slow ${i}`), metadata: { key: `s${i}` } })) });
      await expect(ai.batches.delete({ name: created.name! })).rejects.toMatchObject({ status: 409 });
      await ai.batches.cancel({ name: created.name! });
      const done = await untilEnded(created.name!);
      expect(done.state).toBe("JOB_STATE_CANCELLED");
      const responses = done.dest!.inlinedResponses!;
      expect(responses).toHaveLength(8);
      expect(responses.map((r) => r.metadata)).toEqual(Array.from({ length: 8 }, (_, i) => ({ key: `s${i}` })));
      const cancelled = responses.filter((r) => r.error);
      expect(cancelled.length).toBeGreaterThan(0);
      expect(cancelled[0]!.error).toMatchObject({ status: "CANCELLED" });

      await ai.batches.delete({ name: created.name! });
      await expect(ai.batches.get({ name: created.name! })).rejects.toMatchObject({ status: 404 });
    } finally {
      upstream.plan = () => ({ kind: "ok" });
    }
  });

  it("answers errors in Google's shape: 404 for a missing batch, 400 for bad bodies", async () => {
    await expect(ai.batches.get({ name: "batches/batch_000000000000000000000000" })).rejects.toMatchObject({ status: 404 });
    const missing = await call("GET", "/v1beta/batches/batch_000000000000000000000000");
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 404, status: "NOT_FOUND" });
    expect(typeof missing.json.error.message).toBe("string");

    const noInput = await call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", { batch: { displayName: "x", inputConfig: {} } });
    expect(noInput.status).toBe(400);
    expect(noInput.json.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
    const noContents = await call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", { batch: { inputConfig: { requests: { requests: [{ request: {} }] } } } });
    expect(noContents.status).toBe(400);
    expect(noContents.json.error.message).toMatch(/contents/);
    await expect(ai.batches.create({ model: "gemini-2.5-flash", src: "files/file-doesnotexist" })).rejects.toMatchObject({ status: 400 });
    const badMethod = await call("POST", "/v1beta/models/gemini-2.5-flash:frobnicate", {});
    expect(badMethod.status).toBe(404);
    expect(badMethod.json.error.status).toBe("NOT_FOUND");

    const noKey = await fetch(`${base}/v1beta/batches`);
    expect(noKey.status).toBe(401);
    expect((await noKey.json()).error.status).toBe("UNAUTHENTICATED");
  });

  it("embeddings: createEmbeddings on local/glove-100d, inline and from a file (file_name in snake case)", async () => {
    const texts = ["the cat sat on the mat", "stock markets fell sharply", "a kitten slept on the rug"];
    const created = await ai.batches.createEmbeddings({ model: "local/glove-100d", src: { inlinedRequests: { contents: texts.map((t) => ({ parts: [{ text: t }] })) } }, config: { displayName: "embed" } });
    expect(created.name).toMatch(/^batches\//);
    const done = await untilEnded(created.name!);
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    const vectors = done.dest!.inlinedEmbedContentResponses!.map((r) => (r.response as { embedding: { values: number[] } }).embedding.values);
    expect(vectors).toHaveLength(3);
    expect(vectors[0]).toHaveLength(100);
    const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    expect(cos(vectors[0]!, vectors[2]!)).toBeGreaterThan(cos(vectors[0]!, vectors[1]!));
    const raw = await call("GET", `/v1beta/${created.name}`);
    expect(raw.json.metadata["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch");
    expect(raw.json.metadata.model).toBe("models/local/glove-100d");

    const lines = texts.map((t, i) => JSON.stringify({ key: `e${i}`, request: { content: { parts: [{ text: t }] } } })).join("\n");
    const file = await ai.files.upload({ file: new Blob([lines], { type: "application/jsonl" }), config: { displayName: "embed.jsonl" } });
    const fromFile = await ai.batches.createEmbeddings({ model: "local/glove-100d", src: { fileName: file.name! } });
    const ended = await untilEnded(fromFile.name!);
    expect(ended.state).toBe("JOB_STATE_SUCCEEDED");
    const res = await fetch(`${base}/download/v1beta/${ended.dest!.fileName}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
    const out = (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(out.map((l) => l.key)).toEqual(["e0", "e1", "e2"]);
    expect(out[1].response.embedding.values).toEqual(vectors[1]);
  });

  it("seed 003 over fetch: POST /v1beta/batches → status until COMPLETED → results in input order with metadata", async () => {
    upstream.plan = (c) => (c.key.includes("FAIL") ? { kind: "status", status: 400, body: JSON.stringify({ error: { message: "bad prompt", type: "invalid_request_error" } }) } : { kind: "ok" });
    try {
      const requests = [
        { model: "models/gemini-2.5-flash", contents: [{ parts: [{ text: "Summarize: The quick brown fox jumps over the lazy dog." }] }], metadata: { customer_id: "12345", review_id: "rev_001" } },
        { model: "models/gemini-2.5-flash", contents: [{ parts: [{ text: "Translate to Spanish: Hello, how are you?" }] }] },
        { model: "models/gemini-2.5-flash", contents: [{ parts: [{ text: "FAIL this one" }] }], generationConfig: { maxOutputTokens: 10 }, metadata: { review_id: "rev_003" } },
      ];
      const created = await call("POST", "/v1beta/batches", { requests });
      expect(created.status).toBe(200);
      expect(created.json).toMatchObject({ name: expect.stringMatching(/^batches\/batch_[0-9a-f]+$/), state: "PROCESSING", totalRequests: 3 });
      expect(typeof created.json.completedRequests).toBe("number");
      expect(created.json.createTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const id = created.json.name.replace("batches/", "");

      let status = created.json;
      for (let i = 0; i < 2400 && status.state === "PROCESSING"; i++) {
        await sleep(25);
        status = (await call("GET", `/v1beta/batches/${id}`)).json;
      }
      expect(status).toMatchObject({ state: "COMPLETED", totalRequests: 3, completedRequests: 2 });

      const results = (await call("GET", `/v1beta/batches/${id}/results`)).json.results;
      expect(results).toHaveLength(3);
      expect(results[0].response.candidates[0].content.parts[0].text).toBe("echo: Summarize: The quick brown fox jumps over the lazy dog.");
      expect(results[0].metadata).toEqual({ customer_id: "12345", review_id: "rev_001" });
      expect(results[1].response.candidates[0].content.parts[0].text).toBe("echo: Translate to Spanish: Hello, how are you?");
      expect(results[1].metadata).toBeUndefined();
      expect(results[2]).toEqual({ error: { code: 400, message: "bad prompt", status: "INVALID_ARGUMENT" }, metadata: { review_id: "rev_003" } });

      // A seed batch stays in the seed's shape; it is not listed among Batch Mode operations.
      const listed = await call("GET", "/v1beta/batches?pageSize=1000");
      expect(listed.json.operations.some((o: { name: string }) => o.name === created.json.name)).toBe(false);

      const mixed = await call("POST", "/v1beta/batches", { requests: [requests[0], { ...requests[1], model: "models/gemini-2.5-pro" }] });
      expect(mixed.status).toBe(400);
      expect(mixed.json.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
      expect(mixed.json.error.message).toMatch(/one model per batch/);
      const empty = await call("POST", "/v1beta/batches", { requests: [] });
      expect(empty.status).toBe(400);
    } finally {
      upstream.plan = () => ({ kind: "ok" });
    }
  });
});
