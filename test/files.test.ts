import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI, { APIConnectionError, APIError, BadRequestError, NotFoundError, toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiError, startServer, type TestServer } from "./support/harness.js";

type Purpose = OpenAI.Files.FilePurpose;

async function upload(client: OpenAI, bytes: Buffer | string, name: string, purpose: string) {
  return client.files.create({ file: await toFile(typeof bytes === "string" ? Buffer.from(bytes) : bytes, name), purpose: purpose as Purpose });
}

/** Every file id the server lists (all pages). */
async function allIds(client: OpenAI, query: OpenAI.Files.FileListParams = {}): Promise<string[]> {
  const ids: string[] = [];
  for await (const f of client.files.list(query)) ids.push(f.id);
  return ids;
}

/** The raw JSON list envelope (first_id/last_id are not on the SDK's page object). */
async function rawList(client: OpenAI, query: OpenAI.Files.FileListParams) {
  const res = await client.files.list(query).asResponse();
  expect(res.status).toBe(200);
  return (await res.json()) as { object: string; data: OpenAI.Files.FileObject[]; first_id: string | null; last_id: string | null; has_more: boolean };
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("Files API through the openai SDK", () => {
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startServer({});
    client = server.client();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("upload returns a FileObject and retrieve returns the same object", async () => {
    const text = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n';
    const before = Math.floor(Date.now() / 1000);
    const f = await upload(client, text, "my input.jsonl", "batch");
    const after = Math.floor(Date.now() / 1000);
    expect(f.id).toMatch(/^file-./);
    expect(f.object).toBe("file");
    expect(f.bytes).toBe(Buffer.byteLength(text));
    expect(f.filename).toBe("my input.jsonl");
    expect(f.purpose).toBe("batch");
    expect(f.created_at).toBeGreaterThanOrEqual(before);
    expect(f.created_at).toBeLessThanOrEqual(after);
    const got = await client.files.retrieve(f.id);
    expect(got).toEqual(f);
  });

  it("two uploads get distinct ids", async () => {
    const a = await upload(client, "x\n", "a.jsonl", "batch");
    const b = await upload(client, "x\n", "a.jsonl", "batch");
    expect(a.id).not.toBe(b.id);
  });

  it("content returns the exact bytes, binary and multi-byte UTF-8 included", async () => {
    const bytes = Buffer.concat([Buffer.from('{"k":"héllo ✓ 日本"}\r\n\n'), randomBytes(4096), Buffer.from([0, 0xff, 0xfe, 0x0a])]);
    const f = await upload(client, bytes, "blob.bin", "user_data");
    expect(f.bytes).toBe(bytes.length);
    const res = await client.files.content(f.id);
    const got = Buffer.from(await res.arrayBuffer());
    expect(got.length).toBe(bytes.length);
    expect(got.equals(bytes)).toBe(true);
  });

  it("retrieve and content of an unknown id are 404 NotFoundError", async () => {
    const e1 = await apiError(client.files.retrieve("file-doesnotexist"));
    expect(e1).toBeInstanceOf(NotFoundError);
    expect(e1.status).toBe(404);
    const e2 = await apiError(client.files.content("file-doesnotexist"));
    expect(e2).toBeInstanceOf(NotFoundError);
  });

  it("delete returns {id, object, deleted:true}; the file is then gone from retrieve, content and list", async () => {
    const f = await upload(client, "to delete\n", "del.jsonl", "batch");
    const del = await client.files.delete(f.id);
    expect(del).toEqual({ id: f.id, object: "file", deleted: true });
    const e1 = await apiError(client.files.retrieve(f.id));
    expect(e1).toBeInstanceOf(NotFoundError);
    expect(e1.status).toBe(404);
    const e2 = await apiError(client.files.content(f.id));
    expect(e2).toBeInstanceOf(NotFoundError);
    expect(await allIds(client)).not.toContain(f.id);
    const e3 = await apiError(client.files.delete(f.id));
    expect(e3).toBeInstanceOf(NotFoundError);
  });

  it("an invalid purpose is a 400 with param purpose, and nothing is stored", async () => {
    const before = await allIds(client);
    for (const purpose of ["nonsense", "batch_output", ""]) {
      const err = await apiError(upload(client, "x\n", "bad.jsonl", purpose));
      expect(err, purpose).toBeInstanceOf(BadRequestError);
      expect(err.status, purpose).toBe(400);
      expect(err.param, purpose).toBe("purpose");
    }
    expect(await allIds(client)).toEqual(before);
  });

  it("every documented upload purpose is accepted", async () => {
    for (const purpose of ["batch", "assistants", "fine-tune", "vision", "user_data", "evals"]) {
      const f = await upload(client, "x\n", "p.jsonl", purpose);
      expect(f.purpose).toBe(purpose);
    }
  });

  it("a multi-megabyte upload streams through and round-trips byte for byte", async () => {
    const line = (i: number) => JSON.stringify({ custom_id: `req-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: "x".repeat(200) + i }] } }) + "\n";
    const parts: string[] = [];
    for (let i = 0, size = 0; size < 5 * 1024 * 1024; i++) {
      const l = line(i);
      parts.push(l);
      size += l.length;
    }
    const big = Buffer.from(parts.join(""));
    expect(big.length).toBeGreaterThan(5 * 1024 * 1024);
    const f = await upload(client, big, "big.jsonl", "batch");
    expect(f.bytes).toBe(big.length);
    expect((await client.files.retrieve(f.id)).bytes).toBe(big.length);
    const got = Buffer.from(await (await client.files.content(f.id)).arrayBuffer());
    expect(got.length).toBe(big.length);
    expect(sha256(got)).toBe(sha256(big));
  });
});

describe("Files list: purpose filter, order and cursor pagination", () => {
  let server: TestServer;
  let client: OpenAI;
  /** Upload order: b0, u0, b1, b2, u1, b3, b4. */
  const batchIds: string[] = [];
  const userIds: string[] = [];
  const allInOrder: string[] = [];

  beforeAll(async () => {
    server = await startServer({});
    client = server.client();
    const plan: [string, "batch" | "user_data"][] = [
      ["b0", "batch"],
      ["u0", "user_data"],
      ["b1", "batch"],
      ["b2", "batch"],
      ["u1", "user_data"],
      ["b3", "batch"],
      ["b4", "batch"],
    ];
    for (const [name, purpose] of plan) {
      const f = await upload(client, name + "\n", `${name}.jsonl`, purpose);
      (purpose === "batch" ? batchIds : userIds).push(f.id);
      allInOrder.push(f.id);
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  it("filters by purpose", async () => {
    const user = await client.files.list({ purpose: "user_data", order: "asc" });
    expect(user.data.map((f) => f.id)).toEqual(userIds);
    expect(user.data.every((f) => f.purpose === "user_data")).toBe(true);
    expect(user.has_more).toBe(false);
    const batch = await client.files.list({ purpose: "batch", order: "asc" });
    expect(batch.data.map((f) => f.id)).toEqual(batchIds);
    const none = await client.files.list({ purpose: "evals" });
    expect(none.data).toEqual([]);
    expect(none.has_more).toBe(false);
  });

  it("orders asc (oldest first) and desc (newest first)", async () => {
    const asc = await client.files.list({ order: "asc" });
    expect(asc.data.map((f) => f.id)).toEqual(allInOrder);
    const desc = await client.files.list({ order: "desc" });
    expect(desc.data.map((f) => f.id)).toEqual([...allInOrder].reverse());
  });

  it("the list envelope carries object, first_id, last_id and has_more", async () => {
    const body = await rawList(client, { order: "asc" });
    expect(body.object).toBe("list");
    expect(body.first_id).toBe(allInOrder[0]);
    expect(body.last_id).toBe(allInOrder.at(-1));
    expect(body.has_more).toBe(false);
    const empty = await rawList(client, { purpose: "evals" });
    expect(empty.data).toEqual([]);
    expect(empty.first_id).toBeNull();
    expect(empty.last_id).toBeNull();
    expect(empty.has_more).toBe(false);
  });

  it("pages with limit + after in asc order", async () => {
    const p1 = await rawList(client, { purpose: "batch", order: "asc", limit: 2 });
    expect(p1.data.map((f) => f.id)).toEqual(batchIds.slice(0, 2));
    expect(p1.first_id).toBe(batchIds[0]);
    expect(p1.last_id).toBe(batchIds[1]);
    expect(p1.has_more).toBe(true);
    const p2 = await rawList(client, { purpose: "batch", order: "asc", limit: 2, after: p1.last_id! });
    expect(p2.data.map((f) => f.id)).toEqual(batchIds.slice(2, 4));
    expect(p2.first_id).toBe(batchIds[2]);
    expect(p2.last_id).toBe(batchIds[3]);
    expect(p2.has_more).toBe(true);
    const p3 = await rawList(client, { purpose: "batch", order: "asc", limit: 2, after: p2.last_id! });
    expect(p3.data.map((f) => f.id)).toEqual([batchIds[4]]);
    expect(p3.first_id).toBe(batchIds[4]);
    expect(p3.last_id).toBe(batchIds[4]);
    expect(p3.has_more).toBe(false);
  });

  it("pages with limit + after in desc order", async () => {
    const rev = [...allInOrder].reverse();
    const p1 = await rawList(client, { order: "desc", limit: 3 });
    expect(p1.data.map((f) => f.id)).toEqual(rev.slice(0, 3));
    expect(p1.has_more).toBe(true);
    const p2 = await rawList(client, { order: "desc", limit: 3, after: p1.last_id! });
    expect(p2.data.map((f) => f.id)).toEqual(rev.slice(3, 6));
    expect(p2.has_more).toBe(true);
    const p3 = await rawList(client, { order: "desc", limit: 3, after: p2.last_id! });
    expect(p3.data.map((f) => f.id)).toEqual(rev.slice(6));
    expect(p3.has_more).toBe(false);
  });

  it("has_more is false when the limit exactly covers what is left, true when one more remains", async () => {
    const exact = await rawList(client, { purpose: "batch", order: "asc", limit: batchIds.length });
    expect(exact.data).toHaveLength(batchIds.length);
    expect(exact.has_more).toBe(false);
    const short = await rawList(client, { purpose: "batch", order: "asc", limit: batchIds.length - 1 });
    expect(short.has_more).toBe(true);
  });

  it("SDK auto-pagination visits every file exactly once, in order", async () => {
    const desc = await allIds(client, { limit: 2, order: "desc" });
    expect(desc).toEqual([...allInOrder].reverse());
    const asc = await allIds(client, { limit: 2, order: "asc" });
    expect(asc).toEqual(allInOrder);
    const batchAsc = await allIds(client, { limit: 2, order: "asc", purpose: "batch" });
    expect(batchAsc).toEqual(batchIds);
    const one = await allIds(client, { limit: 1, order: "desc", purpose: "user_data" });
    expect(one).toEqual([...userIds].reverse());
  });

  it("SDK page-by-page iteration follows has_more", async () => {
    let page = await client.files.list({ limit: 3, order: "asc" });
    const seen: string[] = [...page.data.map((f) => f.id)];
    let pages = 1;
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      seen.push(...page.data.map((f) => f.id));
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(allInOrder);
  });

  it("an out-of-range limit or bad order is a 400 naming the parameter", async () => {
    const e1 = await apiError(client.files.list({ limit: 0 }));
    expect(e1).toBeInstanceOf(BadRequestError);
    expect(e1.param).toBe("limit");
    const e2 = await apiError(client.files.list({ limit: 10_001 }));
    expect(e2).toBeInstanceOf(BadRequestError);
    expect(e2.param).toBe("limit");
    const e3 = await apiError(client.files.list({ order: "sideways" as "asc" }));
    expect(e3).toBeInstanceOf(BadRequestError);
    expect(e3.param).toBe("order");
  });
});

describe("Files upload size limit (limits.maxFileBytes)", () => {
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startServer({ limits: { maxFileBytes: 1000 } });
    client = server.client();
  });
  afterAll(async () => {
    await server?.close();
  });

  /** Uploads `size` bytes that must be refused as too large; returns nothing, asserts how it failed. */
  async function expectTooLarge(size: number, name: string) {
    let err: unknown;
    try {
      await upload(client, Buffer.alloc(size, "a"), name, "batch");
    } catch (e) {
      err = e;
    }
    expect(err, `upload of ${size} bytes should fail`).toBeDefined();
    if (err instanceof APIConnectionError) return; // the server may close the connection before reading the whole body
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(413);
  }

  it("a file exactly at the limit is accepted", async () => {
    const f = await upload(client, Buffer.alloc(1000, "a"), "exact.jsonl", "batch");
    expect(f.bytes).toBe(1000);
    const got = Buffer.from(await (await client.files.content(f.id)).arrayBuffer());
    expect(got.length).toBe(1000);
  });

  it("a file one byte over the limit is refused with 413 and not stored", async () => {
    await expectTooLarge(1001, "over-by-one.jsonl");
    const names = (await client.files.list()).data.map((f) => f.filename);
    expect(names).not.toContain("over-by-one.jsonl");
  });

  it("a much larger file is refused with 413 and not stored; the server keeps serving", async () => {
    const before = (await client.files.list()).data.map((f) => f.id);
    await expectTooLarge(256 * 1024, "huge.jsonl");
    const after = await client.files.list();
    expect(after.data.map((f) => f.filename)).not.toContain("huge.jsonl");
    expect(after.data.map((f) => f.id)).toEqual(before);
    // The refused body must not wedge the keep-alive connection the SDK reuses: a later upload must still get an answer
    // (bounded so a wedged socket fails the test instead of waiting out the server's keepAliveTimeout).
    const ok = await client.files.create({ file: await toFile(Buffer.from("small\n"), "after.jsonl"), purpose: "batch" }, { timeout: 15_000 });
    expect(ok.bytes).toBe(6);
  });

  it("refused uploads leave no bytes behind on disk", async () => {
    await expectTooLarge(5000, "leak-check.jsonl");
    const listed = new Set((await client.files.list()).data.map((f) => f.id));
    const deadline = Date.now() + 5000;
    let extra: string[] = [];
    for (;;) {
      extra = (await readdir(join(server.dataDir, "files"))).filter((n) => !listed.has(n));
      if (extra.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(extra).toEqual([]);
  });
});
