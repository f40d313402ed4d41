import OpenAI, { BadRequestError, ConflictError, NotFoundError, toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, startServer, type TestServer, uploadJsonl, upstreamConfig, waitFor } from "./support/harness.js";

const ENDPOINT = "/v1/chat/completions";

/** One valid chat request line (as an object, so a test can break one field). */
function req(customId: string, extra: Record<string, unknown> = {}, model = "fake-model"): Record<string, unknown> {
  return { custom_id: customId, method: "POST", url: ENDPOINT, body: { model, messages: [{ role: "user", content: "hi " + customId }] }, ...extra };
}

/** JSONL text from objects or raw strings (a string is written as-is). */
function jsonl(lines: (Record<string, unknown> | string)[]): string {
  return lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
}

describe("batch input validation (failed batch with errors.data) through the openai SDK", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let limited: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url));
    limited = await startServer({ ...upstreamConfig(upstream.url), limits: { maxRequestsPerBatch: 3 } });
    client = server.client();
  });
  afterAll(async () => {
    await limited?.close();
    await server?.close();
    await upstream?.stop();
  });

  /** Uploads `text`, creates a batch on it, waits until it settles, and returns the settled batch. */
  async function runFile(text: string, c: OpenAI = client): Promise<OpenAI.Batches.Batch> {
    const file = await c.files.create({ file: await toFile(Buffer.from(text), "input.jsonl"), purpose: "batch" });
    const created = await c.batches.create({ input_file_id: file.id, endpoint: ENDPOINT, completion_window: "24h" });
    expect(created.object).toBe("batch");
    expect(created.input_file_id).toBe(file.id);
    return waitFor(c, created.id);
  }

  /** Asserts the batch failed validation, kept no items, and returns its errors. */
  function failedErrors(b: OpenAI.Batches.Batch) {
    expect(b.status).toBe("failed");
    expect(typeof b.failed_at).toBe("number");
    expect(b.failed_at).toBeGreaterThanOrEqual(b.created_at);
    expect(b.in_progress_at).toBeNull();
    expect(b.completed_at).toBeNull();
    expect(b.output_file_id).toBeNull();
    expect(b.error_file_id).toBeNull();
    expect(b.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(b.errors?.object).toBe("list");
    const data = b.errors?.data ?? [];
    for (const e of data) {
      expect(typeof e.message).toBe("string");
      expect(e.message!.length).toBeGreaterThan(0);
    }
    return data;
  }

  it("a valid file is accepted and completes (control case)", async () => {
    const b = await runFile(jsonl([req("a"), req("b"), req("c")]));
    expect(b.status).toBe("completed");
    expect(b.errors).toBeNull();
    expect(b.failed_at).toBeNull();
    expect(b.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });

  it("an unparseable JSON line fails the batch with invalid_json_line on that 1-based line", async () => {
    const b = await runFile(jsonl([req("a"), req("b"), '{"custom_id": "c", "method": "POST", ', req("d")]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "invalid_json_line", line: 3, param: null });
  });

  it("a JSON line that is not an object fails with invalid_json_line", async () => {
    const b = await runFile(jsonl([req("a"), "[1, 2, 3]"]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "invalid_json_line", line: 2, param: null });
  });

  it("a JSON scalar line (string, number, null) fails with invalid_json_line", async () => {
    const b = await runFile(jsonl(['"just a string"', req("a"), "42", "null"]));
    const errors = failedErrors(b);
    expect(errors.map((e) => [e.code, e.line])).toEqual([
      ["invalid_json_line", 1],
      ["invalid_json_line", 3],
      ["invalid_json_line", 4],
    ]);
  });

  it("a line without custom_id fails with param custom_id", async () => {
    const noId = req("x");
    delete noId.custom_id;
    const b = await runFile(jsonl([req("a"), noId]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "missing_required_parameter", line: 2, param: "custom_id" });
  });

  it("an empty custom_id fails like a missing one", async () => {
    const b = await runFile(jsonl([req("")]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "missing_required_parameter", line: 1, param: "custom_id" });
  });

  it("a duplicate custom_id is reported on the line of its second occurrence", async () => {
    const b = await runFile(jsonl([req("a"), req("b"), req("c"), req("b"), req("d")]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "duplicate_custom_id", line: 4, param: "custom_id" });
    expect(errors[0]!.message).toContain("b");
  });

  it("a method other than POST fails with param method", async () => {
    const b = await runFile(jsonl([req("a"), req("b", { method: "GET" })]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "invalid_value", line: 2, param: "method" });
  });

  it("a url other than the batch endpoint fails with mismatched_url", async () => {
    const b = await runFile(jsonl([req("a"), req("b"), req("c", { url: "/v1/embeddings" })]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "mismatched_url", line: 3, param: "url" });
  });

  it("a url without the /v1 prefix is a mismatch too", async () => {
    const b = await runFile(jsonl([req("a", { url: "/chat/completions" })]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "mismatched_url", line: 1, param: "url" });
  });

  it("more than one model fails with mismatched_model on the first line naming another model", async () => {
    const b = await runFile(jsonl([req("a", {}, "model-one"), req("b", {}, "model-one"), req("c", {}, "model-two"), req("d", {}, "model-one")]));
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "mismatched_model", line: 3, param: "body.model" });
  });

  it("reports every invalid line, each with its own line number, ignoring blank lines in the count but not the numbering", async () => {
    const b = await runFile(jsonl([req("a"), "", "not json", req("a"), req("c", { method: "PUT" })]));
    const errors = failedErrors(b);
    expect(errors.map((e) => [e.code, e.line, e.param])).toEqual([
      ["invalid_json_line", 3, null],
      ["duplicate_custom_id", 4, "custom_id"],
      ["invalid_value", 5, "method"],
    ]);
  });

  it("an empty (0-byte) file fails with empty_file", async () => {
    const b = await runFile("");
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "empty_file", line: null });
  });

  it("a file of blank lines only fails with empty_file", async () => {
    const b = await runFile("\n  \n\n");
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "empty_file", line: null });
  });

  it("more lines than limits.maxRequestsPerBatch fails with too_many_tasks on the first line over the limit", async () => {
    const c = limited.client();
    const b = await runFile(jsonl([req("a"), req("b"), req("c"), req("d"), req("e")]), c);
    const errors = failedErrors(b);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "too_many_tasks", line: 4 });
  });

  it("exactly limits.maxRequestsPerBatch lines are accepted", async () => {
    const c = limited.client();
    const b = await runFile(jsonl([req("a"), req("b"), req("c")]), c);
    expect(b.status).toBe("completed");
    expect(b.errors).toBeNull();
    expect(b.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });
});

describe("batch create/retrieve/cancel request errors through the openai SDK", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let client: OpenAI;
  let batchFileId: string;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url));
    client = server.client();
    batchFileId = (await uploadJsonl(client, chatLines(["one", "two"]))).id;
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  const create = (params: Record<string, unknown>) =>
    client.batches.create({ input_file_id: batchFileId, endpoint: ENDPOINT, completion_window: "24h", ...params } as unknown as OpenAI.Batches.BatchCreateParams);

  it("an unknown input_file_id is a 400 with param input_file_id", async () => {
    const err = await apiError(create({ input_file_id: "file-doesnotexist" }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.status).toBe(400);
    expect(err.param).toBe("input_file_id");
    expect(err.type).toBe("invalid_request_error");
  });

  it("a missing input_file_id is a 400 with param input_file_id", async () => {
    const err = await apiError(create({ input_file_id: undefined }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.param).toBe("input_file_id");
  });

  it("a file whose purpose is not batch is a 400 with param input_file_id", async () => {
    const other = await client.files.create({ file: await toFile(Buffer.from(chatLines(["x"])), "data.jsonl"), purpose: "user_data" });
    expect(other.purpose).toBe("user_data");
    const err = await apiError(create({ input_file_id: other.id }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.status).toBe(400);
    expect(err.param).toBe("input_file_id");
  });

  it("an endpoint outside the allowed list is a 400 with param endpoint", async () => {
    for (const endpoint of ["/v1/unknown", "/v1/chat/completions/", "chat/completions", ""]) {
      const err = await apiError(create({ endpoint }));
      expect(err, endpoint).toBeInstanceOf(BadRequestError);
      expect(err.param, endpoint).toBe("endpoint");
    }
  });

  it("a bad completion_window is a 400 with param completion_window", async () => {
    for (const completion_window of ["tomorrow", "24", "h", "0s", "-5m", "1.5h", 24]) {
      const err = await apiError(create({ completion_window }));
      expect(err, String(completion_window)).toBeInstanceOf(BadRequestError);
      expect(err.param, String(completion_window)).toBe("completion_window");
    }
  });

  it("metadata with 17 keys is a 400 with param metadata; 16 keys are accepted", async () => {
    const meta = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));
    const err = await apiError(create({ metadata: meta(17) }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.param).toBe("metadata");
    const ok = await create({ metadata: meta(16) });
    expect(ok.metadata).toEqual(meta(16));
  });

  it("a metadata key longer than 64 characters is a 400; 64 is accepted", async () => {
    const err = await apiError(create({ metadata: { ["k".repeat(65)]: "v" } }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.param).toBe("metadata");
    const ok = await create({ metadata: { ["k".repeat(64)]: "v" } });
    expect(ok.metadata).toEqual({ ["k".repeat(64)]: "v" });
  });

  it("a metadata value longer than 512 characters is a 400; 512 is accepted", async () => {
    const err = await apiError(create({ metadata: { key: "v".repeat(513) } }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.param).toBe("metadata");
    const ok = await create({ metadata: { key: "v".repeat(512) } });
    expect(ok.metadata).toEqual({ key: "v".repeat(512) });
  });

  it("a rejected create leaves no batch behind", async () => {
    const before = (await client.batches.list({ limit: 100 })).data.map((b) => b.id);
    await apiError(create({ completion_window: "tomorrow" }));
    await apiError(create({ input_file_id: "file-nope" }));
    await apiError(create({ metadata: { key: "v".repeat(513) } }));
    const after = (await client.batches.list({ limit: 100 })).data.map((b) => b.id);
    expect(after).toEqual(before);
  });

  it('completion_window "90s" is accepted and expires_at - created_at == 90', async () => {
    const b = await create({ completion_window: "90s" });
    expect(b.completion_window).toBe("90s");
    expect(b.expires_at! - b.created_at).toBe(90);
    const again = await client.batches.retrieve(b.id);
    expect(again.expires_at! - again.created_at).toBe(90);
  });

  it('completion_window "24h" gives expires_at - created_at == 86400', async () => {
    const b = await create({ completion_window: "24h" });
    expect(b.expires_at! - b.created_at).toBe(86_400);
  });

  it("retrieving a missing batch is a 404 NotFoundError", async () => {
    const err = await apiError(client.batches.retrieve("batch_doesnotexist"));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.status).toBe(404);
  });

  it("cancelling a missing batch is a 404 NotFoundError", async () => {
    const err = await apiError(client.batches.cancel("batch_doesnotexist"));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.status).toBe(404);
  });

  it("cancelling a completed batch is a 409 ConflictError and leaves it completed", async () => {
    const b = await create({});
    const done = await waitFor(client, b.id);
    expect(done.status).toBe("completed");
    const err = await apiError(client.batches.cancel(b.id));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.status).toBe(409);
    const after = await client.batches.retrieve(b.id);
    expect(after.status).toBe("completed");
    expect(after.cancelling_at).toBeNull();
    expect(after.cancelled_at).toBeNull();
  });

  it("cancelling a failed batch is a 409 ConflictError", async () => {
    const bad = await uploadJsonl(client, "not json\n");
    const b = await create({ input_file_id: bad.id });
    const done = await waitFor(client, b.id);
    expect(done.status).toBe("failed");
    const err = await apiError(client.batches.cancel(b.id));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.status).toBe(409);
  });
});
