import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ItemState } from "../core/batch.js";
import { invalidRequest, notFound, OpenBatchError, type ErrorKind } from "../core/errors.js";
import type { CollectionService } from "../collections/collection-service.js";
import { CollectionError } from "../collections/errors.js";
import type { Engine } from "../engine/engine.js";
import { ApiKeyAuth } from "../api/auth.js";
import { batchCounts, checkFile, errorGroups, filterOf, listRows, rowOf, searchItems, timelineOf } from "./insights.js";
import { LiveSampler, type Tick } from "./sampler.js";

/** Where the built page lives: `dist/dashboard/` at the package root (scripts/build-dashboard.mjs writes it). */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

/** Settings of the dashboard routes. */
export interface DashboardOptions {
  engine: Engine;
  collections: CollectionService;
  /** OpenBatch API keys and admin keys, as the server's auth has them (empty: auth off). */
  apiKeys: readonly string[];
  adminKeys?: readonly string[];
  /** How often batches are re-read and live pages told, ms (default 1000). */
  tickMs?: number;
  /** The built page (app.js, app.css); default DEFAULT_ASSETS_DIR. */
  assetsDir?: string;
}

/**
 * Paths that answer without a key: the page itself (HTML, script, styles) and whether auth is on, so the page can ask
 * for a key. Everything under /dashboard/api/ else needs one, exactly as the other routes.
 */
export function isPublicDashboardPath(path: string): boolean {
  return path === "/dashboard" || path === "/dashboard/" || path.startsWith("/dashboard/assets/") || path === "/dashboard/api/mode";
}

const ASSETS: Record<string, string> = {
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

/** Nothing is fetched from elsewhere: the page runs offline, and a script injected by data could not call out. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const ITEM_STATES: readonly ItemState[] = ["queued", "in_flight", "succeeded", "failed", "expired", "cancelled"];

function page(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OpenBatch</title>
<link rel="icon" href="/dashboard/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/assets/app.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="/dashboard/assets/app.js"></script>
</body>
</html>
`;
}

const limitOf = (v: unknown, dflt: number, max: number): number => {
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalidRequest(`limit must be a whole number from 1 to ${max}.`, "limit");
  return n;
};

/** Collections errors carry Weaviate's statuses; the dashboard API answers in OpenAI's error shape. */
function collectionsCall<T>(p: () => Promise<T> | T): Promise<T> {
  return Promise.resolve()
    .then(p)
    .catch((err) => {
      if (!(err instanceof CollectionError)) throw err;
      const kind: ErrorKind = err.status === 403 ? "permission" : err.status === 404 ? "not_found" : err.status === 401 ? "authentication" : "invalid_request";
      throw new OpenBatchError(kind, err.message, { code: `collections_${err.status}` });
    });
}

/**
 * The dashboard at `/dashboard`: the page (public), a JSON API under `/dashboard/api/` and live updates as server-sent
 * events at `/dashboard/api/stream`. The API reads through engine operations with the caller of the request, so with
 * API keys on a key sees only its own batches and files; provider panels, vendor job counts and all-tenant numbers
 * are shown to admin keys only (as `/metrics`), and provider keys never leave the server.
 */
export async function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { engine, collections } = opts;
  const auth = new ApiKeyAuth(opts.apiKeys, opts.adminKeys ?? []);
  const assetsDir = opts.assetsDir ?? DEFAULT_ASSETS_DIR;
  const sampler = new LiveSampler(engine, opts.tickMs ?? 1000, app.log);
  sampler.start();
  app.addHook("onClose", () => sampler.stop());
  const streams = new Set<FastifyReply>();
  // SSE replies are hijacked: close() would wait for them (forceCloseConnections ends the sockets, but end them first).
  app.addHook("preClose", async () => {
    for (const r of streams) r.raw.end();
  });

  const sendPage = (_req: FastifyRequest, reply: FastifyReply) =>
    reply.header("content-type", "text/html; charset=utf-8").header("cache-control", "no-cache").header("content-security-policy", CSP).header("x-content-type-options", "nosniff").send(page());
  app.get("/dashboard", sendPage);
  app.get("/dashboard/", sendPage);
  app.get<{ Params: { name: string } }>("/dashboard/assets/:name", async (req, reply) => {
    const type = ASSETS[req.params.name];
    if (!type) throw notFound(`No dashboard asset ${req.params.name}.`);
    const body = await readFile(assetsDir + req.params.name).catch(() => null);
    if (body === null) {
      throw new OpenBatchError("internal", `The dashboard page is not built (${assetsDir}${req.params.name} is missing): run \`npm run build:dashboard\`.`, { code: "dashboard_not_built" });
    }
    return reply.header("content-type", type).header("cache-control", "no-cache").header("x-content-type-options", "nosniff").send(body);
  });

  app.get("/dashboard/api/mode", async () => ({ auth: auth.enabled }));
  app.get("/dashboard/api/session", async (req) => ({ auth: auth.enabled, admin: auth.enabled && auth.isAdmin(req.caller), tick_ms: sampler.tickMs }));

  app.get("/dashboard/api/overview", async (req) => {
    const admin = auth.isAdmin(req.caller);
    const counts = await batchCounts(engine, req.caller);
    return {
      now: Date.now(),
      auth: auth.enabled,
      admin: auth.enabled && admin,
      tick_ms: sampler.tickMs,
      queue_depth: sampler.queueDepth(req.caller),
      ...counts,
      throughput: sampler.throughput(req.caller),
      // Upstream state is shared by every tenant: like /metrics, an admin key's (or everyone's with auth off).
      providers: admin ? await sampler.providers() : null,
      vendor_jobs: admin ? await engine.store.vendorJobs.jobCounts() : null,
      collections: (await collectionsCall(() => collections.shardStats(req.caller))).length,
    };
  });

  app.get<{ Querystring: Record<string, string> }>("/dashboard/api/batches", async (req) => {
    const filter = filterOf(req.query);
    const limit = limitOf(req.query.limit, 50, 200);
    const rows = await listRows(engine, req.caller, filter, { after: req.query.after || undefined, limit }, (id) => sampler.recentRate(id));
    return { data: rows.data, next: rows.next, scanned: rows.scanned };
  });

  app.get<{ Params: { id: string } }>("/dashboard/api/batches/:id", async (req) => {
    const view = await engine.getBatch(req.caller, req.params.id);
    return { batch: rowOf(view, sampler.recentRate(view.id)), timeline: timelineOf(view) };
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string> }>("/dashboard/api/batches/:id/items", async (req) => {
    const state = req.query.state || undefined;
    if (state !== undefined && !ITEM_STATES.includes(state as ItemState)) throw invalidRequest(`Unknown item state ${JSON.stringify(state)}: expected one of ${ITEM_STATES.join(", ")}.`, "state");
    return searchItems(engine, req.caller, req.params.id, { query: req.query.custom_id ?? "", state: state as ItemState | undefined, limit: limitOf(req.query.limit, 20, 100) });
  });

  app.get<{ Params: { id: string } }>("/dashboard/api/batches/:id/errors", async (req) => errorGroups(engine, req.caller, req.params.id));
  app.post<{ Params: { id: string } }>("/dashboard/api/batches/:id/cancel", async (req) => ({ batch: rowOf(await engine.cancelBatch(req.caller, req.params.id), null) }));
  app.post<{ Params: { id: string } }>("/dashboard/api/batches/:id/retry", async (req) => ({ batch: rowOf(await engine.retryBatch(req.caller, req.params.id), null) }));

  app.post("/dashboard/api/check", async (req) => {
    if (typeof req.body !== "string") throw invalidRequest("Send the JSONL file as the request body with content-type text/plain.", "body");
    return checkFile(engine, req.body, engine.maxRequestsPerBatch);
  });

  app.get("/dashboard/api/collections", async (req) => {
    const stats = new Map((await collectionsCall(() => collections.shardStats(req.caller))).map((s) => [s.class, s]));
    const classes = await collectionsCall(() => collections.listClasses(req.caller));
    return {
      data: classes.map((c) => ({
        class: c.class,
        description: c.description ?? null,
        vectorizer: c.vectorizer,
        model: (c.moduleConfig[c.vectorizer] as { model?: string } | undefined)?.model ?? null,
        distance: c.vectorIndexConfig.distance,
        properties: c.properties.length,
        objects: stats.get(c.class)?.objectCount ?? 0,
        vectors: stats.get(c.class)?.vectorCount ?? 0,
      })),
    };
  });
  app.get<{ Params: { name: string } }>("/dashboard/api/collections/:name", async (req) => {
    const def = await collectionsCall(() => collections.getClass(req.caller, req.params.name));
    if (!def) throw notFound(`No collection ${req.params.name}.`);
    return def;
  });
  app.get<{ Params: { name: string }; Querystring: Record<string, string> }>("/dashboard/api/collections/:name/objects", async (req) => {
    const limit = limitOf(req.query.limit, 25, 100);
    const where = req.query.where ? parseWhere(req.query.where) : undefined;
    if (where !== undefined) {
      // A filter: Weaviate's where through search, paged by offset.
      const offset = req.query.offset ? Number(req.query.offset) : 0;
      if (!Number.isInteger(offset) || offset < 0) throw invalidRequest("offset must be a whole number ≥ 0.", "offset");
      const found = await collectionsCall(() => collections.search(req.caller, { class: req.params.name, where, limit, offset }));
      const total = await collectionsCall(() => collections.count(req.caller, req.params.name, where));
      return { objects: found, total };
    }
    return collectionsCall(() => collections.listObjects(req.caller, req.params.name, limit, req.query.after || undefined, false));
  });
  app.post<{ Params: { name: string }; Body: { nearText?: unknown; limit?: unknown } }>("/dashboard/api/collections/:name/search", async (req) => {
    const text = req.body?.nearText;
    if (typeof text !== "string" || !text.trim()) throw invalidRequest("nearText must be a non-empty string.", "nearText");
    const limit = limitOf(req.body.limit, 10, 100);
    return { results: await collectionsCall(() => collections.search(req.caller, { class: req.params.name, concepts: [text], limit })) };
  });

  app.get("/dashboard/api/stream", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no", connection: "keep-alive" });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send("hello", { tick_ms: sampler.tickMs });
    const caller = req.caller;
    const onTick = (t: Tick) => {
      const now = Date.now();
      send("tick", { point: t.point, queue_depth: sampler.queueDepth(caller), changed: t.changed.map((b) => rowOf(b, sampler.recentRate(b.id), now)) });
    };
    const unsubscribe = sampler.subscribe({ caller, onTick });
    streams.add(reply);
    // A comment now and then keeps proxies from closing an idle stream.
    const beat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    beat.unref();
    res.on("close", () => {
      clearInterval(beat);
      unsubscribe();
      streams.delete(reply);
    });
  });
}

function parseWhere(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest("where must be a Weaviate where filter as JSON.", "where");
  }
}
