import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { CollectionService } from "../../collections/collection-service.js";
import { FORBIDDEN_PREFIX } from "../../collections/access.js";
import { CollectionError, unprocessable } from "../../collections/errors.js";
import { normalizeClassName, vectorSlots } from "../../collections/schema.js";
import type { SortKey } from "../../collections/sort.js";
import { checkReplicationParams } from "./replication-params.js";
import { objectBodyError } from "./rest-bodies.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** Most objects a listing reaches (offset + limit), Weaviate's QUERY_MAXIMUM_RESULTS default. */
const MAX_RESULTS = 10_000;

/**
 * `?include=` as Weaviate reads it: a comma list of `vector`, `classification`, `interpretation`, `featureProjection`.
 * @returns whether vectors are asked for. @throws CollectionError 422 for a value OpenBatch does not serve (only
 * `vector`: it keeps no classifications, interpretations or projections) and for an unknown one (Weaviate's words).
 */
function wantsVector(include: unknown): boolean {
  if (include === undefined || include === "") return false;
  if (typeof include !== "string") throw unprocessable("include must be a comma-separated list, e.g. include=vector");
  let vector = false;
  for (const item of include.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (item === "vector") vector = true;
    else if (item === "classification" || item === "interpretation" || item === "featureProjection") throw unprocessable(`include=${item} is not supported by OpenBatch (it serves include=vector)`);
    else throw unprocessable(`unrecognized property '${item}' in ?include list`);
  }
  return vector;
}

/** A non-negative integer query parameter, or `fallback` when absent. @throws CollectionError 422 naming it. */
function intParam(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw unprocessable(`${name} must be an integer >= 0`);
  return n;
}

/**
 * `?sort=a,b&order=asc,desc`: an order missing (or empty) is asc, as Weaviate reads it. Weaviate's REST also sorts an
 * unknown order ascending and drops an order without sort; both are refused here, the first with the message
 * Weaviate's GraphQL and gRPC give it. @throws CollectionError 422 naming the order.
 */
function sortParam(sort: string | undefined, order: string | undefined): SortKey[] | undefined {
  const orders = order === undefined || order === "" ? [] : order.split(",").map((s) => s.trim());
  if (sort === undefined || sort === "") {
    if (orders.length) throw unprocessable(`order without sort: give sort=<property> to order a listing (order=${order})`);
    return undefined;
  }
  const paths = sort.split(",").map((s) => s.trim());
  if (orders.length > paths.length) throw unprocessable(`${orders.length} orders for ${paths.length} sort ${paths.length === 1 ? "property" : "properties"}: give one order per sort property`);
  for (const o of orders) if (o !== "" && o !== "asc" && o !== "desc") throw unprocessable(`invalid order parameter, possible values are: ["asc", "desc"] not: "${o}"`);
  return paths.map((path, i) => ({ path: [path], order: orders[i] === "desc" ? "desc" : "asc" }));
}

/** @throws CollectionError 422 for an object body field the import would drop (rest-bodies.ts). */
function checkObjectBody(body: unknown): void {
  const error = objectBodyError(body);
  if (error) throw unprocessable(error);
}

/**
 * The tenant of a PUT / PATCH: the body's (Weaviate reads it there) or `?tenant=` (OpenBatch's extension).
 * @throws CollectionError 422 when both are given and differ.
 */
function tenantOf(body: Record<string, unknown>, query: string | undefined): string | undefined {
  const fromBody = typeof body.tenant === "string" && body.tenant ? body.tenant : undefined;
  const fromQuery = query || undefined;
  if (fromBody !== undefined && fromQuery !== undefined && fromBody !== fromQuery) throw unprocessable(`tenant given twice: ?tenant=${fromQuery} and body tenant ${fromBody}`);
  return fromBody ?? fromQuery;
}

/**
 * Weaviate's object endpoints: `GET /v1/objects/{class}/{id}?include=vector` (404 with no body when absent),
 * `HEAD` and `DELETE` of the same (204/404), `GET /v1/objects/{id}` (any class), `GET /v1/objects?class=&limit=&offset=
 * &after=&sort=&order=&include=&tenant=` (without `class`: every readable class, `limit` / `offset` / `include` only),
 * `POST /v1/objects` and `PUT /v1/objects/{class}/{id}` (one object through the batch path; 422 with the reason),
 * `POST /v1/objects/validate` (200 with no body when valid, 422 `invalid object: …` as an insert would answer).
 * With API keys on, a class the caller may not read (or write, for PUT/POST/DELETE) answers 403 in Weaviate's shape;
 * `GET /v1/objects/{id}` looks only in classes the caller may read (see collections/access.ts). Object bodies with a
 * field the import does not read, and bad `consistency_level` / `node_name` values, are refused (rest-bodies.ts,
 * replication-params.ts).
 */
export const weaviateObjectsRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  // This plugin's routes only.
  app.addHook("preHandler", async (req) => checkReplicationParams(req.query));

  // `?tenant=` names the tenant of a multi-tenant class (collections/tenants.ts); refused on other classes.
  const one = async (caller: string | null, cls: string | null, id: string, include: unknown, reply: FastifyReply, tenant?: string) => {
    const o = await collections.getObject(caller, cls, id, wantsVector(include), tenant);
    return o ?? reply.status(404).send();
  };

  // HEAD has its own route (204/404, as Weaviate), not the one Fastify derives from GET.
  app.get<{ Params: { className: string; id: string }; Querystring: { include?: string; tenant?: string } }>("/v1/objects/:className/:id", { exposeHeadRoute: false }, async (req, reply) =>
    one(req.caller, req.params.className, req.params.id, req.query.include, reply, req.query.tenant),
  );
  app.get<{ Params: { id: string }; Querystring: { include?: string } }>("/v1/objects/:id", { exposeHeadRoute: false }, async (req, reply) =>
    one(req.caller, null, req.params.id, req.query.include, reply),
  );
  app.head<{ Params: { id: string } }>("/v1/objects/:id", async (req, reply) => reply.status((await collections.getObject(req.caller, null, req.params.id, false)) ? 204 : 404).send());

  app.head<{ Params: { className: string; id: string }; Querystring: { tenant?: string } }>("/v1/objects/:className/:id", async (req, reply) => {
    const o = await collections.getObject(req.caller, req.params.className, req.params.id, false, req.query.tenant);
    return reply.status(o ? 204 : 404).send();
  });

  app.delete<{ Params: { className: string; id: string }; Querystring: { tenant?: string } }>("/v1/objects/:className/:id", async (req, reply) => {
    const deleted = await collections.deleteObject(req.caller, req.params.className, req.params.id, req.query.tenant);
    return reply.status(deleted ? 204 : 404).send();
  });

  type ListQuery = { class?: string; limit?: string; offset?: string; after?: string; include?: string; tenant?: string; sort?: string; order?: string };
  app.get<{ Querystring: ListQuery }>("/v1/objects", async (req) => {
    const { class: cls, after, include, tenant } = req.query;
    const limit = intParam("limit", req.query.limit, 25);
    const offset = intParam("offset", req.query.offset, 0);
    if (offset + limit > MAX_RESULTS) throw unprocessable("query maximum results exceeded");
    const sort = sortParam(req.query.sort, req.query.order);
    const vector = wantsVector(include);
    // Weaviate's answer counts the objects returned (not the class's).
    if (!cls) {
      if (after) throw unprocessable("list objects: after parameter not allowed, cursor must be specific to one class, set class query param");
      if (sort) throw unprocessable("sort without class is not supported by OpenBatch: give class=<Class> to sort a listing");
      if (tenant) throw unprocessable("tenant without class is not supported by OpenBatch: give class=<Class> with tenant");
      const objects = await collections.listAllObjects(req.caller, limit, offset, vector);
      return { objects, totalResults: objects.length, deprecations: null };
    }
    if (after && (offset > 0 || sort)) throw unprocessable(`${[offset > 0 ? "offset" : null, sort ? "sort" : null].filter(Boolean).join(",")} cannot be set with after and limit parameters`);
    const { objects } = await collections.listObjects(req.caller, cls, limit, after, vector, tenant, { offset, sort });
    return { objects, totalResults: objects.length, deprecations: null };
  });

  app.post("/v1/objects/validate", async (req, reply) => {
    checkObjectBody(req.body);
    collections.validateObject(req.caller, req.body);
    return reply.status(200).send();
  });

  const createOne = async (caller: string | null, body: unknown) => {
    const [r] = await collections.batchObjects(caller, [body]);
    // A class the caller may not write is Weaviate's 403, not a validation error.
    if (r!.error) throw new CollectionError(r!.error.startsWith(FORBIDDEN_PREFIX) ? 403 : 422, r!.error);
    return r!.object;
  };
  app.post("/v1/objects", async (req) => {
    checkObjectBody(req.body);
    return createOne(req.caller, req.body);
  });

  // PATCH merges: the given properties over the stored ones; vectors kept unless given (a vectorized one is
  // re-embedded when properties change, as Weaviate does). 204, or 404 when absent.
  app.patch<{ Params: { className: string; id: string }; Querystring: { tenant?: string } }>("/v1/objects/:className/:id", async (req, reply) => {
    if (!isObject(req.body)) throw unprocessable("PATCH /v1/objects/{class}/{id}: the body must be an object: {\"properties\": {…}, \"vector\"?: […]}");
    const body = req.body;
    checkObjectBody(body);
    const tenant = tenantOf(body, req.query.tenant);
    const existing = await collections.getObject(req.caller, req.params.className, req.params.id, true, tenant);
    if (!existing) return reply.status(404).send();
    const def = collections.getClass(req.caller, existing.class)!;
    const props = isObject(body.properties) ? body.properties : {};
    const changed = Object.keys(props).length > 0;
    const kept: Record<string, number[]> = {};
    for (const slot of vectorSlots(def)) {
      const v = slot.name === "default" ? (existing.vector ?? existing.vectors?.default) : existing.vectors?.[slot.name];
      if (v && v.length && !(changed && slot.module !== "none")) kept[slot.name] = v;
    }
    const given = isObject(body.vectors) ? body.vectors : {};
    const vectors: Record<string, unknown> = { ...kept, ...given };
    if (Array.isArray(body.vector)) vectors.default = body.vector;
    await createOne(req.caller, { class: existing.class, id: existing.id, ...(tenant ? { tenant } : {}), properties: { ...existing.properties, ...props }, vectors });
    return reply.status(204).send();
  });

  app.delete<{ Params: { id: string } }>("/v1/objects/:id", async (req, reply) => {
    const o = await collections.getObject(req.caller, null, req.params.id, false);
    if (!o) return reply.status(404).send();
    await collections.deleteObject(req.caller, o.class, o.id);
    return reply.status(204).send();
  });

  // One object's references: POST adds `{beacon}`, PUT replaces the property's list with `[{beacon}]`, DELETE removes `{beacon}`.
  type RefRoute = { Params: { className: string; id: string; prop: string }; Querystring: { tenant?: string } };
  const refs = (op: "add" | "replace" | "delete") => async (req: { caller: string | null; params: RefRoute["Params"]; query: RefRoute["Querystring"]; body: unknown }, reply: FastifyReply) => {
    const { className, id, prop } = req.params;
    if (op === "replace" && !Array.isArray(req.body)) throw unprocessable("PUT .../references/{property} takes a list of references: [{\"beacon\": …}]");
    if (op !== "replace" && !isObject(req.body)) throw unprocessable("a reference is an object: {\"beacon\": \"weaviate://localhost/<Class>/<uuid>\"}");
    await collections.objectReferences(req.caller, op, className, id, prop, op === "replace" ? (req.body as unknown[]) : [req.body], req.query.tenant || undefined);
    return reply.status(op === "delete" ? 204 : 200).send();
  };
  app.post<RefRoute>("/v1/objects/:className/:id/references/:prop", (req, reply) => refs("add")(req, reply));
  app.put<RefRoute>("/v1/objects/:className/:id/references/:prop", (req, reply) => refs("replace")(req, reply));
  app.delete<RefRoute>("/v1/objects/:className/:id/references/:prop", (req, reply) => refs("delete")(req, reply));
  // PUT replaces the object the path names: a body id or class naming another is refused with Weaviate's message.
  app.put<{ Params: { className: string; id: string }; Querystring: { tenant?: string } }>("/v1/objects/:className/:id", async (req) => {
    const body = isObject(req.body) ? req.body : {};
    checkObjectBody(body);
    const { className, id } = req.params;
    if (typeof body.id === "string" && body.id !== "" && body.id.toLowerCase() !== id.toLowerCase()) throw unprocessable("invalid update: field 'id' is immutable");
    if (typeof body.class === "string" && body.class !== "" && normalizeClassName(body.class) !== normalizeClassName(className)) throw unprocessable("invalid update: field 'class' is immutable");
    const tenant = tenantOf(body, req.query.tenant);
    return createOne(req.caller, { ...body, ...(tenant ? { tenant } : {}), class: className, id });
  });
};
