import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, uploadJsonl, waitFor } from "./support/harness.js";

const N = 400;
const keys = Array.from({ length: N }, (_, i) => `item ${i}`);

describe("kill -9 mid-batch and restart on the same data dir", () => {
  let upstream: FakeUpstream;
  let dir: string;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
    upstream.plan = () => ({ kind: "delay", ms: 30 });
    dir = await mkdtemp(join(tmpdir(), "openbatch-crash-"));
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ providers: { up: { type: "openai-compatible", baseURL: upstream.url, maxConcurrency: 8 } }, models: { "*": "up" }, retry: { baseDelayMs: 20, maxDelayMs: 200 } }),
    );
  });
  afterEach(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("the server: every custom_id exactly once across output and error files", async () => {
    const port = await freePort();
    const args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
    let server = spawnCli(args);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
      const file = await uploadJsonl(client, chatLines(keys));
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      await waitFor(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= N / 4);
      server.kill("SIGKILL");
      await exited(server);
      const callsBeforeRestart = upstream.calls.length;
      expect(callsBeforeRestart).toBeLessThan(N);

      server = spawnCli(args);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const done = await waitFor(client, batch.id);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
      const out = await readJsonl(client, done.output_file_id);
      const errors = await readJsonl(client, done.error_file_id);
      const ids = [...out, ...errors].map((l) => l.custom_id).sort();
      expect(ids).toEqual(keys.map((_, i) => `req-${i}`).sort());
      // Only calls in flight at the kill (8) or answered but not yet group-committed (at most 8 more) may repeat.
      const repeated = [...upstream.perKey.values()].filter((n) => n > 1).length;
      expect(repeated).toBeLessThanOrEqual(16);
      expect(upstream.perKey.size).toBe(N);
    } finally {
      server.kill("SIGKILL");
      await exited(server);
    }
  });

  it("openbatch run: resumes when run again, without resending finished items", async () => {
    const input = join(dir, "input.jsonl");
    await writeFile(input, chatLines(keys));
    const args = ["run", input, "-o", join(dir, "out.jsonl"), "-e", join(dir, "err.jsonl"), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
    const first = spawnCli(args);
    const deadline = Date.now() + 30_000;
    while (upstream.calls.length < N / 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    first.kill("SIGKILL");
    await exited(first);
    const callsBefore = upstream.calls.length;
    expect(callsBefore).toBeLessThan(N);

    const second = spawnCli(args);
    expect(await exited(second)).toBe(0);
    expect(second.output()).toContain("Resuming batch");
    const out = (await readFile(join(dir, "out.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const err = (await readFile(join(dir, "err.jsonl"), "utf8")).split("\n").filter(Boolean);
    expect(err).toEqual([]);
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    expect(out.every((l) => l.response.status_code === 200)).toBe(true);
    // Finished items are never sent again; only the few in flight at the kill may be.
    expect(upstream.calls.length).toBeLessThanOrEqual(N + 16);
  });

  it("openbatch run: a rejected file exits 1 and names the bad line", async () => {
    const input = join(dir, "bad.jsonl");
    await writeFile(input, chatLines(["a"]) + "{not json\n");
    const run = spawnCli(["run", input, "-o", join(dir, "o.jsonl"), "-e", join(dir, "e.jsonl"), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")]);
    expect(await exited(run)).toBe(1);
    expect(run.output()).toContain("line 2: [invalid_json_line]");
  });
});
