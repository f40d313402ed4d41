import { createServer } from "node:http";
import pino from "pino";
import { withRedaction } from "../api/log-redaction.js";
import { Engine } from "../engine/engine.js";
import { loadConfig } from "./config-file.js";

/** Options of `openbatch worker`. */
export interface WorkerOptions {
  /** The shared PostgreSQL database (`postgres://…`). */
  databaseUrl: string;
  /** Config file: the providers (and their budgets) this worker has. */
  config?: string;
  /** Local caches (model files). */
  dataDir: string;
  /** Port for Prometheus metrics (`GET /metrics`) and `GET /healthz`; absent: none. */
  metricsPort?: number;
  /** Interface the metrics port binds. */
  host?: string;
}

/**
 * `openbatch worker`: a dispatcher with no API, on a shared PostgreSQL database, until SIGINT/SIGTERM. It claims only
 * items of batches whose provider its config has, spends its share of each provider's budgets, and on shutdown returns
 * its leases to the queue at once; killed, its leases return when its heartbeat stops.
 * @throws Error when the database cannot be reached or the metrics port is taken.
 */
export async function worker(options: WorkerOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const log = pino(withRedaction({ level: process.env.OPENBATCH_LOG_LEVEL ?? "info" }));
  const engine = await Engine.open({ dataDir: options.dataDir, config, log, databaseUrl: options.databaseUrl });
  await engine.start();
  const metrics =
    options.metricsPort === undefined
      ? null
      : createServer((req, res) => {
          if (req.url === "/metrics") {
            engine.metrics.registry
              .metrics()
              .then((text) => res.writeHead(200, { "content-type": engine.metrics.registry.contentType }).end(text))
              .catch((err: Error) => res.writeHead(500).end(err.message));
          } else if (req.url === "/healthz") {
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
          } else {
            res.writeHead(404).end();
          }
        });
  if (metrics) {
    await new Promise<void>((resolve, reject) => metrics.once("error", reject).listen(options.metricsPort, options.host ?? "127.0.0.1", resolve));
    log.info({ port: options.metricsPort }, "openbatch worker metrics at /metrics");
  }
  log.info({ providers: engine.providers.names() }, "openbatch worker is running batches from the shared database");
  const shutdown = async () => {
    log.info({}, "worker shutting down");
    metrics?.close();
    await engine.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}
