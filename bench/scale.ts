/**
 * Scale in one process: a 50,000-line, ~200 MB input uploaded, validated and run end to end by `openbatch serve`
 * (a child process, so its memory is its own) against an instant upstream. Reports the server's peak RSS (Linux
 * VmHWM; goal < 300 MB), its idle RSS before the upload for comparison, ingest MB/s (upload + create) and items/s.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { spawn } from "node:child_process";
import { exited, freePort, waitHealthy } from "../test/support/child.js";
import { FakeUpstream } from "../test/support/fake-upstream.js";
import type { BenchRow } from "./report.js";

const LINES = Number(process.env.OPENBATCH_BENCH_SCALE_LINES ?? 50_000);

async function peakRss(pid: number): Promise<number> {
  return Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

export async function benchScale(): Promise<BenchRow[]> {
  const dir = await mkdtemp(join(tmpdir(), "openbatch-scale-"));
  const upstream = await new FakeUpstream().start();
  const input = join(dir, "input.jsonl");
  // ~3.9 KB per line (~195 MB in all, under the 200 MB upload limit): a long prompt, as summarisation and extraction jobs send.
  const padding = "lorem ipsum dolor sit amet ".repeat(140);
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++) {
    lines.push(JSON.stringify({ custom_id: `s${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m", max_tokens: 16, messages: [{ role: "user", content: `${i} ${padding}` }] } }));
  }
  const text = lines.join("\n") + "\n";
  lines.length = 0;
  await writeFile(input, text);
  const bytes = Buffer.byteLength(text);
  await writeFile(join(dir, "config.json"), JSON.stringify({ providers: { up: { type: "openai-compatible", baseURL: upstream.url, maxConcurrency: 64 } }, models: { "*": "up" } }));
  const port = await freePort();
  // The compiled CLI (`npm run bench` builds first), as users run it: no TypeScript loader in the measured process.
  const server = spawn(process.execPath, [join(import.meta.dirname, "../dist/cli/main.js"), "serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")], {
    env: { ...process.env, OPENBATCH_LOG_LEVEL: "warn" },
    stdio: "ignore",
  });
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    const idle = await peakRss(server.pid!);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0, timeout: 600_000 });
    const t0 = performance.now();
    const file = await client.files.create({ file: createReadStream(input), purpose: "batch" });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const ingestS = (performance.now() - t0) / 1000;
    let done = batch;
    while (!["completed", "failed", "expired", "cancelled"].includes(done.status)) {
      await new Promise((r) => setTimeout(r, 250));
      done = await client.batches.retrieve(batch.id);
    }
    const runS = (performance.now() - t0) / 1000 - ingestS;
    const peak = await peakRss(server.pid!);
    if (done.request_counts?.completed !== LINES) throw new Error(`scale batch ended ${done.status} ${JSON.stringify(done.request_counts)}`);
    const mb = bytes / 1e6;
    return [
      { bench: "scale", case: `peak RSS of openbatch serve, ${LINES} lines / ${mb.toFixed(0)} MB uploaded, validated and run (goal < 300 MB)`, value: peak / 1048576, unit: "MB" },
      { bench: "scale", case: "idle RSS of the same server before the upload", value: idle / 1048576, unit: "MB" },
      { bench: "scale", case: "ingest: upload + create (validation included)", value: mb / ingestS, unit: "MB/s" },
      { bench: "scale", case: "run against an instant upstream, maxConcurrency 64", value: LINES / runS, unit: "items/s" },
    ];
  } finally {
    server.kill("SIGTERM");
    await exited(server);
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
