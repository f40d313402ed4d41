import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/core/config.js";
import { apiError, chatLines, startServer, uploadJsonl, type TestServer } from "./support/harness.js";

describe("hardening: nothing a client sends turns into a 500", () => {
  let server: TestServer;
  const http = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() as any };
  };
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("a seed-001 completion_window too long for a date is a 400, and the key's listing keeps working", async () => {
    for (const window of ["100000000d", "366d", "9".repeat(400) + "s"]) {
      const res = await http("POST", "/batches", { name: "b", model: "m", completion_window: window });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: "invalid_request_error", param: "completion_window" });
    }
    expect((await http("POST", "/batches", { name: "b", model: "m", completion_window: "365d" })).status).toBe(200);
    expect((await http("GET", "/batches")).status).toBe(200);
  });

  it("an OpenAI batch with a huge window or priority is a 400 naming the parameter", async () => {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a"]));
    const window = await apiError(client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "100000000d" as "24h" }));
    expect(window.status).toBe(400);
    expect((window.error as any).param).toBe("completion_window");
    const priority = await apiError(client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", priority: 1e300 } as never));
    expect(priority.status).toBe(400);
    expect((priority.error as any).param).toBe("priority");
  });
});

describe("config: a misspelt key is refused at every level, with its path and the key meant", () => {
  const provider = { type: "openai-compatible", baseURL: "http://127.0.0.1:1/v1" };
  it.each([
    [{ providers: { up: { ...provider, maxConcurency: 4 } } }, /providers\.up: unknown key "maxConcurency" \(did you mean "maxConcurrency"\?\)/],
    [{ providers: { up: { ...provider, modelBudgets: { "*": { rpn: 1 } } } } }, /providers\.up\.modelBudgets\.\*: unknown key "rpn" \(did you mean "rpm"\?\)/],
    [{ limits: { maxFileByte: 1 } }, /limits: unknown key "maxFileByte" \(did you mean "maxFileBytes"\?\)/],
    [{ retry: { maxAttempt: 2 } }, /retry: unknown key "maxAttempt" \(did you mean "maxAttempts"\?\)/],
    [{ retyr: {} }, /\(root\): unknown key "retyr" \(did you mean "retry"\?\)/],
    [{ providers: { e: { type: "local-embeddings", model: "x", colour: 1 } } }, /providers\.e: unknown key .*"colour"/],
  ])("%j", (raw, message) => {
    expect(() => parseConfig(raw)).toThrow(message);
  });
});

describe("logs: no key is written at any level", () => {
  it("trace-level logs of a multipart upload and a batch call hold neither the OpenBatch key nor the gateway key", async () => {
    const { Writable } = await import("node:stream");
    const { buildServer } = await import("../src/api/server.js");
    const { Engine } = await import("../src/engine/engine.js");
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const OpenAI = (await import("openai")).default;
    let logged = "";
    const stream = new Writable({ write(chunk, _enc, done) { logged += chunk.toString(); done(); } });
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-logs-"));
    const engine = await Engine.open({ dataDir, config: parseConfig({ apiKeys: ["ob-secret-key-1234"] }) });
    const app = await buildServer({ engine, apiKeys: ["ob-secret-key-1234"], maxFileBytes: 1 << 20, logger: { level: "trace", stream } });
    try {
      const address = await app.listen({ port: 0, host: "127.0.0.1" });
      const client = new OpenAI({ baseURL: `${address}/v1`, apiKey: "ob-secret-key-1234", maxRetries: 0, defaultHeaders: { "x-api-key": "sk-gateway-5678" } });
      await uploadJsonl(client, chatLines(["a"]));
      await client.batches.list();
      await fetch(`${address}/v1beta/batches`, { headers: { "x-goog-api-key": "goog-9012", authorization: "Bearer ob-secret-key-1234" } });
      expect(logged).toContain("Providing options to busboy"); // the line that used to carry every header
      for (const secret of ["ob-secret-key-1234", "sk-gateway-5678", "goog-9012"]) expect(logged).not.toContain(secret);
      expect(logged).toContain("[redacted]");
    } finally {
      await app.close();
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("deep nesting is a 400 in each dialect's shape, never a 500", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });
  const deep = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
  const post = async (path: string, body: string) => {
    const res = await fetch(server.url.replace(/\/v1$/, "") + path, { method: "POST", headers: { "content-type": "application/json", ...(path.startsWith("/v1beta/") ? { "x-goog-api-key": "k" } : { "x-api-key": "k" }) }, body });
    return { status: res.status, body: (await res.json()) as any };
  };

  it.each([
    ["/v1/batches", (b: any) => expect(b.error).toMatchObject({ type: "invalid_request_error", code: "nesting_too_deep" })],
    ["/v1/chat/completions", (b: any) => expect(b.error).toMatchObject({ type: "invalid_request_error", code: "nesting_too_deep" })],
    ["/v1/messages/batches", (b: any) => expect(b).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })],
    ["/v1beta/models/gemini-2.5-flash:batchGenerateContent", (b: any) => expect(b.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" })],
    ["/v1/batch/objects", (b: any) => expect(b.error[0].message).toMatch(/levels deep/)],
  ])("POST %s with a body 5,000 levels deep", async (path, shape) => {
    const res = await post(path, deep(5000));
    expect(res.status).toBe(400);
    shape(res.body);
    expect(JSON.stringify(res.body)).toMatch(/levels deep/);
  });

  it("a moderately nested body still parses", async () => {
    const res = await post("/v1/batches", deep(100));
    expect(res.status).toBe(400); // not a batch body, but parsed: the answer names what is missing
    expect(JSON.stringify(res.body)).not.toMatch(/levels deep/);
  });

  it("a GraphQL query nested 5,000 levels answers a GraphQL error, not a REST one or a 500", async () => {
    const where = "{operator: And, operands: [".repeat(5000) + "]}".repeat(5000);
    const res = await post("/v1/graphql", JSON.stringify({ query: `{ Get { Article(where: ${where}) { title } } }` }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ errors: [{ message: expect.stringMatching(/levels deep/) }] });
  });

  it("a JSONL line nested 5,000 levels fails the batch with invalid_json_line on that line; a BOM before line 1 is accepted", async () => {
    const client = server.client();
    const good = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input: "hello" } });
    const bad = `{"custom_id":"b","method":"POST","url":"/v1/embeddings","body":{"model":"local/glove-100d","input":"x","x":${deep(5000)}}}`;
    const failed = await client.batches.create({ input_file_id: (await uploadJsonl(client, good + "\n" + bad + "\n")).id, endpoint: "/v1/embeddings", completion_window: "24h" });
    expect(failed.status).toBe("failed");
    expect(failed.errors?.data?.[0]).toMatchObject({ code: "invalid_json_line", line: 2 });
    const bom = await client.batches.create({ input_file_id: (await uploadJsonl(client, "\uFEFF" + good + "\n")).id, endpoint: "/v1/embeddings", completion_window: "24h" });
    expect(bom.status).not.toBe("failed");
  });
});

describe("body limits stay below what can be parsed", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });
  /** Sends `bytes` of a JSON batch body, declared up front or chunked; resolves with the status and body text. */
  const send = (path: string, bytes: number, chunked: boolean) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(server.url.replace(/\/v1$/, "") + path);
      const req = request(url, { method: "POST", headers: { "content-type": "application/json", ...(chunked ? {} : { "content-length": String(bytes) }) } }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      });
      req.on("error", reject);
      const chunk = Buffer.alloc(1 << 20, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < bytes) {
          const n = Math.min(chunk.length, bytes - sent);
          sent += n;
          if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once("drain", pump);
        }
        req.end();
      };
      req.on("response", () => (sent = bytes)); // the server answered early: stop sending
      pump();
    });

  it.each([
    ["/v1/batch/objects", false],
    ["/v1/batch/references", false],
    ["/v1/batch/objects", true],
  ])("POST %s with 536,870,900 bytes (chunked: %s) is a 413 in Weaviate's shape and the server lives on", async (path, chunked) => {
    const res = await send(path, 536_870_900, chunked).catch((err: Error) => ({ status: 0, text: err.message }));
    // A declared length past the limit is answered before any body is read: that answer must be the 413. A chunked body
    // is cut off mid-stream, so its client may see the connection close before it reads the answer.
    if (!chunked || res.status !== 0) {
      expect(res.status).toBe(413);
      expect(JSON.parse(res.text).error[0].message).toBeTruthy();
    }
    expect((await fetch(server.url.replace(/\/v1$/, "") + "/healthz")).status).toBe(200);
  });
});

describe("downloads: a file name outside Latin-1 is encoded, not a malformed response", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("文件.jsonl downloads whole with an RFC 6266 Content-Disposition, and the keep-alive connection stays usable", async () => {
    const client = server.client();
    const text = chatLines(["a", "b"]);
    const file = await uploadJsonl(client, text, "文件.jsonl");
    expect(file.filename).toBe("文件.jsonl");
    const res = await client.files.content(file.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="??.jsonl"; filename*=UTF-8''%E6%96%87%E4%BB%B6.jsonl`);
    expect(await res.text()).toBe(text);
    // The same client (keep-alive) is still in step with the server.
    expect((await client.files.retrieve(file.id)).id).toBe(file.id);
  });
});

describe("edge shapes: every error in the dialect's shape", () => {
  let server: TestServer;
  let origin: string;
  beforeAll(async () => {
    server = await startServer({});
    origin = server.url.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await server.close();
  });
  /** Writes raw bytes on a fresh connection and reads until the server closes it. */
  const raw = async (bytes: string) => {
    const { connect } = await import("node:net");
    const url = new URL(origin);
    return new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write(bytes));
      let text = "";
      socket.on("data", (c) => (text += c));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
      setTimeout(() => socket.destroy(), 10_000).unref();
    });
  };

  it("an id of 300 characters is a 404 in the dialect's shape, not a 414 echoing the path", async () => {
    const long = "batch_" + "x".repeat(300);
    const openai = await fetch(`${origin}/v1/batches/${long}`);
    expect(openai.status).toBe(404);
    expect((await openai.json()).error).toMatchObject({ type: "invalid_request_error" });
    const anthropic = await fetch(`${origin}/v1/messages/batches/msg${long}`, { headers: { "x-api-key": "k" } });
    expect(anthropic.status).toBe(404);
    expect(await anthropic.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
  });

  it("a malformed chunked body is a 400 in the called dialect's shape, and the connection is closed", async () => {
    const openai = await raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n");
    expect(openai).toMatch(/^HTTP\/1.1 400 /);
    const body = JSON.parse(openai.slice(openai.indexOf("\r\n\r\n") + 4));
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "malformed_http" });
    const anthropic = await raw("POST /v1/messages/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n");
    expect(JSON.parse(anthropic.slice(anthropic.indexOf("\r\n\r\n") + 4))).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(JSON.stringify(body)).not.toContain("Client Error");
  });
});

describe("URLs we hand out never follow the request's Host header", () => {
  let server: TestServer;
  let origin: string;
  beforeAll(async () => {
    server = await startServer({ providers: { e: { type: "local-embeddings" } }, models: { "*": "e" } });
    origin = server.url.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await server.close();
  });
  /** A request with a forged Host header (fetch forbids setting Host, node:http does not). */
  const forged = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
      const req = request(origin + path, { method, headers: { host: "evil.example", ...headers } }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      });
      req.on("error", reject);
      req.end(body);
    });

  it("Gemini's x-goog-upload-url and Anthropic's results_url point at the address served", async () => {
    const start = await forged("POST", "/upload/v1beta/files", {
      "x-goog-api-key": "k",
      "x-goog-upload-protocol": "resumable",
      "x-goog-upload-command": "start",
      "x-goog-upload-header-content-length": "10",
      "content-type": "application/json",
    }, JSON.stringify({ file: { displayName: "a.jsonl" } }));
    expect(start.status).toBe(200);
    expect(String(start.headers["x-goog-upload-url"])).toMatch(new RegExp(`^${origin}/upload/v1beta/files\\?`));

    const created = await forged("POST", "/v1/messages/batches", { "x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json" }, JSON.stringify({
      requests: [{ custom_id: "a", params: { model: "local/glove-100d", max_tokens: 8, messages: [{ role: "user", content: "hi" }] } }],
    }));
    expect(created.status).toBe(200);
    const id = JSON.parse(created.text).id;
    await server.engine.cancelBatch(null, id.replace(/^msg/, "")).catch(() => undefined);
    for (let i = 0; i < 200; i++) {
      const got = JSON.parse((await forged("GET", `/v1/messages/batches/${id}`, { "x-api-key": "k", "anthropic-version": "2023-06-01" })).text);
      if (got.results_url) {
        expect(got.results_url).toBe(`${origin}/v1/messages/batches/${id}/results`);
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the batch never ended");
  });

  it("a configured publicURL is used instead", async () => {
    const { buildServer } = await import("../src/api/server.js");
    const app = await buildServer({ engine: server.engine, apiKeys: [], maxFileBytes: 1 << 20, publicURL: "https://batch.example.com/openbatch/" });
    try {
      const res = await app.inject({ method: "POST", url: "/upload/v1beta/files", headers: { host: "evil.example", "x-goog-api-key": "k", "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", "content-type": "application/json" }, payload: "{}" });
      expect(res.headers["x-goog-upload-url"]).toMatch(/^https:\/\/batch\.example\.com\/openbatch\/upload\/v1beta\/files\?/);
    } finally {
      await app.close();
    }
  });
});

describe("a condition failing every dispatcher pass is logged once, backed off, and its end reported", () => {
  it("failing passes at pollMs 5 log one error, wait twice as long after each failure, then 'succeed again'", async () => {
    const { Engine } = await import("../src/engine/engine.js");
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const lines: { level: string; message: string }[] = [];
    const log = {
      info: (_f: object, message: string) => lines.push({ level: "info", message }),
      warn: (_f: object, message: string) => lines.push({ level: "warn", message }),
      error: (_f: object, message: string) => lines.push({ level: "error", message }),
    };
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-passes-"));
    const engine = await Engine.open({ dataDir, config: parseConfig({}), log, pollMs: 5 });
    await engine.start();
    const store = (engine as unknown as { store: { batchesInStatus: (...a: unknown[]) => Promise<unknown> } }).store;
    const real = store.batchesInStatus.bind(store);
    let failing = true;
    const calledAt: number[] = [];
    store.batchesInStatus = async (...a: unknown[]) => {
      if (failing) {
        calledAt.push(performance.now());
        throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
      }
      return real(...a);
    };
    try {
      for (let i = 0; i < 200 && calledAt.length < 7; i++) await new Promise((r) => setTimeout(r, 20));
      // The waits double (pollMs × 2^k after the k-th failure): the last three are at least 15, 30 and 60 ms — lower
      // bounds a slow machine cannot break, where a dispatcher polling every 5 ms with no backoff gives ~5 ms gaps.
      const gaps = calledAt.slice(4, 7).map((t, k) => t - calledAt[k + 3]!);
      expect(gaps.map((g, k) => g >= 15 * 2 ** k), calledAt.map((t) => (t - calledAt[0]!).toFixed(1)).join(", ")).toEqual([true, true, true]);
      expect(lines.filter((l) => l.level === "error" && /dispatcher/.test(l.message)), JSON.stringify(lines)).toHaveLength(1);
      failing = false;
      for (let i = 0; i < 100 && !lines.some((l) => /succeed again/.test(l.message)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(lines.some((l) => l.level === "info" && /succeed again/.test(l.message))).toBe(true);
    } finally {
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("stream: true in a batch is refused, never sent upstream as a stream the batch cannot record", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("a file line with body.stream fails validation on that line; a seed-001 add is a 400", async () => {
    const client = server.client();
    const line = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] } });
    const batch = await client.batches.create({ input_file_id: (await uploadJsonl(client, line + "\n")).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(batch.status).toBe("failed");
    expect(batch.errors?.data?.[0]).toMatchObject({ code: "invalid_value", param: "body.stream", line: 1 });

    const post = (path: string, body: unknown) => fetch(server.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const created = (await (await post("/batches", { name: "s", model: "m" })).json()) as { id: string };
    const added = await post(`/batches/${created.id}/requests`, { requests: [{ custom_id: "a", body: { model: "m", stream: true, messages: [] } }] });
    expect(added.status).toBe(400);
    expect(((await added.json()) as any).error.param).toBe("requests[0].stream");

    const ok = { custom_id: "dup", body: { model: "m", messages: [{ role: "user", content: "hi" }] } };
    expect((await post(`/batches/${created.id}/requests`, { requests: [ok] })).status).toBe(200);
    const again = await post(`/batches/${created.id}/requests`, { requests: [ok] });
    expect(again.status).toBe(400);
    const text = await again.text();
    expect(JSON.parse(text).error).toMatchObject({ code: "duplicate_custom_id" });
    expect(text).not.toMatch(/UNIQUE|constraint|request_items/);
  });
});
