import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { Engine } from "../engine/engine.js";
import type { Config } from "../core/config.js";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { invalidRequest, notFound, OpenBatchError } from "../core/errors.js";
import { MAX_NESTING_DEPTH, nestsDeeperThan } from "../core/nesting.js";
import { anthropicBatchesRoutes } from "./anthropic/batches.js";
import { renderAnthropicError } from "./anthropic/errors.js";
import { ApiKeyAuth } from "./auth.js";
import { translateFrameworkError } from "./framework-errors.js";
import { withRedaction } from "./log-redaction.js";
import { parsePublicURL } from "./public-url.js";
import { geminiBatchesRoutes } from "./gemini/batches.js";
import { renderGeminiError } from "./gemini/errors.js";
import { geminiFilesRoutes, type UploadSessionOptions } from "./gemini/files.js";
import { GEMINI_PATH, geminiRewriteUrl } from "./gemini/routing.js";
import { grokBatchesRoutes } from "./grok/batches.js";
import { openAIBatchesRoutes } from "./openai/batches.js";
import { renderOpenAIError } from "./openai/errors.js";
import { openAIFilesRoutes } from "./openai/files.js";
import { openAIInferenceRoutes } from "./openai/inference.js";
import { webhookDeliveriesRoutes } from "./openai/webhook-deliveries.js";
import type { CollectionService } from "../collections/collection-service.js";
import { openCollections } from "../collections/open.js";
import { collectionAccessOf } from "./weaviate/access.js";
import { weaviateBatchRoutes } from "./weaviate/batch.js";
import { renderWeaviateError, WEAVIATE_PATH } from "./weaviate/errors.js";
import { weaviateGraphqlRoutes } from "./weaviate/graphql.js";
import { weaviateMetaRoutes } from "./weaviate/meta.js";
import { weaviateObjectsRoutes } from "./weaviate/objects.js";
import { weaviateSchemaRoutes } from "./weaviate/schema.js";
import { weaviateTenantRoutes } from "./weaviate/tenants.js";
import { dashboardRoutes, isPublicDashboardPath } from "../web/dashboard.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The Weaviate-style collections the server serves (the gRPC endpoint serves them too). */
    collections: CollectionService;
  }
  interface FastifyRequest {
    /** Owner fingerprint of the caller's OpenBatch key; null when auth is off. */
    caller: string | null;
  }
}

/** Server settings. */
export interface ServerOptions {
  engine: Engine;
  /** OpenBatch API keys; empty = auth off. */
  apiKeys: readonly string[];
  /** Largest upload, bytes. */
  maxFileBytes: number;
  /** pino logger options, or false for none. */
  logger?: boolean | object;
  /** Data dir of the collections (the engine's): their tables go in its openbatch.db, vector indexes in vector-index/. Absent: in memory. */
  dataDir?: string;
  /** A `postgres://` URL: the collections live in that database, shared with every API server of it (else in `dataDir`). */
  databaseUrl?: string | null;
  /** Weaviate auto-schema: unknown classes and properties are created on import (default true). */
  autoSchema?: boolean;
  /** The URL clients reach this server at (config `publicURL`), used in URLs we hand out; absent: the address served. */
  publicURL?: string;
  /** Gemini resumable upload sessions: caps per caller key and in total, idle expiry (gemini/files.ts; absent: defaults). */
  geminiUploads?: UploadSessionOptions;
  /** Admin keys (config `adminKeys`): with auth on, only they read `/metrics`; they reach every collection. */
  adminKeys?: readonly string[];
  /** Config `collections.grants`: actions on collections given to keys other than their creators'. */
  collectionGrants?: Config["collections"]["grants"];
  /** How slowly a client may send a request before its connection is freed (slowloris); absent fields: the defaults. */
  clientTimeouts?: Partial<ClientTimeouts>;
}

/** How long a client may take to send us a request, ms. None of them limits the time we take to answer. */
export interface ClientTimeouts {
  /** Every request header received within this from the request's first byte (Node `headersTimeout`), else 408. */
  headersMs: number;
  /** The whole request, headers and body, received within this (Node `requestTimeout`), else 408. */
  requestMs: number;
  /** No byte for this long while a request is still being received closes the connection. */
  idleMs: number;
  /** An idle keep-alive connection is closed after this long without a new request. */
  keepAliveMs: number;
}

/**
 * Defaults: headers 30 s; a whole request 1 h (a 200 MB upload, the default file limit, needs ≥ 0.45 Mbit/s);
 * 60 s without a byte mid-request; keep-alive 72 s (Fastify's default, above the 60 s of common load balancers).
 */
export const CLIENT_TIMEOUT_DEFAULTS: Readonly<ClientTimeouts> = { headersMs: 30_000, requestMs: 3_600_000, idleMs: 60_000, keepAliveMs: 72_000 };

/** Fills in and checks client timeouts. @throws RangeError for a non-positive value or headersMs > requestMs. */
function clientTimeoutsOf(given: Partial<ClientTimeouts> = {}): ClientTimeouts {
  const t = { ...CLIENT_TIMEOUT_DEFAULTS, ...given };
  for (const [name, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`clientTimeouts.${name} must be a positive whole number of ms, got ${v}`);
  }
  if (t.headersMs > t.requestMs) throw new RangeError(`clientTimeouts.headersMs (${t.headersMs}) must not exceed requestMs (${t.requestMs})`);
  return t;
}

/** Errors are rendered in the shape of the dialect whose path was called (`req`: for Anthropic's `request_id`). */
function renderErrorFor(url: string, err: unknown, req?: FastifyRequest): { status: number; body: unknown } {
  if (url.startsWith("/v1/messages")) return renderAnthropicError(err, req);
  if (WEAVIATE_PATH.test(url)) return renderWeaviateError(err);
  if (GEMINI_PATH.test(url)) return renderGeminiError(err);
  return renderOpenAIError(err);
}

const tooDeep = () => invalidRequest(`The request body nests objects or lists more than ${MAX_NESTING_DEPTH} levels deep.`, null, "nesting_too_deep");

/** The URL of the request each connection is reading, so an HTTP-level error on it is answered in its dialect. */
const urlOnSocket = new WeakMap<Socket, string>();

/**
 * Answers a client error Node raises below Fastify (HTTP parse errors, header overflow, timeouts) as the called
 * dialect's JSON error with status 400, 408 or 431, then closes the connection: after a parse error its bytes are
 * not in step with any response.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, message] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "The request was not received in time."]
    : err.code === "HPE_HEADER_OVERFLOW" ? [431, "The request headers are larger than the server accepts."]
    : [400, `The request is not well-formed HTTP (${err.code ?? "parse error"}).`];
  const rendered = renderErrorFor(urlOnSocket.get(socket) ?? "/", new OpenBatchError("invalid_request", message, { code: "malformed_http" }));
  const body = JSON.stringify(rendered.body);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** Routes that answer without a key. */
const PUBLIC_ROUTES = new Set(["/healthz", "/v1/.well-known/ready", "/v1/.well-known/live", "/v1/.well-known/openid-configuration"]);

/**
 * Builds the HTTP server: auth, every dialect — OpenAI (Files, Batches, synchronous inference), seed 001, Anthropic,
 * Gemini, Weaviate-style collections — `GET /healthz`, `GET /metrics`, and errors in the called dialect's shape.
 * Does not listen; the caller does. Closing it closes the collections (the engine is the caller's to close).
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  // forceCloseConnections: a client may still hold a keep-alive socket when we stop; do not wait 72 s for it.
  const logger = options.logger === true ? withRedaction({}) : options.logger ? withRedaction(options.logger) : false;
  const timeouts = clientTimeoutsOf(options.clientTimeouts);
  const app = Fastify({
    logger,
    bodyLimit: 32 * 1024 * 1024,
    forceCloseConnections: true,
    // Slow clients (slowloris): headers and the whole request must arrive in time. Node checks these every
    // connectionsCheckingInterval (default 30 s), so check often enough for the bound to mean what it says.
    keepAliveTimeout: timeouts.keepAliveMs,
    requestTimeout: timeouts.requestMs,
    http: { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: Math.min(1000, Math.max(50, timeouts.headersMs >> 2)) },
    // No Fastify connectionTimeout: it would also cut a synchronous call waiting minutes on the upstream. The idle
    // bound applies only while a request is being received (onRequest hook below).
    // Gemini under /v1 too (@google/genai 3.x calls it): a Gemini caller's /v1/... is routed to the /v1beta routes,
    // so it never lands on OpenAI's /v1/files or /v1/batches (see gemini/routing.ts). Every other URL is unchanged.
    rewriteUrl: geminiRewriteUrl,
    // Ids are path parameters; find-my-way answers its own 414 past 100 characters. A long id is just an unknown one.
    routerOptions: { maxParamLength: 2048 },
    // Malformed HTTP (bad chunked encoding, header overflow, timeouts) answered in the dialect of the request it broke.
    clientErrorHandler: (err, socket) => answerClientError(err, socket),
    // A URL Fastify cannot decode never reaches the error handler; answer it in the dialect's shape too.
    frameworkErrors: (err, req, reply) => {
      const { status, body } = renderErrorFor(req.url, translateFrameworkError(err), req);
      // This hook's reply type is generic over route schemas we do not declare; the body is the dialect's own.
      return reply.status(status as never).send(body as never);
    },
  });
  const auth = new ApiKeyAuth(options.apiKeys, options.adminKeys);
  app.decorateRequest("caller", null);
  app.decorate("publicOrigin", options.publicURL ? parsePublicURL(options.publicURL) : null);
  // Clients send `content-type: application/json` with no body on cancel; treat that as `{}` rather than a 400.
  const parseJson = app.getDefaultJsonParser("error", "ignore");
  // Deep nesting is refused before parsing: JSON.parse copes, but recursive code after it (validation, translation,
  // filters) would overflow the stack and answer 500.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) =>
    body === "" ? done(null, {}) : nestsDeeperThan(body as string) ? done(tooDeep(), undefined) : parseJson(req, body as string, done),
  );

  app.addHook("onRequest", async (req, reply) => {
    urlOnSocket.set(req.raw.socket, req.url);
    // A body to receive: a socket silent for idleMs meanwhile is destroyed by Node's own timeout handler. Once the
    // body is in, no idle bound while we answer; after an answer Node sets the keep-alive timeout, left alone here.
    const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
    // (`app.inject` requests have a stand-in socket without timers: nothing to bound there.)
    if (hasBody && !req.raw.complete && typeof req.raw.socket?.setTimeout === "function") {
      const socket = req.raw.socket;
      socket.setTimeout(timeouts.idleMs);
      req.raw.once("end", () => {
        if (!reply.raw.writableEnded) socket.setTimeout(0);
      });
    }
    const path = req.url.split("?")[0]!;
    // The dashboard page loads without a key (its API does not): web/dashboard.ts names the public paths.
    if (PUBLIC_ROUTES.has(path) || isPublicDashboardPath(path)) return;
    req.caller = auth.authenticate(req.headers);
  });

  app.setErrorHandler((err, req, reply) => {
    // Fastify's own errors (bad JSON, media type, body size) become ours, so no dialect shows an FST_ code.
    const { status, body } = renderErrorFor(req.url, translateFrameworkError(err, { bodyLimit: req.routeOptions?.bodyLimit }), req);
    if (status >= 500) req.log.error({ err }, "request failed");
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const { status, body } = renderErrorFor(req.url, notFound(`Unknown route ${req.method} ${req.originalUrl.split("?")[0]}`), req);
    return reply.status(status).send(body);
  });

  // Uploads are streamed to disk by the Files route, which enforces the size limit itself.
  await app.register(multipart, { limits: { fileSize: options.maxFileBytes + 1, files: 1, fields: 10 } });
  app.get("/healthz", async () => ({ status: "ok" }));
  // Metrics show every tenant's counts: with auth on they are an admin key's (config adminKeys) only.
  app.get("/metrics", async (req, reply) => {
    if (!auth.isAdmin(req.caller)) throw new OpenBatchError("permission", "GET /metrics needs an admin key (config adminKeys): it shows every tenant's batches.", { code: "admin_key_required" });
    return reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8").send(await options.engine.metrics.render());
  });
  await app.register(openAIFilesRoutes, { engine: options.engine });
  await app.register(openAIBatchesRoutes, { engine: options.engine });
  await app.register(webhookDeliveriesRoutes, { engine: options.engine });
  await app.register(grokBatchesRoutes, { engine: options.engine });
  await app.register(anthropicBatchesRoutes, { engine: options.engine });
  await app.register(geminiBatchesRoutes, { engine: options.engine });
  await app.register(geminiFilesRoutes, { engine: options.engine, uploads: options.geminiUploads });
  await app.register(openAIInferenceRoutes, { engine: options.engine });
  // Weaviate-style collections: schema, batch import, objects, GraphQL search, meta and nodes.
  const access = collectionAccessOf(options.apiKeys, options.adminKeys ?? [], options.collectionGrants ?? []);
  const collections = await openCollections({ embedder: options.engine, dataDir: options.dataDir, databaseUrl: options.databaseUrl, autoSchema: options.autoSchema, access, log: app.log });
  app.decorate("collections", collections);
  // On PostgreSQL other API servers write the collections too: each Weaviate request first catches up with them.
  if (options.databaseUrl) {
    app.addHook("preHandler", async (req) => {
      if (/^\/v1\/(schema|objects|batch\/(objects|references)|graphql|nodes|cluster)(\/|\?|$)/.test(req.url)) await collections.sync();
    });
  }
  app.addHook("onClose", () => collections.close());
  await app.register(weaviateSchemaRoutes, { collections });
  await app.register(weaviateTenantRoutes, { collections });
  await app.register(weaviateBatchRoutes, { collections });
  await app.register(weaviateObjectsRoutes, { collections });
  await app.register(weaviateGraphqlRoutes, { collections });
  await app.register(weaviateMetaRoutes, { collections, models: () => options.engine.listModels() });
  await app.register(dashboardRoutes, { engine: options.engine, collections, apiKeys: options.apiKeys, adminKeys: options.adminKeys });
  return app;
}
