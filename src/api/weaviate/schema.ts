import type { FastifyPluginAsync } from "fastify";
import type { CollectionService } from "../../collections/collection-service.js";
import { unprocessable } from "../../collections/errors.js";
import { renderClass } from "../../collections/schema.js";
import { shardStatusBodyError } from "./rest-bodies.js";

/**
 * Weaviate's schema endpoints: `GET /v1/schema` → `{classes}`, `POST /v1/schema` (a class; 422 when invalid or
 * existing), `GET /v1/schema/{class}` (404 with no body when absent), `DELETE /v1/schema/{class}` (200 either way),
 * `PUT /v1/schema/{class}` (what Weaviate lets change; 404 with no body when absent), `POST /v1/schema/{class}/properties`,
 * `GET /v1/schema/{class}/shards[?tenant=]` and `PUT /v1/schema/{class}/shards/{shard}` with `{status}` (READY or
 * READONLY; collections/shards.ts; any other body field is 422).
 * With API keys on, each is checked for the caller (`req.caller`): the listing leaves out classes it may not see, the
 * others answer 403 in Weaviate's shape (see collections/access.ts).
 */
export const weaviateSchemaRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  // Classes are rendered as Weaviate returns them (named vectors as `vectorConfig`; every config block the clients read).
  app.get("/v1/schema", async (req) => ({ classes: collections.listClasses(req.caller).map(renderClass) }));

  app.post("/v1/schema", async (req) => renderClass(await collections.createClass(req.caller, req.body)));

  app.get<{ Params: { className: string } }>("/v1/schema/:className", async (req, reply) => {
    const def = collections.getClass(req.caller, req.params.className);
    return def ? renderClass(def) : reply.status(404).send();
  });

  app.put<{ Params: { className: string } }>("/v1/schema/:className", async (req, reply) => {
    const def = await collections.updateClass(req.caller, req.params.className, req.body);
    return def ? renderClass(def) : reply.status(404).send();
  });

  app.delete<{ Params: { className: string } }>("/v1/schema/:className", async (req, reply) => {
    await collections.deleteClass(req.caller, req.params.className);
    return reply.status(200).send();
  });

  app.post<{ Params: { className: string } }>("/v1/schema/:className/properties", async (req) => collections.addProperty(req.caller, req.params.className, req.body));

  app.get<{ Params: { className: string }; Querystring: { tenant?: string } }>("/v1/schema/:className/shards", async (req) =>
    collections.listShards(req.caller, req.params.className, req.query.tenant || undefined),
  );

  app.put<{ Params: { className: string; shard: string } }>("/v1/schema/:className/shards/:shard", async (req) => {
    const error = shardStatusBodyError(req.body);
    if (error) throw unprocessable(error);
    return collections.updateShard(req.caller, req.params.className, req.params.shard, req.body);
  });
};
