import pino from "pino";
import { ApiKeyAuth } from "../api/auth.js";
import { withRedaction } from "../api/log-redaction.js";
import { buildServer } from "../api/server.js";
import { startWeaviateGrpc } from "../api/weaviate-grpc/server.js";
import { Engine } from "../engine/engine.js";
import { loadConfig } from "./config-file.js";

/** Options of `openbatch serve`. */
export interface ServeOptions {
  port: number;
  host: string;
  dataDir: string;
  config?: string;
  /** Port of the Weaviate gRPC API (the official Weaviate clients need it); 0 or absent: off. */
  grpcPort?: number;
  /** A `postgres://` URL (flag or OPENBATCH_DATABASE_URL): batches and files in PostgreSQL, shared with other nodes. */
  databaseUrl?: string | null;
  /** Run batches here too (default true); false: the API only, workers run them (`--no-dispatch`). */
  dispatch?: boolean;
}

/** `openbatch serve`: the HTTP server and the dispatcher in one process, until SIGINT/SIGTERM. */
export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const log = pino(withRedaction({ level: process.env.OPENBATCH_LOG_LEVEL ?? "info" }));
  const engine = await Engine.open({ dataDir: options.dataDir, config, log, databaseUrl: options.databaseUrl, dispatch: options.dispatch });
  await engine.start();
  const app = await buildServer({
    engine,
    apiKeys: config.apiKeys,
    adminKeys: config.adminKeys,
    collectionGrants: config.collections.grants,
    maxFileBytes: config.limits.maxFileBytes,
    geminiUploads: { maxPerCaller: config.limits.uploadSessionsPerKey, maxTotal: config.limits.uploadSessionsTotal, ttlMs: config.limits.uploadSessionIdleMs },
    logger: { level: process.env.OPENBATCH_LOG_LEVEL ?? "warn" },
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    publicURL: config.publicURL,
    clientTimeouts: config.clientTimeouts,
    // Weaviate's switch: AUTOSCHEMA_ENABLED=false turns auto-schema off.
    autoSchema: (process.env.OPENBATCH_AUTOSCHEMA ?? process.env.AUTOSCHEMA_ENABLED ?? "true").toLowerCase() !== "false",
  });
  if (config.apiKeys.length === 0) {
    log.warn({ host: options.host }, "auth is off: no OPENBATCH_API_KEYS or config apiKeys, so any token is accepted");
  }
  const address = await app.listen({ port: options.port, host: options.host });
  log.info({ address, dataDir: options.dataDir }, "openbatch is serving the OpenAI Files + Batches API at " + address + "/v1");
  // The gRPC API only serves Weaviate's own clients: a taken port costs that API, not the whole server.
  const grpc = options.grpcPort
    ? await startWeaviateGrpc({ collections: app.collections, port: options.grpcPort, host: options.host, auth: new ApiKeyAuth(config.apiKeys) }).catch((err: Error) => {
        log.warn({ port: options.grpcPort, err: err.message }, "Weaviate gRPC API not started (choose another with --grpc-port, or 0 to turn it off)");
        return null;
      })
    : null;
  if (grpc) log.info({ port: grpc.port }, `openbatch is serving the Weaviate gRPC API on ${options.host}:${grpc.port}`);
  const shutdown = async () => {
    log.info({}, "shutting down");
    await grpc?.close();
    await app.close();
    await engine.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}
