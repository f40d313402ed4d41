import Anthropic from "@anthropic-ai/sdk";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { startServer, upstreamConfig, type TestServer } from "./support/harness.js";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";

// ---------------------------------------------------------------------------------------------------------------
// The installed SDK's own type declarations are the reference: every property they declare required must be present
// in what we send, recursively, with null only where the type allows null. Read with the TypeScript compiler, so a new
// SDK version that adds a required field makes these tests fail until the dialect renders it.

// The package root (its `exports` hide package.json); the main entry sits there.
const SDK_DIR = dirname(createRequire(import.meta.url).resolve("@anthropic-ai/sdk"));
const BATCHES_DTS = join(SDK_DIR, "resources/messages/batches.d.ts");
const program = ts.createProgram([BATCHES_DTS], { noEmit: true, skipLibCheck: true, types: [], strictNullChecks: true });
const checker = program.getTypeChecker();

/** A type exported by the SDK's resources/messages/batches.d.ts, or by a module it imports as `MessagesAPI`/`Shared`. */
function sdkType(name: string): ts.Type {
  const sf = program.getSourceFile(BATCHES_DTS)!;
  const moduleSymbol = checker.getSymbolAtLocation(sf)!;
  const [ns, member] = name.includes(".") ? name.split(".") : [null, name];
  let sym: ts.Symbol | undefined;
  if (ns === null) sym = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === member);
  else {
    const alias = checker.getSymbolsInScope(sf, ts.SymbolFlags.Alias).find((s) => s.name === ns);
    sym = alias && checker.getExportsOfModule(checker.getAliasedSymbol(alias)).find((s) => s.name === member);
  }
  if (!sym) throw new Error(`SDK type ${name} not found`);
  return checker.getDeclaredTypeOfSymbol(sym);
}

/** Names of the properties `type` declares required (not `?`). */
function requiredKeys(type: ts.Type): string[] {
  return checker
    .getPropertiesOfType(type)
    .filter((p) => !(p.flags & ts.SymbolFlags.Optional))
    .map((p) => p.name)
    .sort();
}

const members = (t: ts.Type): ts.Type[] => (t.isUnion() ? t.types : [t]);
const has = (t: ts.Type, flags: ts.TypeFlags) => members(t).some((m) => (m.flags & flags) !== 0);
const ANY = ts.TypeFlags.Any | ts.TypeFlags.Unknown;

/** Every way `value` (at `path`) falls short of the SDK type `type`: missing required keys, nulls the type forbids, wrong kinds. */
function shortfalls(value: unknown, type: ts.Type, path = "$"): string[] {
  if (has(type, ANY)) return [];
  if (value === null || value === undefined) return has(type, ts.TypeFlags.Null) ? [] : [`${path}: ${value} where the type is ${checker.typeToString(type)}`];
  const candidates = members(type).filter((m) => !(m.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)));
  if (Array.isArray(value)) {
    const arr = candidates.find((m) => checker.isArrayType(m));
    if (!arr) return [`${path}: a list where the type is ${checker.typeToString(type)}`];
    const elem = checker.getTypeArguments(arr as ts.TypeReference)[0]!;
    return value.flatMap((v, i) => shortfalls(v, elem, `${path}[${i}]`));
  }
  if (typeof value === "object") {
    let objects = candidates.filter((m) => m.flags & ts.TypeFlags.Object && !checker.isArrayType(m));
    const tag = (value as { type?: unknown }).type;
    if (objects.length > 1 && typeof tag === "string") {
      // A union of blocks/results: the member whose `type` literal is this value's.
      objects = objects.filter((m) => {
        const p = m.getProperty("type");
        return p !== undefined && members(checker.getTypeOfSymbol(p)).some((l) => l.isStringLiteral() && l.value === tag);
      });
    }
    if (objects.length === 0) return [`${path}: an object (type ${JSON.stringify(tag)}) where the type is ${checker.typeToString(type)}`];
    if (objects.length > 1) return []; // ambiguous without a tag; the keys checked elsewhere cover our shapes
    const record = value as Record<string, unknown>;
    return checker.getPropertiesOfType(objects[0]!).flatMap((p) => {
      const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      if (!(p.name in record)) return optional ? [] : [`${path}.${p.name}: missing`];
      return shortfalls(record[p.name], checker.getTypeOfSymbol(p), `${path}.${p.name}`);
    });
  }
  const ok =
    typeof value === "string"
      ? candidates.some((m) => (m.isStringLiteral() ? m.value === value : (m.flags & (ts.TypeFlags.String | ts.TypeFlags.Intersection)) !== 0))
      : typeof value === "number"
        ? has(type, ts.TypeFlags.NumberLike)
        : typeof value === "boolean"
          ? has(type, ts.TypeFlags.BooleanLike)
          : false;
  return ok ? [] : [`${path}: ${JSON.stringify(value)} is not a ${checker.typeToString(type)}`];
}

const MESSAGE = () => sdkType("MessagesAPI.Message");
const RESULT_LINE = () => sdkType("MessageBatchIndividualResponse");
const BATCH = () => sdkType("MessageBatch");

// ---------------------------------------------------------------------------------------------------------------

/** A fake Anthropic Messages upstream answering like an older API version: no container, citations, cache_creation… */
async function fakeAnthropic(): Promise<LocalHttpServer> {
  return listenLocal((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      const body = JSON.parse(text);
      res.writeHead(200, { "content-type": "application/json", "request-id": "req_upstream" }).end(
        JSON.stringify({
          id: "msg_01UpstreamOwnId",
          type: "message",
          role: "assistant",
          model: body.model,
          content: [
            { type: "thinking", thinking: "hmm", signature: "sig" },
            { type: "text", text: "native: " + body.messages.at(-1).content },
          ],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage: { input_tokens: 7, output_tokens: 2, cache_read_input_tokens: 1, service_tier: "standard" },
          // A field newer than our SDK: passed on as it is.
          future_field: { kept: true },
        }),
      );
    });
  });
}

describe("Anthropic Message Batches through @anthropic-ai/sdk (default options), on OpenAI-compatible and Anthropic upstreams", () => {
  let upstream: FakeUpstream;
  let native: LocalHttpServer;
  let server: TestServer;
  let client: Anthropic;
  const KEY = "sk-ant-test";
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    native = await fakeAnthropic();
    const config = upstreamConfig(upstream.url, { maxConcurrency: 4 });
    server = await startServer({
      ...config,
      providers: { ...(config.providers as object), claude: { type: "anthropic", baseURL: native.origin, apiKey: "ant-key" } },
      models: { "native-*": "claude", "*": "up" },
      apiKeys: [KEY],
    });
    client = new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: KEY });
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
    await native.stop();
  });

  const request = (i: number, extra: Record<string, unknown> = {}) => ({
    custom_id: `q-${i}`,
    params: { model: "claude-sonnet-4", max_tokens: 32, system: "Answer briefly.", messages: [{ role: "user" as const, content: `question ${i}` }], ...extra },
  });

  async function untilEnded(id: string) {
    for (let i = 0; i < 400; i++) {
      const b = await client.messages.batches.retrieve(id);
      if (b.processing_status === "ended") return b;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error("batch never ended");
  }

  async function resultsOf(id: string) {
    const results = [];
    for await (const r of await client.messages.batches.results(id)) results.push(r);
    return results;
  }

  it("reads the SDK's declared shapes (so the conformance checks below can fail)", () => {
    expect(requiredKeys(MESSAGE())).toEqual(["container", "content", "diagnostics", "id", "model", "role", "stop_details", "stop_reason", "stop_sequence", "type", "usage"]);
    const usage = checker.getTypeOfSymbol(MESSAGE().getProperty("usage")!);
    expect(requiredKeys(usage)).toEqual(expect.arrayContaining(["cache_creation", "cache_creation_input_tokens", "cache_read_input_tokens", "input_tokens", "output_tokens", "server_tool_use", "service_tier"]));
    expect(requiredKeys(sdkType("MessagesAPI.TextBlock"))).toEqual(["citations", "text", "type"]);
    expect(requiredKeys(sdkType("Shared.ErrorResponse"))).toEqual(["error", "request_id", "type"]);
    expect(requiredKeys(BATCH())).toEqual(["archived_at", "cancel_initiated_at", "created_at", "ended_at", "expires_at", "id", "processing_status", "request_counts", "results_url", "type"]);
    // The message shape OpenBatch rendered before: the checker names what it lacks.
    const old = { id: "chatcmpl-1", type: "message", role: "assistant", model: "m", content: [{ type: "text", text: "hi" }], stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } };
    expect(shortfalls(old, MESSAGE())).toEqual(expect.arrayContaining(["$.container: missing", "$.stop_details: missing", "$.content[0].citations: missing", "$.usage.server_tool_use: missing"]));
    expect(shortfalls({ ...old, stop_reason: "stop" }, MESSAGE())).toEqual(expect.arrayContaining([expect.stringMatching(/^\$\.stop_reason: "stop" is not a /)]));
  });

  it("create → retrieve → results, translated to and from the OpenAI upstream; every object matches the SDK's types", async () => {
    const created = await client.messages.batches.create({ requests: [request(0), request(1), request(2, { stop_sequences: ["END"], temperature: 0.2 })] });
    expect(created.id).toMatch(/^msgbatch_/);
    expect(created.type).toBe("message_batch");
    expect(shortfalls(created, BATCH())).toEqual([]);
    expect(created.request_counts.processing + created.request_counts.succeeded).toBe(3);
    const ended = await untilEnded(created.id);
    expect(shortfalls(ended, BATCH())).toEqual([]);
    expect(ended.request_counts).toEqual({ processing: 0, succeeded: 3, errored: 0, canceled: 0, expired: 0 });
    expect(ended.results_url).toMatch(/^http:\/\/.+\/v1\/messages\/batches\/msgbatch_.+\/results$/);
    const results = await resultsOf(created.id);
    expect(results.map((r) => r.custom_id).sort()).toEqual(["q-0", "q-1", "q-2"]);
    for (const r of results) expect(shortfalls(r, RESULT_LINE())).toEqual([]);
    const first = results.find((r) => r.custom_id === "q-0")!;
    if (first.result.type !== "succeeded") throw new Error(`q-0 ${first.result.type}`);
    const message = first.result.message;
    // The upstream's id is `chatcmpl-1` for every answer: each message gets its own Anthropic id instead.
    expect(message.id).toMatch(/^msg_[0-9a-f]{24}$/);
    expect(new Set(results.map((r) => (r.result.type === "succeeded" ? r.result.message.id : ""))).size).toBe(3);
    expect(message).toEqual({
      id: message.id,
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4",
      content: [{ type: "text", text: "echo: question 0", citations: null }],
      stop_reason: "end_turn",
      stop_sequence: null,
      stop_details: null,
      container: null,
      diagnostics: null,
      usage: {
        input_tokens: 2,
        output_tokens: 3,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation: null,
        inference_geo: null,
        output_tokens_details: null,
        server_tool_use: null,
        service_tier: null,
        speed: null,
      },
    });
    // The upstream received OpenAI chat requests with the system prompt as the first message.
    const sent = upstream.calls.find((c) => JSON.stringify(c.body).includes("question 2"))!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.body.messages).toEqual([{ role: "system", content: "Answer briefly." }, { role: "user", content: "question 2" }]);
    expect(sent.body.max_tokens).toBe(32);
    expect(sent.body.stop).toEqual(["END"]);
  });

  it("an Anthropic upstream's message passes through with its own fields; only missing required ones are added as null", async () => {
    const batch = await client.messages.batches.create({ requests: [{ custom_id: "n-1", params: { model: "native-claude", max_tokens: 16, messages: [{ role: "user", content: "hello" }] } }] });
    await untilEnded(batch.id);
    const [line] = await resultsOf(batch.id);
    expect(shortfalls(line, RESULT_LINE())).toEqual([]);
    if (line!.result.type !== "succeeded") throw new Error(JSON.stringify(line!.result));
    const m = line!.result.message;
    expect(m.id).toBe("msg_01UpstreamOwnId");
    expect(m.content).toEqual([
      { type: "thinking", thinking: "hmm", signature: "sig" },
      { type: "text", text: "native: hello", citations: null },
    ]);
    expect((m as unknown as { future_field: unknown }).future_field).toEqual({ kept: true });
    expect(m.container).toBeNull();
    expect(m.stop_details).toBeNull();
    expect(m.usage).toEqual({
      input_tokens: 7,
      output_tokens: 2,
      cache_read_input_tokens: 1,
      service_tier: "standard",
      cache_creation: null,
      cache_creation_input_tokens: null,
      inference_geo: null,
      output_tokens_details: null,
      server_tool_use: null,
      speed: null,
    });
  });

  it("lists newest first to the last page, cancels, deletes only ended batches", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.messages.batches.create({ requests: [request(10 + i)] })).id);
    const seen: string[] = [];
    for await (const b of client.messages.batches.list({ limit: 2 })) {
      expect(shortfalls(b, BATCH())).toEqual([]);
      seen.push(b.id);
    }
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    upstream.plan = () => ({ kind: "delay", ms: 400 });
    const slow = await client.messages.batches.create({ requests: Array.from({ length: 8 }, (_, i) => request(100 + i)) });
    // 409 with x-should-retry: false, so the SDK's default retries (2) do not repeat it: one DELETE reaches us.
    let deletes = 0;
    const counting = new Anthropic({
      baseURL: server.url.replace(/\/v1$/, ""),
      apiKey: KEY,
      fetch: (url, init) => {
        if (init?.method === "DELETE") deletes++;
        return fetch(url, init);
      },
    });
    const conflict = await counting.messages.batches.delete(slow.id).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(Anthropic.ConflictError);
    expect((conflict as InstanceType<typeof Anthropic.ConflictError>).error).toMatchObject({ type: "error", error: { type: "conflict_error" } });
    expect((conflict as InstanceType<typeof Anthropic.ConflictError>).headers.get("x-should-retry")).toBe("false");
    expect(deletes).toBe(1);
    const cancelling = await client.messages.batches.cancel(slow.id);
    expect(shortfalls(cancelling, BATCH())).toEqual([]);
    expect(["canceling", "ended"]).toContain(cancelling.processing_status);
    expect(cancelling.cancel_initiated_at).not.toBeNull();
    const ended = await untilEnded(slow.id);
    expect(ended.request_counts.canceled).toBeGreaterThan(0);
    const results = await resultsOf(slow.id);
    expect(results).toHaveLength(8);
    expect(results.some((r) => r.result.type === "canceled")).toBe(true);
    for (const r of results) expect(shortfalls(r, RESULT_LINE())).toEqual([]);
    upstream.plan = () => ({ kind: "ok" });

    const deleted = await client.messages.batches.delete(slow.id);
    expect(shortfalls(deleted, sdkType("DeletedMessageBatch"))).toEqual([]);
    expect(deleted).toMatchObject({ id: slow.id, type: "message_batch_deleted" });
    await expect(client.messages.batches.retrieve(slow.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("every answer carries a request-id, and every error body names the same one as request_id", async () => {
    const a = await client.messages.batches.create({ requests: [request(300)] });
    const b = await client.messages.batches.retrieve(a.id);
    expect(a._request_id).toMatch(/^req_[0-9a-f]{24}$/);
    expect(b._request_id).toMatch(/^req_[0-9a-f]{24}$/);
    expect(b._request_id).not.toBe(a._request_id);
    const { response } = await client.messages.batches.list({ limit: 1 }).withResponse();
    expect(response.headers.get("request-id")).toMatch(/^req_/);

    // Errors thrown by the route, by auth (an earlier hook), and by the server's 404 handler.
    const failures: [() => PromiseLike<unknown>, new (...args: never[]) => InstanceType<typeof Anthropic.APIError>][] = [
      [() => client.messages.batches.retrieve("msgbatch_nope"), Anthropic.NotFoundError],
      [() => new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: "wrong" }).messages.batches.list(), Anthropic.AuthenticationError],
      [() => client.get("/v1/messages/batches/x/nothing-here"), Anthropic.NotFoundError],
      [() => client.messages.batches.create({ requests: [request(1), { ...request(2), params: { ...request(2).params, model: "other" } }] }), Anthropic.BadRequestError],
    ];
    const ids = new Set<string>();
    for (const [call, cls] of failures) {
      const err = (await Promise.resolve(call()).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
      expect(err).toBeInstanceOf(cls);
      expect(err.requestID).toMatch(/^req_[0-9a-f]{24}$/);
      expect(err.error).toMatchObject({ type: "error", request_id: err.requestID });
      expect(shortfalls(err.error, sdkType("Shared.ErrorResponse"))).toEqual([]);
      ids.add(err.requestID!);
    }
    expect(ids.size).toBe(failures.length);

    const bad = await fetch(server.url + "/messages/batches", { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify({ requests: [{ custom_id: "bad id!", params: {} }] }) });
    expect(bad.status).toBe(400);
    const body = await bad.json();
    expect(body).toMatchObject({ type: "error", error: { type: "invalid_request_error" }, request_id: bad.headers.get("request-id") });
  });

  it("refuses what it cannot honour instead of ignoring it: unknown body fields, workspace_id, user_profile_id", async () => {
    await expect(client.messages.batches.create({ requests: [request(400)], priority: 1 } as never)).rejects.toMatchObject({ status: 400, message: expect.stringContaining("priority") });
    await expect(client.messages.batches.create({ requests: [{ ...request(401), note: "x" } as never] })).rejects.toMatchObject({ status: 400, message: expect.stringContaining("note") });
    await expect(client.messages.batches.create({ requests: [request(402)], workspace_id: "wrkspc_1" })).rejects.toMatchObject({ status: 400, message: expect.stringContaining("workspace_id") });
    await expect(client.messages.batches.create({ requests: [request(403)], user_profile_id: "up_1" })).rejects.toMatchObject({ status: 400, message: expect.stringContaining("user_profile_id") });
    await expect(client.messages.batches.list({ workspace_id: "wrkspc_1" })).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });

  it("an errored item is an ErrorResponse with a request_id: untranslatable fields name the field, upstream errors keep their message", async () => {
    upstream.plan = (call) => (call.key === "question 202" ? { kind: "status", status: 400, body: JSON.stringify({ error: { message: "bad things", type: "invalid_request_error" } }) } : { kind: "ok" });
    const batch = await client.messages.batches.create({
      requests: [request(200), request(202), { custom_id: "with-tools", params: { ...request(201).params, tools: [{ name: "t", input_schema: { type: "object" } }] } }],
    });
    await untilEnded(batch.id);
    upstream.plan = () => ({ kind: "ok" });
    const results = await resultsOf(batch.id);
    for (const r of results) expect(shortfalls(r, RESULT_LINE())).toEqual([]);
    const byId = Object.fromEntries(results.map((r) => [r.custom_id, r.result]));
    expect(byId["q-200"]!.type).toBe("succeeded");
    expect(byId["with-tools"]).toMatchObject({ type: "errored", error: { type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("tools") }, request_id: null } });
    expect(byId["q-202"]).toMatchObject({ type: "errored", error: { type: "error", error: { type: "invalid_request_error", message: "bad things" }, request_id: expect.stringMatching(/^req_/) } });
  });
});
