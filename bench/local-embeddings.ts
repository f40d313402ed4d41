/**
 * Local embeddings: items/s through a whole batch (upload → validate → dispatch → output file) vs calling the
 * provider in-process one request at a time, on the same 4,000 real sentences. Reports the ratio.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { LocalEmbeddingsProvider } from "../src/providers/local/local-embeddings.js";
import { datasetsDir, type BenchRow } from "./report.js";

export async function benchLocalEmbeddings(cacheDir: string): Promise<BenchRow[]> {
  const datasets = datasetsDir();
  const questions = (JSON.parse(readFileSync(join(datasets, "jeopardy/jeopardy_1k.json"), "utf8")) as { Question: string }[]).map((q) => q.Question);
  const reviews = ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].flatMap((f) =>
    readFileSync(join(datasets, "sentiment-labelled-sentences", f), "utf8").split("\n").filter(Boolean).map((l) => l.split("\t")[0]!),
  );
  const texts = [...questions, ...reviews];
  const bodies = texts.map((input) => JSON.stringify({ model: "local/glove-100d", input }));

  // Direct: the provider in-process, one request per text.
  const provider = new LocalEmbeddingsProvider("local", cacheDir);
  await provider.load();
  let t = performance.now();
  for (const body of bodies) await provider.send({ endpoint: "/v1/embeddings", model: "local/glove-100d", body });
  const directS = (performance.now() - t) / 1000;

  // Through a batch on the engine (in-process, SQLite, output file written).
  const dataDir = await mkdtemp(join(tmpdir(), "openbatch-bench-"));
  const engine = await Engine.open({ dataDir, cacheDir, config: parseConfig({}), pollMs: 20 });
  await engine.start();
  const jsonl = bodies.map((body, i) => `{"custom_id":"e${i}","method":"POST","url":"/v1/embeddings","body":${body}}`).join("\n");
  t = performance.now();
  const staged = await engine.files.stageUpload(Readable.from([jsonl]));
  const file = await engine.files.commitUpload(null, staged, { filename: "bench.jsonl", purpose: "batch" });
  const created = await engine.createBatch(null, { input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h", dialect: "openai" });
  let batch = created;
  while (!Engine.isDone(batch)) {
    await new Promise((r) => setTimeout(r, 10));
    batch = await engine.getBatch(null, created.id);
  }
  const batchS = (performance.now() - t) / 1000;
  if (batch.request_counts.completed !== texts.length) throw new Error(`bench batch ended ${batch.status} with ${JSON.stringify(batch.request_counts)}`);
  await engine.close();
  await rm(dataDir, { recursive: true, force: true });

  return [
    { bench: "local-embeddings", case: `direct provider, ${texts.length} texts`, value: texts.length / directS, unit: "items/s" },
    { bench: "local-embeddings", case: `through a batch, ${texts.length} texts`, value: texts.length / batchS, unit: "items/s", ratio: directS / batchS, ratioOf: "batch ÷ direct" },
  ];
}
