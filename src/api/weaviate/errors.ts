import { CollectionError } from "../../collections/errors.js";
import { OpenBatchError } from "../../core/errors.js";

/** Weaviate's error body: `{"error":[{"message":…}]}`. */
export const weaviateError = (message: string) => ({ error: [{ message }] });

/** Renders any error in Weaviate's shape. @returns the HTTP status and body. */
export function renderWeaviateError(err: unknown): { status: number; body: unknown } {
  if (err instanceof CollectionError || err instanceof OpenBatchError) return { status: err.status, body: weaviateError(err.message) };
  const e = err as { statusCode?: number; message?: string };
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own 4xx (unparseable JSON, unsupported media type, body too large).
    return { status: e.statusCode, body: weaviateError(e.message ?? "Bad request") };
  }
  return { status: 500, body: weaviateError("internal server error") };
}

/** URL prefixes of the Weaviate dialect (errors under them are rendered in its shape). */
export const WEAVIATE_PATH = /^\/v1\/(schema|batch|objects|graphql|meta|nodes|cluster|backups|classifications|aliases|authz|users|replication|tokenize|modules|\.well-known)(\/|\?|$)/;
