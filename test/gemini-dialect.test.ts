import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GoogleGenAI, type BatchJob } from "@google/genai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { geminiRewriteUrl } from "../src/api/gemini/routing.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, SHARED_CACHE_DIR, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

const API_KEY = "gm-test-key";
const ENDED = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// @google/genai 3.x with default options: it calls the Gemini API under /v1, which OpenAI shares for /v1/files and
// /v1/batches. (2.x, which calls /v1beta, is covered by gemini-v2.test.ts.)
describe("Gemini Batch Mode through @google/genai 3.x (default /v1), and seed 003 over fetch, run on an OpenAI-compatible upstream", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let base: string;
  let ai: GoogleGenAI;
  let tmp: string;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    // Two attempts per request, so the per-request error test does not wait out six retries of a 429 or 500.
    server = await startServer({ ...upstreamConfig(upstream.url, { maxConcurrency: 4 }), apiKeys: [API_KEY], retry: { maxAttempts: 2 } }, { cacheDir: SHARED_CACHE_DIR });
    base = server.url.replace(/\/v1$/, "");
    ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: base } });
    tmp = await mkdtemp(join(tmpdir(), "openbatch-gemini-"));
  }, 120_000);
  afterAll(async () => {
    await server.close();
    await upstream.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  /** Raw call with the Gemini key header (so `/v1/…` is Gemini's); JSON in and out. */
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

  it("inline batchGenerateContent at /v1: create → PENDING/RUNNING → SUCCEEDED, inlinedResponses in input order with metadata", async () => {
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

    // The raw Operation, at both versions: int64 stats as strings, zeros left out, output in metadata and response.
    for (const version of ["v1", "v1beta"]) {
      const raw = await call("GET", `/${version}/${created.name}`);
      expect(raw.status).toBe(200);
      expect(raw.json.name).toBe(created.name);
      expect(raw.json.done).toBe(true);
      expect(raw.json.error).toBeUndefined();
      expect(raw.json.metadata["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch");
      expect(raw.json.metadata.name).toBe(created.name);
      expect(raw.json.metadata.state).toBe("BATCH_STATE_SUCCEEDED");
      expect(raw.json.metadata.batchStats).toEqual({ requestCount: "3", successfulRequestCount: "3" });
      expect(raw.json.response["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput");
      expect(raw.json.response.inlinedResponses.inlinedResponses).toHaveLength(3);
    }
  });

  it("a batch queued behind another reads PENDING until one of its requests has finished, then ends SUCCEEDED", async () => {
    upstream.plan = () => ({ kind: "held" });
    try {
      // The first batch fills the upstream's 4 slots and holds them; the second waits behind it.
      const first = await ai.batches.create({ model: "gemini-2.5-flash", src: [0, 1, 2, 3].map((i) => prompt(`held ${i}`)) });
      const second = await ai.batches.create({ model: "gemini-2.5-flash", src: [prompt("queued behind")] });
      expect(second.state).toBe("JOB_STATE_PENDING");
      expect((await ai.batches.get({ name: second.name! })).state).toBe("JOB_STATE_PENDING");
      const raw = await call("GET", `/v1/${second.name}`);
      expect(raw.json.metadata.state).toBe("BATCH_STATE_PENDING");
      expect(raw.json.done).toBeUndefined();
      upstream.release();
      expect((await untilEnded(first.name!)).state).toBe("JOB_STATE_SUCCEEDED");
      expect((await untilEnded(second.name!)).state).toBe("JOB_STATE_SUCCEEDED");
    } finally {
      upstream.release();
      upstream.plan = () => ({ kind: "ok" });
    }
  });

  it("file input: ai.files.upload to /upload/v1, create from its name, download the responsesFile in input order", async () => {
    const lines = [0, 1, 2, 3, 4].map((i) => JSON.stringify({ key: `f${i}`, request: { ...prompt(`file ${i}`), generationConfig: { maxOutputTokens: 8 } } }));
    const path = join(tmp, "requests.jsonl");
    await writeFile(path, lines.join("\n") + "\n");
    const file = await ai.files.upload({ file: path, config: { displayName: "requests.jsonl", mimeType: "jsonl" } });
    expect(file.name).toMatch(/^files\/file-[0-9a-f]+$/);
    expect(file.state).toBe("ACTIVE");
    expect(file.sizeBytes).toBe(String((lines.join("\n") + "\n").length));
    // URLs we hand out are under the version the caller used.
    expect(file.uri).toBe(`${base}/v1/${file.name}`);
    expect(file.downloadUri).toBe(`${base}/download/v1/${file.name}:download?alt=media`);
    const meta = await ai.files.get({ name: file.name! });
    expect(meta).toMatchObject({ name: file.name, displayName: "requests.jsonl", sizeBytes: file.sizeBytes, uri: file.uri });
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
    const text = await readFile(out, "utf8");
    const parsed = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(parsed.map((l) => l.key)).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    expect(parsed[3].response.candidates[0].content.parts[0].text).toBe("echo: file 3");

    // The same bytes over raw fetch, at both download paths of both versions.
    for (const p of [`/download/v1/${done.dest!.fileName}:download?alt=media`, `/v1/${done.dest!.fileName}:download?alt=media`, `/download/v1beta/${done.dest!.fileName}:download?alt=media`]) {
      const res = await fetch(base + p, { headers: { "x-goog-api-key": API_KEY } });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(text);
    }
    // The uploaded file downloads as it was sent.
    const res = await fetch(`${base}/download/v1/${file.name}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
    expect(await res.text()).toBe(lines.join("\n") + "\n");
  });

  it("resumable upload at /upload/v1 in several chunks over raw fetch; a wrong offset is refused in Google's shape", async () => {
    const start = await fetch(`${base}/upload/v1/files`, {
      method: "POST",
      headers: { "x-goog-api-key": API_KEY, "content-type": "application/json", "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", "x-goog-upload-header-content-length": "11" },
      body: JSON.stringify({ file: { displayName: "chunks.txt", mimeType: "text/plain" } }),
    });
    expect(start.status).toBe(200);
    const url = start.headers.get("x-goog-upload-url")!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/upload\/v1\/files\?/);
    const send = (command: string, offset: number, body: string) =>
      fetch(url, { method: "POST", headers: { "x-goog-api-key": API_KEY, "x-goog-upload-command": command, "x-goog-upload-offset": String(offset) }, body });
    const first = await send("upload", 0, "hello ");
    expect(first.headers.get("x-goog-upload-status")).toBe("active");
    const wrong = await send("upload", 3, "xx");
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });

    // The refused chunk ended that session; a new one goes through to the end.
    const start2 = await fetch(`${base}/upload/v1/files`, {
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
    expect(file.uri).toBe(`${base}/v1/${file.name}`);
    const content = await fetch(`${base}/v1/${file.name}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
    expect(await content.text()).toBe("hello world");
    await ai.files.delete({ name: file.name });
    await expect(ai.files.get({ name: file.name })).rejects.toMatchObject({ status: 404 });
  });

  it("lists batches page by page to the last page (no nextPageToken there); ended ones have dest set", async () => {
    const names: string[] = [];
    for (let i = 0; i < 3; i++) names.push((await ai.batches.create({ model: "gemini-2.5-flash", src: [prompt(`list ${i}`)] })).name!);
    for (const name of names) await untilEnded(name);
    const seen: BatchJob[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) seen.push(job);
    expect(new Set(seen.map((j) => j.name)).size).toBe(seen.length);
    expect(seen.slice(0, 3).map((j) => j.name)).toEqual([...names].reverse());
    // A listing names an inline batch's results as its responses file (a page stays small); it downloads.
    const listedJob = seen.find((j) => j.name === names[1])!;
    expect(listedJob.state).toBe("JOB_STATE_SUCCEEDED");
    expect(listedJob.dest?.fileName).toBe(`files/responses-${names[1]!.slice("batches/".length)}`);
    const out = join(tmp, "listed.jsonl");
    await ai.files.download({ file: listedJob.dest!.fileName!, downloadPath: out });
    const line = JSON.parse((await readFile(out, "utf8")).trim());
    expect(line.response.candidates[0].content.parts[0].text).toBe("echo: list 1");
    // Every ended batch of the listing has its results named.
    for (const job of seen.filter((j) => j.state === "JOB_STATE_SUCCEEDED")) expect(job.dest?.fileName ?? job.dest?.inlinedResponses).toBeTruthy();

    const first = await call("GET", "/v1/batches?pageSize=2");
    expect(first.json.operations).toHaveLength(2);
    expect(first.json.operations[0].metadata.name).toBe(first.json.operations[0].name);
    expect(typeof first.json.nextPageToken).toBe("string");
    let token: string | undefined = first.json.nextPageToken;
    let last = first;
    while (token) {
      last = await call("GET", `/v1/batches?pageSize=2&pageToken=${encodeURIComponent(token)}`);
      token = last.json.nextPageToken;
    }
    expect("nextPageToken" in last.json).toBe(false);
  });

  it("shares /v1 with OpenAI: Gemini callers get Gemini shapes, the OpenAI SDK on the same server gets OpenAI's", async () => {
    const openai = server.client(API_KEY);
    const input = await uploadJsonl(openai, chatLines(["shared a", "shared b"]), "shared.jsonl");
    const oaBatch = await openai.batches.create({ input_file_id: input.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const gmBatch = await ai.batches.create({ model: "gemini-2.5-flash", src: [prompt("shared gemini")] });
    await waitFor(openai, oaBatch.id);
    await untilEnded(gmBatch.name!);

    // @google/genai 3.x with no paging options: GET /v1/batches and /v1/files, told apart by its x-goog-* headers.
    const jobs: BatchJob[] = [];
    for await (const j of await ai.batches.list()) jobs.push(j);
    expect(jobs.map((j) => j.name)).toContain(gmBatch.name);
    expect(jobs.every((j) => /^batches\/batch_/.test(j.name!) && j.state?.startsWith("JOB_STATE_"))).toBe(true);
    // OpenAI's batch is rendered in its own dialect only.
    expect(jobs.map((j) => j.name)).not.toContain(`batches/${oaBatch.id}`);
    const files: string[] = [];
    for await (const f of await ai.files.list()) files.push(f.name!);
    expect(files).toContain(`files/${input.id}`);
    const gmFile = await ai.files.get({ name: input.id });
    expect(gmFile).toMatchObject({ name: `files/${input.id}`, displayName: "shared.jsonl", state: "ACTIVE" });

    // The OpenAI SDK on the same paths gets OpenAI's shapes.
    const oaBatches = await openai.batches.list({ limit: 100 });
    expect(oaBatches.data.map((b) => b.id)).toContain(oaBatch.id);
    expect(oaBatches.data.every((b) => b.object === "batch")).toBe(true);
    expect(oaBatches.data.map((b) => b.id)).not.toContain(gmBatch.name!.slice("batches/".length));
    const oaFiles = await openai.files.list();
    expect(oaFiles.data.map((f) => f.id)).toContain(input.id);
    expect(oaFiles.data.every((f) => f.object === "file")).toBe(true);
    expect(await openai.files.retrieve(input.id)).toMatchObject({ id: input.id, object: "file", purpose: "batch" });
    expect(await openai.batches.retrieve(oaBatch.id)).toMatchObject({ id: oaBatch.id, object: "batch", status: "completed" });
    expect((await readJsonl(openai, (await openai.batches.retrieve(oaBatch.id)).output_file_id)).map((l) => l.custom_id).sort()).toEqual(["req-0", "req-1"]);

    // Raw callers: the same path answers in the shape of who calls it.
    const bearer = { authorization: `Bearer ${API_KEY}` };
    const asOpenAI = await (await fetch(`${base}/v1/files`, { headers: bearer })).json();
    expect(asOpenAI.object).toBe("list");
    const byPageSize = await (await fetch(`${base}/v1/files?pageSize=100`, { headers: bearer })).json();
    expect(byPageSize.files.map((f: { name: string }) => f.name)).toContain(`files/${input.id}`);
    const byKeyParam = await fetch(`${base}/v1/batches/batch_000000000000000000000000?key=${API_KEY}`, { headers: bearer });
    expect(byKeyParam.status).toBe(404);
    expect((await byKeyParam.json()).error).toMatchObject({ code: 404, status: "NOT_FOUND" });
    // A :method path is Gemini's whoever calls it.
    const cancelMissing = await fetch(`${base}/v1/batches/batch_000000000000000000000000:cancel`, { method: "POST", headers: bearer });
    expect(cancelMissing.status).toBe(404);
    expect((await cancelMissing.json()).error).toMatchObject({ code: 404, status: "NOT_FOUND" });
    const openaiMissing = await fetch(`${base}/v1/batches/batch_000000000000000000000000`, { headers: bearer });
    expect(openaiMissing.status).toBe(404);
    expect((await openaiMissing.json()).error).toMatchObject({ type: "invalid_request_error" });

    // Deleting through Gemini's DELETE /v1/files/{id} answers Gemini's `{}`; OpenAI's answers its own object.
    const spare = await uploadJsonl(openai, chatLines(["spare"]), "spare.jsonl");
    await ai.files.delete({ name: spare.id });
    await expect(openai.files.retrieve(spare.id)).rejects.toMatchObject({ status: 404 });
    const spare2 = await uploadJsonl(openai, chatLines(["spare"]), "spare2.jsonl");
    expect(await openai.files.delete(spare2.id)).toMatchObject({ id: spare2.id, object: "file", deleted: true });
  });

  it("per-request errors carry google.rpc.Code numbers, in inlined responses and in the responses file", async () => {
    upstream.plan = (c) => {
      const m = /^E(\d{3})/.exec(c.key);
      if (c.key.startsWith("RESET")) return { kind: "reset" };
      if (c.key.startsWith("GOOGLE")) return { kind: "status", status: 400, body: JSON.stringify({ error: { code: 400, message: "precondition", status: "FAILED_PRECONDITION" } }) };
      return m ? { kind: "status", status: Number(m[1]), body: JSON.stringify({ error: { message: `no: ${m[1]}`, type: "x" } }) } : { kind: "ok" };
    };
    try {
      const keys = ["E400 bad", "E401 who", "E403 denied", "E404 gone", "E429 slow down", "E500 boom", "E503 away", "RESET now", "GOOGLE shaped", "fine"];
      const expected = [3, 16, 7, 5, 8, 13, 14, 14, 9];
      const created = await ai.batches.create({ model: "gemini-2.5-flash", src: keys.map((k, i) => ({ ...prompt(k), metadata: { i: String(i) } })) });
      const done = await untilEnded(created.name!);
      expect(done.state).toBe("JOB_STATE_SUCCEEDED");
      const responses = done.dest!.inlinedResponses!;
      expect(responses.map((r) => r.error?.code)).toEqual([...expected, undefined]);
      expect(responses[0]!.error).toEqual({
        code: 3,
        message: "no: 400",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "UPSTREAM_ERROR", domain: "openbatch", metadata: { httpStatus: "400" } }],
      });
      expect(responses[7]!.error).toMatchObject({ code: 14, details: [{ reason: "UPSTREAM_UNREACHABLE" }] });
      expect(responses[8]!.error!.message).toBe("precondition");
      // `error` is a google.rpc.Status: code, message, details and nothing else.
      for (const r of responses.filter((r) => r.error)) expect(Object.keys(r.error!).sort()).toEqual(["code", "details", "message"]);

      const lines = ["E404 in file", "fine in file"].map((k, i) => JSON.stringify({ key: `l${i}`, request: prompt(k) })).join("\n");
      const file = await ai.files.upload({ file: new Blob([lines], { type: "application/jsonl" }), config: { displayName: "errors.jsonl" } });
      const fromFile = await untilEnded((await ai.batches.create({ model: "gemini-2.5-flash", src: file.name! })).name!);
      const res = await fetch(`${base}/download/v1/${fromFile.dest!.fileName}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
      const out = (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
      expect(out[0]).toMatchObject({ key: "l0", error: { code: 5, message: "no: 404" } });
      expect(out[1].response).toBeTruthy();
    } finally {
      upstream.plan = () => ({ kind: "ok" });
    }
  });

  it("cancels a running batch (slow upstream): CANCELLED with Operation.error code 1; delete refused until it ended", async () => {
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
      expect(cancelled[0]!.error).toMatchObject({ code: 1, details: [{ reason: "BATCH_CANCELLED" }] });

      const raw = await call("GET", `/v1/${created.name}`);
      expect(raw.json.done).toBe(true);
      expect(raw.json.metadata.state).toBe("BATCH_STATE_CANCELLED");
      expect(raw.json.error).toMatchObject({ code: 1, message: expect.stringMatching(/cancelled/) });
      expect(Object.keys(raw.json.error).sort()).toEqual(["code", "message"]);
      // Operation `error` and `response` exclude each other; the partial results stay in metadata.output.
      expect(raw.json.response).toBeUndefined();
      expect(raw.json.metadata.output.inlinedResponses.inlinedResponses).toHaveLength(8);

      await ai.batches.delete({ name: created.name! });
      await expect(ai.batches.get({ name: created.name! })).rejects.toMatchObject({ status: 404 });
    } finally {
      upstream.plan = () => ({ kind: "ok" });
    }
  });

  it("answers errors in Google's shape under /v1: 404 for a missing batch, 400 for bad bodies, 401 without a key", async () => {
    await expect(ai.batches.get({ name: "batches/batch_000000000000000000000000" })).rejects.toMatchObject({ status: 404 });
    const missing = await call("GET", "/v1/batches/batch_000000000000000000000000");
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 404, status: "NOT_FOUND" });
    expect(typeof missing.json.error.message).toBe("string");

    const noInput = await call("POST", "/v1/models/gemini-2.5-flash:batchGenerateContent", { batch: { displayName: "x", inputConfig: {} } });
    expect(noInput.status).toBe(400);
    expect(noInput.json.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
    const noContents = await call("POST", "/v1/models/gemini-2.5-flash:batchGenerateContent", { batch: { inputConfig: { requests: { requests: [{ request: {} }] } } } });
    expect(noContents.status).toBe(400);
    expect(noContents.json.error.message).toMatch(/contents/);
    await expect(ai.batches.create({ model: "gemini-2.5-flash", src: "files/file-doesnotexist" })).rejects.toMatchObject({ status: 400 });
    const badMethod = await call("POST", "/v1/models/gemini-2.5-flash:frobnicate", {});
    expect(badMethod.status).toBe(404);
    expect(badMethod.json.error.status).toBe("NOT_FOUND");
    // A Gemini caller on a Gemini path we do not serve gets Google's 404, naming the path it called.
    const unserved = await call("GET", "/v1/models");
    expect(unserved.status).toBe(404);
    expect(unserved.json.error).toMatchObject({ code: 404, status: "NOT_FOUND", message: expect.stringContaining("GET /v1/models") });

    for (const path of ["/v1/batches?pageSize=5", "/v1beta/batches", "/upload/v1/files"]) {
      const noKey = await fetch(base + path, { method: path.startsWith("/upload") ? "POST" : "GET" });
      expect(noKey.status).toBe(401);
      expect((await noKey.json()).error.status).toBe("UNAUTHENTICATED");
    }
    await expect(new GoogleGenAI({ apiKey: "wrong", httpOptions: { baseUrl: base } }).batches.list()).rejects.toMatchObject({ status: 401 });
  });

  it("embeddings at /v1: createEmbeddings on local/glove-100d, inline and from a file (file_name in snake case)", async () => {
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
    const raw = await call("GET", `/v1/${created.name}`);
    expect(raw.json.metadata["@type"]).toBe("type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch");
    expect(raw.json.metadata.model).toBe("models/local/glove-100d");

    const lines = texts.map((t, i) => JSON.stringify({ key: `e${i}`, request: { content: { parts: [{ text: t }] } } })).join("\n");
    const file = await ai.files.upload({ file: new Blob([lines], { type: "application/jsonl" }), config: { displayName: "embed.jsonl" } });
    const fromFile = await ai.batches.createEmbeddings({ model: "local/glove-100d", src: { fileName: file.name! } });
    const ended = await untilEnded(fromFile.name!);
    expect(ended.state).toBe("JOB_STATE_SUCCEEDED");
    const res = await fetch(`${base}/download/v1/${ended.dest!.fileName}:download?alt=media`, { headers: { "x-goog-api-key": API_KEY } });
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
      expect(results[2]).toMatchObject({ error: { code: 3, message: "bad prompt" }, metadata: { review_id: "rev_003" } });

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

describe("which /v1 calls are Gemini's", () => {
  const rewrite = (method: string, url: string, headers: Record<string, string> = {}) => geminiRewriteUrl({ method, url, headers });
  it("maps Gemini callers and :method paths onto /v1beta, and leaves every other call alone", () => {
    const goog = { "x-goog-api-client": "google-genai-sdk/3.3.0 gl-node/v20" };
    expect(rewrite("GET", "/v1/batches", goog)).toBe("/v1beta/batches");
    expect(rewrite("GET", "/v1/files/file-1", { "x-goog-api-key": "k" })).toBe("/v1beta/files/file-1");
    expect(rewrite("GET", "/v1/files?pageToken=x")).toBe("/v1beta/files?pageToken=x");
    expect(rewrite("POST", "/v1/batches/batch_1:cancel")).toBe("/v1beta/batches/batch_1:cancel");
    expect(rewrite("POST", "/v1/models/local/glove-100d:asyncBatchEmbedContent")).toBe("/v1beta/models/local/glove-100d:asyncBatchEmbedContent");
    expect(rewrite("POST", "/upload/v1/files?upload_id=abc")).toBe("/upload/v1beta/files?upload_id=abc");
    expect(rewrite("GET", "/download/v1/files/file-1:download?alt=media")).toBe("/download/v1beta/files/file-1:download?alt=media");
    // OpenAI's, seed 001's, Anthropic's and Weaviate's calls are untouched, even with a colon in a model id.
    expect(rewrite("GET", "/v1/batches?limit=2")).toBe("/v1/batches?limit=2");
    expect(rewrite("GET", "/v1/files/file-1/content", { authorization: "Bearer k" })).toBe("/v1/files/file-1/content");
    expect(rewrite("GET", "/v1/models/llama3:latest")).toBe("/v1/models/llama3:latest");
    expect(rewrite("POST", "/v1/messages/batches", goog)).toBe("/v1/messages/batches");
    expect(rewrite("GET", "/v1/objects/Thing:x", goog)).toBe("/v1/objects/Thing:x");
    expect(rewrite("GET", "/v1beta/batches")).toBe("/v1beta/batches");
  });
});
