import type { StoredObject } from "./collection-store.js";

// How a collection object's row is written and read, the same in SQLite and PostgreSQL: the default vector as a
// BLOB/BYTEA of float32 bytes, named vectors as JSON text, properties as JSON text.

/** A stored row as the driver returns it. */
export type Row = Record<string, unknown>;

/** A Float32 vector as bytes (little-endian, as the platform stores it); null for none. */
export const toBlob = (v: Float32Array | null) => (v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null);

/** The Float32 vector of stored bytes (a copy); null for none. */
export function fromBlob(b: unknown): Float32Array | null {
  if (!b) return null;
  const buf = b as Buffer;
  // Copy: a Buffer's offset need not be 4-aligned.
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

/** Named vectors as stored: JSON of name → base64 float32 bytes; null for none. */
export function toNamed(v: Record<string, Float32Array> | null | undefined): string | null {
  if (!v || Object.keys(v).length === 0) return null;
  return JSON.stringify(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toBlob(x)!.toString("base64")])));
}

/** The named vectors of their stored JSON text; null for none. */
export function fromNamed(text: unknown): Record<string, Float32Array> | null {
  if (typeof text !== "string" || !text) return null;
  const parsed = JSON.parse(text) as Record<string, string>;
  return Object.fromEntries(Object.entries(parsed).map(([k, b64]) => [k, fromBlob(Buffer.from(b64, "base64"))!]));
}

/** The names of the named vectors in their stored JSON text, without decoding them. */
export const namedKeys = (text: unknown): string[] => (typeof text === "string" && text ? Object.keys(JSON.parse(text) as object) : []);

/** A collection object of its row (selected with `COLUMNS`). */
export function toObject(row: Row): StoredObject {
  return {
    seq: row.seq as number,
    class: row.class as string,
    id: row.id as string,
    properties: JSON.parse(row.properties as string) as Record<string, unknown>,
    vector: fromBlob(row.vector),
    vectors: fromNamed(row.vectors),
    created_at: row.created_at as number,
    updated_at: row.updated_at as number,
  };
}

/** The select list of an object row; without vectors they come back NULL (cheaper for listings that skip them). */
export const COLUMNS = (withVectors: boolean) => `seq, class, id, properties, ${withVectors ? "vector, vectors" : "NULL AS vector, NULL AS vectors"}, created_at, updated_at`;
