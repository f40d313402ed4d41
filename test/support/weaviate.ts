import weaviate, { type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./harness.js";
import { createTestDatabase } from "./postgres.js";

/**
 * One JSON call to a test server's root, for Weaviate's `/v1/...` REST routes the client does not cover.
 * `path` starts with `/v1/`; `body`, when given, is sent as JSON. Returns the HTTP status and the parsed JSON body
 * (null for an empty answer). Throws when the answer is not JSON.
 */
export async function weaviateCall(server: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(server.url.replace(/\/v1$/, "") + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : null };
}

/** The official weaviate-client (v3, default options) connected to a test server's REST port and gRPC port. */
export function connectWeaviate(server: TestServer): Promise<WeaviateClient> {
  return weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
}

/** Two API servers (a, b) sharing one fresh PostgreSQL database, each with a connected weaviate-client (ca, cb). */
export interface ServerPair {
  a: TestServer;
  b: TestServer;
  ca: WeaviateClient;
  cb: WeaviateClient;
  /** The shared database (its URL starts further servers on it). */
  db: { url: string; drop: () => Promise<void> };
  /** Closes both clients, both servers, then drops the database. */
  close: () => Promise<void>;
}

/**
 * Starts two API servers (gRPC on) on one fresh PostgreSQL database (support/postgres.ts) and connects a client to
 * each: the setup of every "another server's writes reach this one" test. Call only when postgresReachable() is true.
 * Throws what the first failing step threw, after closing what it had already started.
 */
export async function startServerPair(): Promise<ServerPair> {
  const db = await createTestDatabase();
  const opened: { a?: TestServer; b?: TestServer; ca?: WeaviateClient; cb?: WeaviateClient } = {};
  const close = async () => {
    await opened.ca?.close();
    await opened.cb?.close();
    await opened.a?.close();
    await opened.b?.close();
    await db.drop();
  };
  try {
    opened.a = await startServer({}, { grpcPort: 0, databaseUrl: db.url });
    opened.b = await startServer({}, { grpcPort: 0, databaseUrl: db.url });
    opened.ca = await connectWeaviate(opened.a);
    opened.cb = await connectWeaviate(opened.b);
  } catch (err) {
    await close().catch(() => undefined); // the setup error is the one worth reporting
    throw err;
  }
  return { a: opened.a, b: opened.b, ca: opened.ca, cb: opened.cb, db, close };
}
