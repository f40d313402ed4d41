import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./support/harness.js";

const API_KEY = "grpc-malformed-key";

/** Bytes that are no protobuf message: a truncated length-delimited field, a bad wire type, a runaway varint. */
const GARBAGE: [string, Buffer][] = [
  ["a field whose length runs past the end", Buffer.from([0x0a, 0x10, 0x41])],
  ["wire type 7 (no such type)", Buffer.from([0x0f, 0x01, 0x02])],
  ["a varint that never ends", Buffer.alloc(12, 0xff)],
];

const raw = (b: Buffer) => b;

describe("Weaviate gRPC API: a request that is not a valid protobuf answers INVALID_ARGUMENT", () => {
  let server: TestServer;
  let client: grpc.Client;

  beforeAll(async () => {
    server = await startServer({ apiKeys: [API_KEY] }, { grpcPort: 0 });
    client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  /** A unary call with raw bytes in and out (serializers that do nothing), as a client with other protos would send. */
  function call(method: string, body: Buffer, key: string | null = API_KEY): Promise<{ err: grpc.ServiceError | null; reply?: Buffer }> {
    const metadata = new grpc.Metadata();
    if (key) metadata.set("authorization", `Bearer ${key}`);
    return new Promise((resolve) => {
      client.makeUnaryRequest(`/weaviate.v1.Weaviate/${method}`, raw, raw, body, metadata, { deadline: Date.now() + 10_000 }, (err, reply) => resolve({ err, reply }));
    });
  }

  /** Per method: well-framed outer bytes holding a nested message (objects, properties, filters) that is cut short. */
  const NESTED: Record<string, Buffer> = {
    BatchObjects: Buffer.from([0x0a, 0x02, 0x08, 0x80]),
    Search: Buffer.from([0xa2, 0x01, 0x02, 0x08, 0x80]),
    BatchDelete: Buffer.from([0x12, 0x02, 0x08, 0x80]),
  };

  for (const method of ["BatchObjects", "Search", "BatchDelete"]) {
    for (const [what, bytes] of [...GARBAGE, ["a nested message cut short", NESTED[method]!] as [string, Buffer]]) {
      it(`${method} with ${what}: status 3 INVALID_ARGUMENT naming the method`, async () => {
        const { err } = await call(method, bytes);
        expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err?.details).toMatch(new RegExp(`^The ${method} request is not a valid protobuf message \\(.+\\)\\.$`));
      });
    }
  }

  it("without a key the same bytes answer UNAUTHENTICATED: nothing is said about a request before its caller is known", async () => {
    const { err } = await call("BatchObjects", GARBAGE[0]![1], null);
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("the endpoint keeps serving: an empty (valid) BatchObjectsRequest is answered OK", async () => {
    const { err, reply } = await call("BatchObjects", Buffer.alloc(0));
    expect(err).toBeNull();
    expect(Buffer.isBuffer(reply)).toBe(true);
  });
});

describe("Weaviate gRPC API: an error's HTTP status maps to the gRPC code a client retries or reports by", () => {
  it("422 → INVALID_ARGUMENT, 404 → NOT_FOUND, 409 → ABORTED, 413 → RESOURCE_EXHAUSTED, anything else INTERNAL", async () => {
    const grpc = await import("@grpc/grpc-js");
    const { toStatus } = await import("../src/api/weaviate-grpc/errors.js");
    const { CollectionError } = await import("../src/collections/errors.js");
    const codes = [422, 404, 409, 413, 500].map((s) => toStatus(new CollectionError(s, `status ${s}`)));
    expect(codes).toEqual([
      { code: grpc.status.INVALID_ARGUMENT, details: "status 422" },
      { code: grpc.status.NOT_FOUND, details: "status 404" },
      { code: grpc.status.ABORTED, details: "status 409" },
      { code: grpc.status.RESOURCE_EXHAUSTED, details: "status 413" },
      { code: grpc.status.INTERNAL, details: "status 500" },
    ]);
  });
});
