#!/usr/bin/env node
import { Command } from "commander";
import { estimate } from "./estimate.js";
import { importFile } from "./import.js";
import { migrate } from "./migrate.js";
import { run } from "./run.js";
import { serve } from "./serve.js";
import { worker } from "./worker.js";
import { resolveDatabaseUrl } from "../store/open.js";
import { watch } from "./watch.js";

const program = new Command("openbatch").description("Self-hosted batch engine for AI workloads.");

program
  .command("serve")
  .description("Serve the OpenAI Files + Batches API and run batches")
  .option("-p, --port <port>", "port to listen on", (v) => Number(v), 8080)
  .option("--host <host>", "interface to bind", "127.0.0.1")
  .option("--data-dir <dir>", "where the database and files live", "./openbatch-data")
  .option("-c, --config <file>", "config file (JSON)")
  .option("--grpc-port <port>", "port of the Weaviate gRPC API (0 disables it)", (v) => Number(v), 50051)
  .option("--database-url <url>", "PostgreSQL URL shared by many servers and workers (default: $OPENBATCH_DATABASE_URL; none: the data dir's SQLite)")
  .option("--no-dispatch", "serve the API only; workers (openbatch worker) run the batches")
  .action(async (opts) => {
    await serve({
      port: opts.port,
      host: opts.host,
      dataDir: opts.dataDir,
      config: opts.config,
      grpcPort: opts.grpcPort,
      databaseUrl: resolveDatabaseUrl(opts.databaseUrl),
      dispatch: opts.dispatch !== false,
    });
  });

program
  .command("worker")
  .description("Run batches from a shared PostgreSQL database (no API); start as many as you like, on any machines")
  .option("--database-url <url>", "PostgreSQL URL (default: $OPENBATCH_DATABASE_URL)")
  .option("-c, --config <file>", "config file (JSON): the providers this worker has")
  .option("--data-dir <dir>", "local caches (model files)", "./openbatch-worker")
  .option("--metrics-port <port>", "serve Prometheus metrics on this port (GET /metrics)", (v) => Number(v))
  .option("--host <host>", "interface the metrics port binds", "127.0.0.1")
  .action(async (opts) => {
    const databaseUrl = resolveDatabaseUrl(opts.databaseUrl);
    if (!databaseUrl) throw new Error("openbatch worker needs --database-url postgres://… (or OPENBATCH_DATABASE_URL).");
    await worker({ databaseUrl, config: opts.config, dataDir: opts.dataDir, metricsPort: opts.metricsPort, host: opts.host });
  });

program
  .command("migrate")
  .description("Copy an embedded data dir (SQLite and files) into an empty PostgreSQL database; stop its server first")
  .requiredOption("--from <dir>", "the data dir to copy")
  .requiredOption("--to <url>", "postgres:// URL of an empty database")
  .action(async (opts) => {
    const report = await migrate(opts.from, opts.to, (line) => process.stderr.write(line + "\n"));
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  });

program
  .command("run <input>")
  .description("Run a JSONL batch file in-process and write the results (resumes when run again)")
  .requiredOption("-o, --output <file>", "output JSONL (successful requests)")
  .requiredOption("-e, --errors <file>", "error JSONL (failed requests)")
  .option("-c, --config <file>", "config file (JSON)")
  .option("--data-dir <dir>", "where the database and files live", "./openbatch-data")
  .option("--completion-window <duration>", "completion window, e.g. 24h or 90s", "24h")
  .option("--no-progress", "do not report progress")
  .action(async (input, opts) => {
    process.exitCode = await run(input, {
      output: opts.output,
      errors: opts.errors,
      dataDir: opts.dataDir,
      config: opts.config,
      completionWindow: opts.completionWindow,
      progress: opts.progress,
    });
  });

program
  .command("watch <batch_id>")
  .description("Follow a batch on a running server with a progress bar (rate, ETA) until it ends")
  .option("--url <url>", "server root", "http://127.0.0.1:8080")
  .option("--api-key <key>", "OpenBatch API key (default: $OPENBATCH_API_KEY)")
  .option("--interval <ms>", "poll interval", (v) => Number(v), 1000)
  .action(async (batchId, opts) => {
    process.exitCode = await watch(batchId, { url: opts.url, apiKey: opts.apiKey ?? process.env.OPENBATCH_API_KEY, intervalMs: opts.interval });
  });

program
  .command("estimate <input>")
  .description("Count requests and tokens of a JSONL batch file, price it regular vs batch, and recommend a split")
  .option("-m, --model <model>", "model to price (default: the file's)")
  .option("-c, --config <file>", "config file with a `prices` table")
  .option("--json", "print JSON")
  .action(async (input, opts) => {
    await estimate(input, { model: opts.model, config: opts.config, json: opts.json === true });
  });

program
  .command("retry <batch_id>")
  .description("Create a new batch from the failed, expired and cancelled requests of an ended batch on a server")
  .option("--url <url>", "server root", "http://127.0.0.1:8080")
  .option("--api-key <key>", "OpenBatch API key (default: $OPENBATCH_API_KEY)")
  .action(async (batchId, opts) => {
    const apiKey = opts.apiKey ?? process.env.OPENBATCH_API_KEY;
    const res = await fetch(`${opts.url.replace(/\/+$/, "")}/v1/batches/${encodeURIComponent(batchId)}/retry`, {
      method: "POST",
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    });
    const body = (await res.json()) as { id?: string; request_counts?: { total: number }; error?: { message: string } };
    if (!res.ok) {
      process.stderr.write(`openbatch retry: ${res.status} ${body.error?.message ?? ""}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`${body.id}\n`);
    process.stderr.write(`Retrying ${body.request_counts?.total} requests of ${batchId} as batch ${body.id}.\n`);
  });

program
  .command("import <class> <file>")
  .description("Import a JSON array or JSONL file of objects into a collection (Weaviate batch API) with a progress bar")
  .option("--url <url>", "server root", "http://127.0.0.1:8080")
  .option("--api-key <key>", "API key (default: $OPENBATCH_API_KEY)")
  .option("--batch <mode>", "dynamic | fixed:<size>:<concurrency> | rate:<objectsPerMinute>", "dynamic")
  .option("--vector-field <name>", "field holding each object's vector")
  .option("--id-field <name>", "field holding each object's id (a UUID, or hashed into a UUIDv5)")
  .option("--vectorizer <module>", "vectorizer of the class if it has to be created, e.g. text2vec-openbatch")
  .option("--no-progress", "do not report progress")
  .action(async (cls, file, opts) => {
    process.exitCode = await importFile(cls, file, {
      url: opts.url,
      apiKey: opts.apiKey ?? process.env.OPENBATCH_API_KEY,
      batch: opts.batch,
      vectorField: opts.vectorField,
      idField: opts.idField,
      vectorizer: opts.vectorizer,
      progress: opts.progress,
    });
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`openbatch: ${err.message}\n`);
  process.exit(1);
});
