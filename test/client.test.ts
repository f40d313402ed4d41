import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jsonArrayElements, parseBatchSpec, propertyName, uuid5 } from "../src/cli/import.js";
import { ApiError, ConnectionError, connect, graphqlValue, type Batcher } from "../src/index.js";
import { exited, freePort, spawnCli } from "./support/child.js";

const DATASETS = new URL("../../shared/datasets/jeopardy/", import.meta.url);

interface SentObject {
  class: string;
  id: string;
  properties: Record<string, any>;
  vector?: number[];
}

/**
 * A small Weaviate stand-in on 127.0.0.1: /v1/schema, /v1/batch/objects, /v1/batch/references, /v1/nodes, /v1/graphql,
 * /v1/objects. Records every batch request (time, size, ids), the peak of batch requests in flight, and which uuids had
 * their batch answered before a reference naming them arrived. Failures are injected per item (`failItem`) or per
 * request (`failNext` statuses, `failAll`).
 */
class FakeWeaviate {
  url = "";
  classes = new Map<string, any>();
  objects = new Map<string, SentObject>();
  /** uuid → times received in /v1/batch/objects. */
  received = new Map<string, number>();
  /** uuids whose batch request was answered. */
  answered = new Set<string>();
  objectRequests: { at: number; size: number; ids: string[] }[] = [];
  referenceRequests: { at: number; refs: { from: string; to: string }[]; endsAnswered: boolean[] }[] = [];
  batchAttempts = 0;
  inFlight = 0;
  maxInFlight = 0;
  delayMs = 0;
  failItem: (o: SentObject, n: number) => string | null = () => null;
  failNext: number[] = [];
  failAll: number | null = null;
  nodes = { queueLength: 0, ratePerSecond: 100 };
  nodePolls = 0;
  graphql: string[] = [];
  graphqlAnswer: (query: string) => unknown = () => ({ data: { Get: {} } });
  private http: LocalHttpServer | null = null;

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res));
    this.url = this.http.origin;
    return this;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }

  /** Every uuid received exactly once, and exactly these. */
  receivedOnce(uuids: string[]): void {
    expect([...this.received.keys()].sort()).toEqual([...uuids].sort());
    expect([...this.received.values()].every((n) => n === 1)).toBe(true);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body = text ? JSON.parse(text) : null;
    const url = new URL(req.url!, "http://x");
    const send = (status: number, value?: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(value === undefined ? "" : JSON.stringify(value));
    };
    const path = url.pathname;
    if (path === "/v1/nodes") {
      this.nodePolls++;
      return send(200, { nodes: [{ name: "node1", status: "HEALTHY", batchStats: { ...this.nodes } }] });
    }
    if (path === "/v1/schema" && req.method === "POST") {
      if (this.classes.has(body.class)) return send(422, { error: [{ message: `class name ${body.class} already exists` }] });
      this.classes.set(body.class, body);
      return send(200, body);
    }
    if (path === "/v1/schema" && req.method === "GET") return send(200, { classes: [...this.classes.values()] });
    const schema = path.match(/^\/v1\/schema\/([^/]+)$/);
    if (schema) {
      const cls = decodeURIComponent(schema[1]!);
      if (req.method === "DELETE") {
        this.classes.delete(cls);
        return send(200);
      }
      return this.classes.has(cls) ? send(200, this.classes.get(cls)) : send(404);
    }
    const object = path.match(/^\/v1\/objects\/([^/]+)\/([^/]+)$/);
    if (object) {
      const o = this.objects.get(object[2]!);
      if (!o) return send(404);
      const { vector, ...rest } = o;
      return send(200, { ...rest, creationTimeUnix: 1, lastUpdateTimeUnix: 2, ...(url.searchParams.get("include") === "vector" ? { vector } : {}) });
    }
    if (path === "/v1/graphql") {
      this.graphql.push(body.query);
      return send(200, this.graphqlAnswer(body.query));
    }
    if (path === "/v1/batch/objects" || path === "/v1/batch/references") {
      this.batchAttempts++;
      const status = this.failNext.shift() ?? this.failAll;
      if (status) return send(status, { error: [{ message: `injected ${status}` }] });
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      try {
        if (path === "/v1/batch/objects") {
          const objects = body.objects as SentObject[];
          this.objectRequests.push({ at: Date.now(), size: objects.length, ids: objects.map((o) => o.id) });
          const results = objects.map((o) => {
            const n = (this.received.get(o.id) ?? 0) + 1;
            this.received.set(o.id, n);
            const message = this.failItem(o, n);
            if (message) return { ...o, result: { status: "FAILED", errors: { error: [{ message }] } } };
            this.objects.set(o.id, o);
            return { ...o, result: { status: "SUCCESS" } };
          });
          if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
          for (const o of objects) this.answered.add(o.id);
          return send(200, results);
        }
        const refs = body as { from: string; to: string }[];
        const uuidsOf = (r: { from: string; to: string }) => [r.from.split("/")[4]!, r.to.split("/").at(-1)!];
        this.referenceRequests.push({ at: Date.now(), refs, endsAnswered: refs.map((r) => uuidsOf(r).every((u) => this.answered.has(u))) });
        if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
        return send(
          200,
          refs.map((r) => {
            const [cls, , prop] = r.from.split("/").slice(3);
            return prop === "nope" ? { ...r, result: { status: "FAILED", errors: { error: [{ message: `property nope does not exist for class ${cls}` }] } } } : { ...r, result: { status: "SUCCESS" } };
          }),
        );
      } finally {
        this.inFlight--;
      }
    }
    send(404, { error: [{ message: `no route ${req.method} ${path}` }] });
  }
}

async function until(cond: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function addMany(batch: Batcher, n: number, make: (i: number) => Record<string, unknown> = (i) => ({ title: `t${i}`, i })): Promise<string[]> {
  const uuids: string[] = [];
  for (let i = 0; i < n; i++) uuids.push(await batch.add(make(i)));
  return uuids;
}

describe("client batching against a fake Weaviate", () => {
  let fake: FakeWeaviate;
  const fast = { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 20 };
  const client = () => connect({ url: fake.url, retry: fast });
  beforeAll(async () => {
    fake = await new FakeWeaviate().start();
  });
  afterAll(async () => {
    await fake.stop();
  });
  afterEach(() => {
    Object.assign(fake, { classes: new Map(), objects: new Map(), received: new Map(), answered: new Set(), objectRequests: [], referenceRequests: [], batchAttempts: 0 });
    Object.assign(fake, { maxInFlight: 0, delayMs: 0, failItem: () => null, failNext: [], failAll: null, nodes: { queueLength: 0, ratePerSecond: 100 }, nodePolls: 0, graphql: [] });
  });

  it("dynamic, fixedSize and rateLimit send every object exactly once, with the returned client uuids", async () => {
    const articles = client().collections.use("article");
    expect(articles.name).toBe("Article");
    for (const start of [() => articles.batch.dynamic({ pollIntervalMs: 20 }), () => articles.batch.fixedSize(37, 3), () => articles.batch.rateLimit(12_000)]) {
      fake.received.clear();
      const batch = start();
      const uuids = await addMany(batch, 450);
      expect(new Set(uuids).size).toBe(450);
      for (const u of uuids) expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      await batch.close();
      fake.receivedOnce(uuids);
      expect(batch.numberErrors).toBe(0);
      expect(batch.stats).toMatchObject({ added: 450, succeeded: 450, failed: 0, queued: 0, inFlight: 0 });
      expect((batch as any).pending.size).toBe(0); // no uuid kept once answered
    }
    expect(fake.nodePolls).toBeGreaterThan(0);
    expect(fake.objectRequests.every((r) => r.ids.every((id) => id))).toBe(true);
  });

  it("a given uuid and vector are sent as given", async () => {
    const batch = client().collections.use("Article").batch.fixedSize(10, 1);
    const id = "8a4d6a5e-2b9c-4f6e-9d3a-0c1b2a3d4e5f";
    expect(await batch.add({ title: "x" }, { uuid: id, vector: [0.1, 0.2] })).toBe(id);
    await batch.close();
    expect(fake.objects.get(id)).toEqual({ class: "Article", id, properties: { title: "x" }, vector: [0.1, 0.2] });
  });

  it("fixedSize(size, concurrency) never exceeds the size per request nor the concurrency in flight", async () => {
    fake.delayMs = 40;
    const batch = client().collections.use("Article").batch.fixedSize(10, 3);
    const uuids = await addMany(batch, 205);
    await batch.close();
    fake.receivedOnce(uuids);
    const sizes = fake.objectRequests.map((r) => r.size);
    expect(sizes.slice(0, -1).every((s) => s === 10)).toBe(true);
    expect(sizes.at(-1)).toBe(5);
    expect(fake.maxInFlight).toBe(3);
  });

  it("rateLimit(n) spreads objects evenly: never more than n/60 in any second", async () => {
    const batch = client().collections.use("Article").batch.rateLimit(3000); // 50 objects a second
    const started = Date.now();
    const uuids = await addMany(batch, 200);
    await batch.close();
    const took = Date.now() - started;
    fake.receivedOnce(uuids);
    const times = fake.objectRequests.map((r) => r.at);
    const perWindow = (t: number, ms: number) => fake.objectRequests.filter((r) => r.at >= t && r.at < t + ms).reduce((a, r) => a + r.size, 0);
    for (const t of times) expect(perWindow(t, 750)).toBeLessThanOrEqual(50);
    expect(took).toBeGreaterThanOrEqual(2700); // 4 sends a second apart
    expect(took).toBeLessThan(8000);
  });

  it("per-item failures land in numberErrors and failedObjects with the server's message; the rest succeed", async () => {
    const bad = "invalid text property 'title' on class 'Article': not a string, but float64";
    fake.failItem = (o) => (typeof o.properties.title === "number" ? bad : null);
    const articles = client().collections.use("Article");
    const batch = articles.batch.fixedSize(10, 2);
    const uuids = await addMany(batch, 50, (i) => ({ title: i % 7 === 0 ? i : `t${i}` }));
    await batch.flush();
    expect(batch.numberErrors).toBe(8); // live, before close
    await batch.close();
    const failedIds = uuids.filter((_, i) => i % 7 === 0);
    expect(batch.failedObjects.map((f) => f.originalUuid).sort()).toEqual(failedIds.sort());
    expect(batch.failedObjects.every((f) => f.message === bad && typeof f.object.properties.title === "number" && f.object.id === f.originalUuid)).toBe(true);
    expect(batch.stats).toMatchObject({ succeeded: 42, failed: 8 });
    expect(articles.batch.failedObjects).toBe(batch.failedObjects);
  });

  it("objects failed by a vectorizer rate limit are sent again", async () => {
    fake.failItem = (o, n) => (o.properties.i === 3 && n === 1 ? "text2vec-openbatch: rate limit reached (429)" : null);
    const batch = client().collections.use("Article").batch.fixedSize(5, 2);
    const uuids = await addMany(batch, 10);
    await batch.close();
    expect(batch.numberErrors).toBe(0);
    expect(fake.received.get(uuids[3]!)).toBe(2);
  });

  it("transient 5xx are retried with backoff and succeed", async () => {
    fake.failNext = [503, 500];
    const batch = client().collections.use("Article").batch.fixedSize(20, 1);
    const uuids = await addMany(batch, 20);
    await batch.close();
    fake.receivedOnce(uuids);
    expect(fake.batchAttempts).toBe(3);
    expect(batch.numberErrors).toBe(0);
  });

  it("a request failing after its retries is re-thrown by the next add, its objects are failed, and the batcher goes on", async () => {
    fake.failAll = 500;
    const batch = client().collections.use("Article").batch.fixedSize(5, 1);
    const first = await addMany(batch, 5);
    await until(() => fake.batchAttempts === 3 && batch.numberErrors === 5, 5000, "the retries");
    await expect(batch.add({ title: "next" })).rejects.toThrow(/500 injected 500 \(after 3 attempts\)/);
    expect(batch.failedObjects.map((f) => f.originalUuid)).toEqual(first);
    expect(batch.failedObjects[0]!.message).toMatch(/500/);
    fake.failAll = null;
    const more = await addMany(batch, 3);
    await batch.close(); // the error was thrown once; nothing new failed
    fake.receivedOnce(more);
    expect(batch.numberErrors).toBe(5);
  });

  it("a background error is re-thrown by flush and close after they finish their work", async () => {
    fake.failNext = [500, 500, 500];
    const batch = client().collections.use("Article").batch.fixedSize(3, 1);
    await addMany(batch, 6);
    await expect(batch.close()).rejects.toBeInstanceOf(ApiError);
    expect(batch.stats).toMatchObject({ added: 6, succeeded: 3, failed: 3, queued: 0, inFlight: 0 });
    await expect(batch.add({})).rejects.toThrow(/closed/);
  });

  it("an unreachable server surfaces as a ConnectionError", async () => {
    const port = await freePort();
    const batch = connect({ url: `http://127.0.0.1:${port}`, retry: fast }).collections.use("Article").batch.fixedSize(10, 1);
    await batch.add({ title: "x" });
    const err = await batch.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(batch.failedObjects).toHaveLength(1);
  });

  it("close flushes a partial batch; nothing is sent before", async () => {
    const batch = client().collections.use("Article").batch.fixedSize(100, 2);
    const uuids = await addMany(batch, 30);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.objectRequests).toHaveLength(0);
    await batch.close();
    fake.receivedOnce(uuids);
    expect(fake.objectRequests.map((r) => r.size)).toEqual([30]);
  });

  it("references are sent after both ends' objects were answered; their failures are reported", async () => {
    fake.delayMs = 30;
    const batch = client().collections.use("Article").batch.fixedSize(4, 2);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const refs = i > 0 ? { cites: ids[i - 1]!, related: [{ uuid: ids[0]!, collection: "Article" }] } : undefined;
      ids.push(await batch.add({ title: `t${i}` }, { references: refs }));
      if (i > 1) await batch.addReference(ids[i]!, "seeAlso", "Article", ids[i - 2]!);
    }
    await batch.addReference(ids[5]!, "nope", "Article", ids[6]!);
    await batch.close();
    fake.receivedOnce(ids);
    const sent = fake.referenceRequests.flatMap((r) => r.refs);
    expect(sent).toHaveLength(19 + 19 + 18 + 1);
    expect(fake.referenceRequests.every((r) => r.endsAnswered.every(Boolean))).toBe(true);
    expect(sent).toContainEqual({ from: `weaviate://localhost/Article/${ids[1]}/cites`, to: `weaviate://localhost/${ids[0]}` });
    expect(sent).toContainEqual({ from: `weaviate://localhost/Article/${ids[3]}/seeAlso`, to: `weaviate://localhost/Article/${ids[1]}` });
    expect(batch.failedReferences).toEqual([
      { message: "property nope does not exist for class Article", reference: { fromCollection: "Article", fromUuid: ids[5], fromProperty: "nope", toCollection: "Article", toUuid: ids[6] } },
    ]);
    expect(batch.numberErrors).toBe(1);
  });

  it("dynamic grows the batch size while the server queue is empty, shrinks and blocks adding on a backlog", async () => {
    fake.delayMs = 30;
    const batch = client().collections.use("Article").batch.dynamic({ pollIntervalMs: 20 });
    expect([batch.batchSize, batch.concurrency]).toEqual([100, 2]);
    let stop = false;
    const uuids: string[] = [];
    const feeder = (async () => {
      for (let i = 0; !stop && i < 200_000; i++) uuids.push(await batch.add({ i }));
    })();
    // The feeder must end whatever fails below: left running it would keep sending into the next tests' fake.
    try {
      await until(() => batch.batchSize >= 400, 30_000, "growth");
      await until(() => fake.objectRequests.some((r) => r.size >= 300), 30_000, "bigger requests");
      await until(() => batch.batchSize === 1000 && batch.concurrency >= 4, 30_000, "more requests in flight at the largest size");
      await until(() => fake.maxInFlight >= 3, 30_000, "three requests in flight at once");
      expect(fake.objectRequests.every((r) => r.size <= 1000)).toBe(true);

      fake.nodes = { queueLength: 100_000, ratePerSecond: 100 }; // 1000 s of backlog
      const before = batch.batchSize;
      await until(() => batch.batchSize < before - 100 && batch.concurrency === 1, 30_000, "shrinking");
      await new Promise((r) => setTimeout(r, 100));
      const added = batch.stats.added;
      await new Promise((r) => setTimeout(r, 200));
      expect(batch.stats.added).toBe(added); // adding blocks

      fake.nodes = { queueLength: 0, ratePerSecond: 100 };
      await until(() => batch.stats.added > added + 100, 30_000, "adding to resume");
    } finally {
      stop = true;
      fake.nodes = { queueLength: 0, ratePerSecond: 100 };
      await feeder;
      await batch.close();
    }
    fake.receivedOnce(uuids);
    expect(batch.numberErrors).toBe(0);
  });

  it("dynamic keeps working when /v1/nodes has no batchStats or fails", async () => {
    const batch = connect({ url: fake.url, retry: fast }).collections.use("Article").batch.dynamic({ pollIntervalMs: 10 });
    fake.nodes = undefined as any;
    const uuids = await addMany(batch, 300);
    await batch.close();
    fake.receivedOnce(uuids);
  });

  it("collections: create, exists, use, delete", async () => {
    const c = client();
    expect(await c.collections.exists("Question")).toBe(false);
    const q = await c.collections.create({
      name: "question",
      properties: [{ name: "question", dataType: "text" }, { name: "value", dataType: ["int"] }],
      vectorizer: "text2vec-openbatch",
      moduleConfig: { "text2vec-openbatch": { model: "local/glove-100d" } },
      distance: "cosine",
    });
    expect(q.name).toBe("Question");
    expect(fake.classes.get("Question")).toEqual({
      class: "Question",
      properties: [{ name: "question", dataType: ["text"] }, { name: "value", dataType: ["int"] }],
      vectorizer: "text2vec-openbatch",
      moduleConfig: { "text2vec-openbatch": { model: "local/glove-100d" } },
      vectorIndexType: "hnsw",
      vectorIndexConfig: { distance: "cosine" },
    });
    expect(await c.collections.exists("Question")).toBe(true);
    await expect(c.collections.create({ name: "Question" })).rejects.toThrow(/422 class name Question already exists/);
    expect((await c.collections.list()).map((x) => x.class)).toEqual(["Question"]);
    await c.collections.delete("Question");
    expect(await c.collections.exists("Question")).toBe(false);
  });

  it("query.nearText / nearVector through GraphQL Get, and data.get", async () => {
    const c = client();
    const q = await c.collections.create({ name: "Question", properties: [{ name: "question", dataType: "text" }, { name: "answer", dataType: "text" }, { name: "inCategory", dataType: "Category" }] });
    fake.graphqlAnswer = () => ({ data: { Get: { Question: [{ question: "q1", answer: "a1", _additional: { id: "id-1", distance: 0.12 } }, { question: "q2", answer: "a2", _additional: { id: "id-2", distance: 0.3 } }] } } });
    const hits = await q.query.nearText("biology", { limit: 2, where: { path: ["category"], operator: "Equal", valueText: "SCIENCE" } });
    expect(hits).toEqual([
      { uuid: "id-1", properties: { question: "q1", answer: "a1" }, distance: 0.12 },
      { uuid: "id-2", properties: { question: "q2", answer: "a2" }, distance: 0.3 },
    ]);
    expect(fake.graphql[0]).toBe(`{ Get { Question(nearText:{concepts:["biology"]}, limit:2, where:{path:["category"], operator:Equal, valueText:"SCIENCE"}) { question answer _additional { id distance } } } }`);
    await q.query.nearVector([0.5, -1], { limit: 3, returnProperties: ["question"], distance: 0.4 });
    expect(fake.graphql[1]).toBe(`{ Get { Question(nearVector:{vector:[0.5,-1], distance:0.4}, limit:3) { question _additional { id distance } } } }`);
    fake.graphqlAnswer = () => ({ data: { Get: { Question: null } }, errors: [{ message: "no module with name 'text2vec' present" }] });
    await expect(q.query.nearText(["x"], { limit: 1 })).rejects.toThrow(/no module with name/);
    expect(graphqlValue({ operator: "And", operands: [{ path: ["a"], operator: "GreaterThan", valueInt: 3 }, { path: ["b"], operator: "Like", valueText: 'x"y*' }] })).toBe(
      `{operator:And, operands:[{path:["a"], operator:GreaterThan, valueInt:3},{path:["b"], operator:Like, valueText:"x\\"y*"}]}`,
    );
    expect(() => graphqlValue({ operator: "Equal) { x }" })).toThrow(/invalid where operator/);

    const batch = q.batch.fixedSize();
    const id = await batch.add({ question: "q", answer: "a" }, { vector: [1, 2, 3] });
    await batch.close();
    expect(await q.data.get(id)).toEqual({ uuid: id, collection: "Question", properties: { question: "q", answer: "a" }, creationTimeUnix: 1, lastUpdateTimeUnix: 2 });
    expect((await q.data.get(id, { includeVector: true }))?.vector).toEqual([1, 2, 3]);
    expect(await q.data.get("00000000-0000-4000-8000-000000000000")).toBeNull();
  });

  describe("openbatch import", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "openbatch-import-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("streams a JSON array into a new class with a progress report; exit 0", async () => {
      const cli = spawnCli(["import", "Question", new URL("jeopardy_100.json", DATASETS).pathname, "--url", fake.url, "--batch", "fixed:20:2", "--vectorizer", "text2vec-openbatch"]);
      expect(await exited(cli)).toBe(0);
      expect(fake.classes.get("Question")).toMatchObject({ class: "Question", vectorizer: "text2vec-openbatch" });
      expect(fake.received.size).toBe(100);
      expect(fake.objectRequests.map((r) => r.size)).toEqual(Array(5).fill(20));
      const one = [...fake.objects.values()][0]!;
      expect(Object.keys(one.properties).sort()).toEqual(["Air_Date", "Answer", "Category", "Question", "Round", "Value"]);
      expect(cli.output()).toContain('Fields renamed to valid property names: "Air Date" → Air_Date');
      expect(cli.output()).toContain("Imported 100 of 100 objects into Question; 0 failed.");
      expect(cli.output()).toMatch(/importing|done: 100\/100/);
    });

    it("JSONL with --id-field and --vector-field; failures printed with their messages; exit 1", async () => {
      const file = join(dir, "items.jsonl");
      const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ key: `k${i}`, title: i === 4 ? 4 : `t${i}`, emb: [i, 1] }));
      lines.splice(10, 0, "", "{not json");
      await writeFile(file, lines.join("\n") + "\n");
      fake.classes.set("Item", { class: "Item" });
      fake.failItem = (o) => (typeof o.properties.title === "number" ? "invalid text property 'title' on class 'Item': not a string, but float64" : null);
      const cli = spawnCli(["import", "Item", file, "--url", fake.url, "--batch", "rate:60000", "--id-field", "key", "--vector-field", "emb", "--no-progress"]);
      expect(await exited(cli)).toBe(1);
      expect(fake.received.size).toBe(30);
      const o7 = fake.objects.get(uuid5("k7"))!;
      expect(o7).toEqual({ class: "Item", id: uuid5("k7"), properties: { title: "t7" }, vector: [7, 1] });
      expect(cli.output()).toContain(`${uuid5("k4")} {"title":4}: invalid text property 'title' on class 'Item': not a string, but float64`);
      expect(cli.output()).toMatch(/item 11: invalid JSON/);
      expect(cli.output()).toContain("Imported 29 of 31 objects into Item; 2 failed.");
    });

    it("exit 1 with the reason when the server is unreachable", async () => {
      const port = await freePort();
      const cli = spawnCli(["import", "Question", new URL("jeopardy_tiny.json", DATASETS).pathname, "--url", `http://127.0.0.1:${port}`, "--no-progress"]);
      expect(await exited(cli)).toBe(1);
      expect(cli.output()).toMatch(/ECONNREFUSED/);
    });
  });
});

describe("import helpers", () => {
  it("parses --batch", () => {
    expect(parseBatchSpec("dynamic")).toEqual({ kind: "dynamic" });
    expect(parseBatchSpec("fixed:200:4")).toEqual({ kind: "fixed", size: 200, concurrency: 4 });
    expect(parseBatchSpec("fixed")).toEqual({ kind: "fixed", size: 100, concurrency: 2 });
    expect(parseBatchSpec("rate:600")).toEqual({ kind: "rate", perMinute: 600 });
    expect(() => parseBatchSpec("rate")).toThrow();
    expect(() => parseBatchSpec("fixed:0")).toThrow();
  });

  it("field names become valid property names", () => {
    expect(["Air Date", "question", "id", "1st", "a-b c", "meta", "été"].map(propertyName)).toEqual(["Air_Date", "question", "id_", "_1st", "a_b_c", "meta_", "_t_"]);
  });

  it("uuid5 matches Python's generate_uuid5", () => {
    // python: str(uuid.uuid5(uuid.NAMESPACE_DNS, "hello"))
    expect(uuid5("hello")).toBe("9342d47a-1bab-5709-9869-c840b2eac501");
  });

  it("the JSON array scanner yields every element across chunk boundaries, whatever the strings hold", async () => {
    const dir = await mkdtemp(join(tmpdir(), "openbatch-scan-"));
    try {
      const items: unknown[] = [];
      for (let i = 0; i < 6000; i++) items.push({ i, s: `a]b}[{,"\\ é 😀 ${"x".repeat(i % 400)}`, nested: { a: [1, [2, { b: "]" }]] } }, `str]${i}`, i, null, true, [i, "]"]);
      const file = join(dir, "big.json");
      await writeFile(file, "\uFEFF [\n" + items.map((x) => JSON.stringify(x, null, i2(x))).join(" ,\n") + "\n]\n");
      const got: unknown[] = [];
      for await (const item of jsonArrayElements(file)) got.push("value" in item ? item.value : item);
      expect(got.length).toBe(items.length);
      expect(got).toEqual(items);
      const few = items.slice(0, 300);
      await writeFile(join(dir, "few.json"), JSON.stringify(few, null, 1));
      for (const chunk of [1, 7, 64]) expect((await collect(jsonArrayElements(join(dir, "few.json"), true, chunk))).map((x) => ("value" in x ? x.value : x))).toEqual(few);
      let n = 0;
      for await (const _ of jsonArrayElements(file, false)) n++;
      expect(n).toBe(items.length);
      await writeFile(file, "[]");
      expect((await collect(jsonArrayElements(file))).length).toBe(0);
      await writeFile(file, '[{"a":1},');
      await expect(collect(jsonArrayElements(file))).rejects.toThrow(/not closed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function i2(x: unknown): number {
  return typeof x === "object" && x !== null && !Array.isArray(x) && (x as { i: number }).i % 2 ? 2 : 0;
}

// Seed 004's flow on the real server: import the 1k Jeopardy questions with the CLI (dynamic batching), then nearText.
describe.skipIf(!existsSync(new URL("../src/api/weaviate", import.meta.url)))("seed 004 on the real server", () => {
  it("openbatch import Question jeopardy_1k.json, then nearText 'biology' limit 2", async () => {
    const { startServer, SHARED_CACHE_DIR } = await import("./support/harness.js");
    const server = await startServer({}, { cacheDir: SHARED_CACHE_DIR });
    try {
      const root = server.url.replace(/\/v1$/, "");
      const client = connect({ url: root });
      await client.collections.create({ name: "Question", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "local/glove-100d" } } });
      const cli = spawnCli(["import", "Question", new URL("jeopardy_1k.json", DATASETS).pathname, "--url", root, "--no-progress"]);
      expect(await exited(cli)).toBe(0);
      expect(cli.output()).toContain("Imported 1000 of 1000 objects into Question; 0 failed.");
      const hits = await client.collections.use("Question").query.nearText(["biology"], { limit: 2 });
      expect(hits).toHaveLength(2);
      for (const h of hits) {
        expect(h.uuid).toMatch(/^[0-9a-f-]{36}$/);
        expect(typeof h.distance).toBe("number");
        expect(h.properties).toHaveProperty("question"); // the server lower-cases the first letter, as Weaviate
      }
      expect(hits.some((h) => /SCIENCE|BIOLOGY|NATURE|ANIMAL|MEDIC|HEALTH/i.test(String(h.properties.category)))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
