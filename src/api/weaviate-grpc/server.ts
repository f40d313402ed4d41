import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Caller, CollectionService } from "../../collections/collection-service.js";
import type { ApiKeyAuth } from "../auth.js";
import { aggregateRpc, type AggregateRequestMsg } from "./aggregate.js";
import { batchObjectsRpc } from "./batch-objects.js";
import { batchReferencesRpc, type BatchReferenceMsg } from "./batch-references.js";
import { BatchStreamSession, MAX_STREAM_MESSAGE_BYTES, OversizedStreamMessage } from "./batch-stream.js";
import { MalformedRequest, malformedStatus, withMalformedRequests } from "./malformed.js";
import { toWhere } from "./conversion.js";
import { GrpcInputError, toStatus } from "./errors.js";
import { seconds, type BatchDeleteRequestMsg, type BatchObjectMsg, type SearchRequestMsg } from "./messages.js";
import { search } from "./search.js";

/** Settings of the Weaviate gRPC endpoint. */
export interface WeaviateGrpcOptions {
  collections: CollectionService;
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** Checks `authorization: Bearer <key>` (or `x-api-key: <key>`) metadata; absent or with no keys: auth off. */
  auth?: ApiKeyAuth;
}

/** A running gRPC endpoint. */
export interface WeaviateGrpcServer {
  /** The port it listens on. */
  port: number;
  close(): Promise<void>;
}

/** Largest request accepted (insertMany sends whole batches in one message). */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

// ---------------------------------------------------------------- protos

/** The folder of our .proto files: next to this module (src, tsx) or, from dist, in the shipped src. */
function protoDir(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const dir of [here, join(here, "../../../src/api/weaviate-grpc")]) if (existsSync(join(dir, "weaviate.proto"))) return dir;
  throw new Error(`weaviate.proto not found next to ${here}`);
}

interface Services {
  weaviate: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

let services: Services | null = null;
function loadServices(): Services {
  if (services) return services;
  const dir = protoDir();
  const def = protoLoader.loadSync([join(dir, "weaviate.proto"), join(dir, "health.proto")], {
    keepCase: false,
    longs: Number,
    enums: Number,
    defaults: false,
    arrays: true,
    objects: false,
    oneofs: false,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    weaviate: { v1: { Weaviate: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  services = { weaviate: pkg.weaviate.v1.Weaviate.service, health: pkg.grpc.health.v1.Health.service };
  return services;
}

// ---------------------------------------------------------------- handlers

const uuidBytes = (id: string) => Buffer.from(id.replace(/-/g, ""), "hex");

/** TenantsGet: the tenants of a multi-tenant collection (all, or those named), status ACTIVE (7) or INACTIVE (8). */
async function tenantsGet(collections: CollectionService, caller: Caller, req: { collection?: string; names?: { values?: string[] } }): Promise<unknown> {
  const start = performance.now();
  const all = collections.listTenants(caller, req.collection ?? "");
  const wanted = req.names ? new Set(req.names.values ?? []) : null;
  const tenants = all.filter((t) => !wanted || wanted.has(t.name)).map((t) => ({ name: t.name, activityStatus: t.activityStatus === "ACTIVE" ? 7 : 8 }));
  return { took: seconds(start), tenants };
}

/** BatchDelete: objects of a collection matching a filter (or a dry run). */
async function batchDelete(collections: CollectionService, caller: Caller, req: BatchDeleteRequestMsg): Promise<unknown> {
  const start = performance.now();
  if (!req.filters) throw new GrpcInputError("batch delete: filters must be set");
  const def = collections.getClass(caller, req.collection ?? "");
  const r = await collections.deleteObjects(caller, { class: req.collection ?? "", tenant: req.tenant || undefined, where: toWhere(req.filters, def, (n) => collections.getClass(caller, n)), dryRun: req.dryRun === true, verbose: req.verbose === true });
  return {
    took: seconds(start),
    failed: r.failed,
    matches: r.matches,
    successful: r.successful,
    objects: r.objects.map((o) => ({ uuid: uuidBytes(o.id), successful: o.status !== "FAILED", ...(o.errors ? { error: o.errors.error.map((e) => e.message).join("; ") } : {}) })),
  };
}

/** The caller named by a call's metadata (`authorization: Bearer <key>` or `x-api-key`). @throws OpenBatchError 401. */
function callerOf(auth: ApiKeyAuth | undefined, metadata: grpc.Metadata): Caller {
  if (!auth?.enabled) return null;
  const text = (name: string) => {
    const value = metadata.get(name)[0];
    return typeof value === "string" ? value : value?.toString();
  };
  return auth.authenticate({ authorization: text("authorization"), "x-api-key": text("x-api-key") });
}

/** The service with BatchStream's decoder refusing messages over MAX_STREAM_MESSAGE_BYTES before decoding them. */
function withStreamMessageLimit(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const method = service.BatchStream!;
  const decode = method.requestDeserialize;
  return { ...service, BatchStream: { ...method, requestDeserialize: (bytes: Buffer) => (bytes.length > MAX_STREAM_MESSAGE_BYTES ? new OversizedStreamMessage(bytes.length) : decode(bytes)) } };
}

/** How long close() lets open calls (BatchStreams finishing what they accepted) end before it cuts them. */
const CLOSE_GRACE_MS = 10_000;

/**
 * Starts Weaviate's gRPC API for the official clients (weaviate-client v3, Python v4): `grpc.health.v1.Health/Check`
 * (SERVING, no key needed) and `weaviate.v1.Weaviate/BatchObjects`, `BatchReferences`, `BatchStream`
 * (batch-stream.ts), `Search`, `BatchDelete`, `TenantsGet`, `Aggregate` over the collections, with the key in
 * `authorization: Bearer <key>` (or `x-api-key`) metadata when auth is on. Other methods answer UNIMPLEMENTED.
 * Each call runs as the key's owner (collections/access.ts): a collection it may not read or write answers
 * PERMISSION_DENIED (objects and references of the batch methods fail one by one). `close()` tells open BatchStreams
 * the server is shutting down and waits (up to CLOSE_GRACE_MS) until what they accepted is imported and answered.
 */
export async function startWeaviateGrpc(options: WeaviateGrpcOptions): Promise<WeaviateGrpcServer> {
  const { collections, auth } = options;
  const svc = loadServices();
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES });
  const sessions = new Set<BatchStreamSession>();

  const unary =
    <Req>(fn: (caller: Caller, req: Req) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> =>
    (call, callback) => {
      let caller: Caller = null;
      try {
        caller = callerOf(auth, call.metadata);
      } catch (err) {
        callback(toStatus(err));
        return;
      }
      // Bytes that did not decode: the caller's fault, INVALID_ARGUMENT (answered after auth, so only to a key holder).
      if (call.request instanceof MalformedRequest) {
        callback(malformedStatus(call.request));
        return;
      }
      // On a shared store, first catch up with what other API servers wrote (a no-op on the embedded one).
      collections
        .sync()
        .then(() => fn(caller, call.request))
        .then(
        (reply) => callback(null, reply),
        (err: unknown) => callback(toStatus(err)),
      );
    };

  const batchStream = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    let caller: Caller;
    try {
      caller = callerOf(auth, call.metadata);
    } catch (err) {
      call.emit("error", { ...toStatus(err), metadata: new grpc.Metadata() });
      return;
    }
    const session = new BatchStreamSession(call, collections, caller);
    sessions.add(session);
    void session.finished.then(() => sessions.delete(session));
  };

  server.addService(svc.health, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: 1 }),
  });
  server.addService(withStreamMessageLimit(withMalformedRequests(svc.weaviate)), {
    BatchObjects: unary((caller, req: { objects?: BatchObjectMsg[] }) => batchObjectsRpc(collections, caller, req)),
    BatchReferences: unary((caller, req: { references?: BatchReferenceMsg[] }) => batchReferencesRpc(collections, caller, req)),
    BatchStream: batchStream,
    Search: unary((caller, req: SearchRequestMsg) => search(collections, caller, req)),
    BatchDelete: unary((caller, req: BatchDeleteRequestMsg) => batchDelete(collections, caller, req)),
    TenantsGet: unary((caller, req: { collection?: string; names?: { values?: string[] } }) => tenantsGet(collections, caller, req)),
    Aggregate: unary((caller, req: AggregateRequestMsg) => aggregateRpc(collections, caller, req)),
  });

  const host = options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
  return {
    port,
    close: async () => {
      const shutdown = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      // Streams end themselves once what they accepted is answered; cut whatever is left after the grace period.
      const streams = Promise.all([...sessions].map((s) => s.shutDown()));
      await Promise.race([shutdown, pause(sessions.size ? CLOSE_GRACE_MS : 2_000)]);
      server.forceShutdown();
      // Accepted items are imported even when their client is gone: the collections stay open until then.
      await Promise.race([streams, pause(CLOSE_GRACE_MS)]);
    },
  };
}
