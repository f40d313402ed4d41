import { hostname } from "node:os";
import type { FastifyPluginAsync } from "fastify";
import type { CollectionService } from "../../collections/collection-service.js";
import { DEFAULT_MODEL, normalizeClassName, VECTORIZER } from "../../collections/schema.js";
import { unprocessable } from "../../collections/errors.js";
import { MODULES } from "../../collections/vector-config.js";

/**
 * The Weaviate version we answer as. The clients switch features on it (weaviate-client 3.14's utils/dbVersion.js):
 * 1.36 turns on server-side batching (BatchStream, served); what 1.29-1.36 switch is served or refused loudly
 * (README, "Not yet"); 1.37 would switch on the tokenize endpoint and a server-chosen default index type, not served.
 */
export const WEAVIATE_VERSION = "1.36.0";

/**
 * `GET /v1/meta` → `{hostname, version, modules, grpcMaxMessageSize}`; `GET /v1/.well-known/ready` and `live` (200,
 * no key needed); `GET /v1/.well-known/openid-configuration` (404: no OIDC); `GET /v1/nodes[/{class}]` →
 * `{nodes:[{name, status, version, stats, batchStats:{queueLength, ratePerSecond}, shards}]}` (shards with
 * `output=verbose`; an output other than minimal / verbose is 422), which dynamic batching polls about once a second.
 */
export const weaviateMetaRoutes: FastifyPluginAsync<{ collections: CollectionService; models: () => string[] }> = async (app, { collections, models }) => {
  app.get("/v1/meta", async (req) => ({
    hostname: `${req.protocol}://${req.host}`,
    version: WEAVIATE_VERSION,
    // Every vectorizer module a class may name: ours, and Weaviate's served through the engine (see README).
    modules: Object.fromEntries(
      Object.keys(MODULES).map((name) => [
        name,
        name === VECTORIZER
          ? { name, documentationHref: "https://github.com/openbatch/openbatch", defaultModel: DEFAULT_MODEL, models: models() }
          : { name, documentationHref: "https://github.com/openbatch/openbatch#collections", servedBy: "openbatch" },
      ]),
    ),
    grpcMaxMessageSize: 10 * 1024 * 1024,
  }));

  app.get("/v1/.well-known/ready", async (_req, reply) => reply.status(200).send());
  app.get("/v1/.well-known/live", async (_req, reply) => reply.status(200).send());
  app.get("/v1/.well-known/openid-configuration", async (_req, reply) => reply.status(404).send());

  // Shards are listed for the classes the caller may see only: their names and counts are the tenants' own.
  const nodes = (caller: string | null, output: string | undefined, only?: string) => {
    if (output !== undefined && output !== "minimal" && output !== "verbose") throw unprocessable(`output must be "minimal" or "verbose", got ${JSON.stringify(output)}`);
    const shards = collections.shardStats(caller).filter((s) => only === undefined || s.class === only);
    const objectCount = shards.reduce((n, s) => n + s.objectCount, 0);
    return {
      nodes: [
        {
          name: hostname(),
          status: "HEALTHY",
          version: WEAVIATE_VERSION,
          gitHash: "openbatch",
          stats: { shardCount: shards.length, objectCount },
          batchStats: collections.batchStats(),
          shards:
            output === "verbose"
              ? shards.map((s) => ({ name: "shard0", class: s.class, objectCount: s.objectCount, vectorIndexingStatus: "READY", vectorQueueLength: 0, compressed: false, loaded: true }))
              : null,
        },
      ],
    };
  };
  // A single node: always in sync with itself.
  app.get("/v1/cluster/statistics", async () => ({
    statistics: [{ name: hostname(), status: "HEALTHY", ready: true, open: true, isVoter: true, leaderId: hostname(), leaderAddress: "127.0.0.1", dbLoaded: true, initialLastAppliedIndex: 0, lastAppliedIndex: 0, raft: { state: "Leader", numPeers: "0" }, candidates: {} }],
    synchronized: true,
  }));
  app.get<{ Querystring: { output?: string } }>("/v1/nodes", async (req) => nodes(req.caller, req.query.output));
  app.get<{ Params: { className: string }; Querystring: { output?: string } }>("/v1/nodes/:className", async (req) => nodes(req.caller, req.query.output, normalizeClassName(req.params.className)));
};
