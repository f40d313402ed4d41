import type { Batch } from "../core/batch.js";

/**
 * A `batches` row as both stores read it (same columns in SQLite and PostgreSQL) → the Batch: the store-only columns
 * (`seq`, `provider_key`, `finalize_attempts`) left out, `errors` and `metadata` parsed from their JSON text.
 */
export function toBatch(row: Record<string, unknown>): Batch {
  const b = { ...row };
  delete b.seq;
  delete b.provider_key;
  delete b.finalize_attempts;
  b.errors = row.errors ? JSON.parse(row.errors as string) : null;
  b.metadata = row.metadata ? JSON.parse(row.metadata as string) : null;
  return b as unknown as Batch;
}
