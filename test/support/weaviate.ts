import weaviate, { type WeaviateClient } from "weaviate-client";
import type { TestServer } from "./harness.js";

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
