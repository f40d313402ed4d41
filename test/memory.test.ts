import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";

/** Peak resident set size of a process, bytes (Linux /proc). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe("memory stays flat in the size of the work", () => {
  let upstream: FakeUpstream;
  let dir: string;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-mem-"));
  });
  afterAll(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a 50,000-line, ~100 MB input uploads and validates with peak RSS growth below the file size", async () => {
    const padding = "x".repeat(2000);
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      lines.push(JSON.stringify({ custom_id: `r${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: `${i} ${padding}` }] } }));
    }
    const input = join(dir, "big.jsonl");
    await writeFile(input, lines.join("\n") + "\n");
    const inputBytes = Buffer.byteLength(lines.join("\n")) + 1;
    lines.length = 0;
    expect(inputBytes).toBeGreaterThan(100_000_000);

    await writeFile(join(dir, "config.json"), JSON.stringify({ providers: { up: { type: "openai-compatible", baseURL: upstream.url } }, models: { "*": "up" } }));
    upstream.plan = () => ({ kind: "delay", ms: 1000 });
    const port = await freePort();
    // A capped V8 heap: holding the input whole would crash the server instead of passing by luck of GC timing.
    const server = spawnCli(["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")], {
      NODE_OPTIONS: "--max-old-space-size=128",
    });
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const idle = await peakRss(server.pid!);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0, timeout: 300_000 });
      const file = await client.files.create({ file: createReadStream(input), purpose: "batch" });
      expect(file.bytes).toBe(inputBytes);
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      expect(batch.request_counts?.total).toBe(50_000);
      await client.batches.cancel(batch.id);
      const peak = await peakRss(server.pid!);
      // Streaming in and validating line by line: growth (mostly garbage V8 has not collected yet) stays below the
      // input size; holding the file whole, as a Buffer or a string, would not.
      expect(peak - idle).toBeLessThan(inputBytes * 0.8);
    } finally {
      server.kill("SIGKILL");
      await exited(server);
    }
  });
});
