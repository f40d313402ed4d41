import { GoogleGenAI, type BatchJob } from "google-genai-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { SHARED_CACHE_DIR, startServer, upstreamConfig, type TestServer } from "./support/harness.js";

const API_KEY = "gm2-test-key";
const ENDED = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// @google/genai 2.x calls the Gemini API under /v1beta (3.x, under /v1, is covered by gemini-dialect.test.ts).
describe("Gemini Batch Mode through @google/genai 2.x (default /v1beta)", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let base: string;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer({ ...upstreamConfig(upstream.url), apiKeys: [API_KEY] }, { cacheDir: SHARED_CACHE_DIR });
    base = server.url.replace(/\/v1$/, "");
    ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: base } });
  }, 120_000);
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  async function untilEnded(name: string): Promise<BatchJob> {
    for (let i = 0; i < 2400; i++) {
      const job = await ai.batches.get({ name });
      if (ENDED.includes(job.state!)) return job;
      await sleep(25);
    }
    throw new Error(`batch ${name} never ended`);
  }

  it("inline batch, file upload, list and per-request rpc codes, all under /v1beta with /v1beta URLs handed out", async () => {
    upstream.plan = (c) => (c.key === "refuse me" ? { kind: "status", status: 403, body: JSON.stringify({ error: { message: "forbidden" } }) } : { kind: "ok" });
    const created = await ai.batches.create({
      model: "gemini-2.5-flash",
      src: ["hello v2", "refuse me"].map((text, i) => ({ contents: [{ role: "user", parts: [{ text }] }], metadata: { i: String(i) } })),
    });
    const done = await untilEnded(created.name!);
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    const [ok, refused] = done.dest!.inlinedResponses!;
    expect(ok!.response!.candidates![0]!.content!.parts![0]!.text).toBe("echo: hello v2");
    expect(refused!.error).toMatchObject({ code: 7, message: "forbidden" });

    const file = await ai.files.upload({ file: new Blob(["{}\n"], { type: "application/jsonl" }), config: { displayName: "v2.jsonl" } });
    expect(file.uri).toBe(`${base}/v1beta/${file.name}`);
    expect(file.downloadUri).toBe(`${base}/download/v1beta/${file.name}:download?alt=media`);
    const files: string[] = [];
    for await (const f of await ai.files.list()) files.push(f.name!);
    expect(files).toContain(file.name);

    const jobs: BatchJob[] = [];
    for await (const j of await ai.batches.list()) jobs.push(j);
    const listed = jobs.find((j) => j.name === created.name)!;
    expect(listed.state).toBe("JOB_STATE_SUCCEEDED");
    expect(listed.dest?.fileName).toBe(`files/responses-${created.name!.slice("batches/".length)}`);
  });
});
