import { VENDOR_JOB_TABLES } from "./vendor-jobs.js";
/**
 * The webhook outbox (store/sqlite/webhook-outbox.ts): `webhook_events` is the queue of events of batches that ended,
 * written in the transaction that ends the batch; each is fanned out into `webhook_deliveries` (one per webhook URL),
 * whose attempts are logged in `webhook_attempts`. Times are unix ms.
 */
const WEBHOOK_TABLES = `
CREATE TABLE IF NOT EXISTS webhook_events (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  batch_id   TEXT NOT NULL,
  dialect    TEXT NOT NULL,
  type       TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE,
  event_id        TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  batch_id        TEXT NOT NULL,
  url             TEXT NOT NULL,
  body            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'pending',
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  created_at      INTEGER NOT NULL,
  UNIQUE (event_id, url)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_batch ON webhook_deliveries(batch_id, seq);
CREATE TABLE IF NOT EXISTS webhook_attempts (
  delivery_id     TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  attempted_at    INTEGER NOT NULL,
  status_code     INTEGER,
  error           TEXT,
  next_attempt_at INTEGER,
  PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
`;

/**
 * Changes to databases made by earlier versions, in order; `PRAGMA user_version` counts those applied.
 * A fresh database gets SCHEMA (already current) and skips them.
 */
export const MIGRATIONS: string[] = [
  `ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE batches ADD COLUMN name TEXT; ALTER TABLE batches ADD COLUMN description TEXT;`,
  `CREATE INDEX IF NOT EXISTS items_by_id ON request_items(batch_id, id)`,
  // OpenAI `output_expires_after.seconds`: how long the batch's output and error files live (null: until deleted).
  `ALTER TABLE batches ADD COLUMN output_expires_after INTEGER`,
  WEBHOOK_TABLES,
  // Native runs and vendor jobs (engine/native: batches run on a vendor's own batch API).
  VENDOR_JOB_TABLES,
  // Attempts to write a batch's result files, counted before each starts (engine/finalizer.ts gives up after a few).
  `ALTER TABLE batches ADD COLUMN finalize_attempts INTEGER NOT NULL DEFAULT 0`,
];

/** SQLite schema (WAL). `seq` columns give insertion order for cursor pagination; times are unix ms. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  owner      TEXT NOT NULL,
  filename   TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  bytes      INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);

-- The retention sweep finds expired files by this.
CREATE INDEX IF NOT EXISTS files_by_expiry ON files(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS batches (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  id                TEXT NOT NULL UNIQUE,
  dialect           TEXT NOT NULL,
  owner             TEXT NOT NULL,
  endpoint          TEXT NOT NULL,
  model             TEXT,
  provider          TEXT,
  provider_key      TEXT,
  input_file_id     TEXT,
  completion_window TEXT NOT NULL,
  status            TEXT NOT NULL,
  final_status      TEXT,
  errors            TEXT,
  output_file_id    TEXT,
  error_file_id     TEXT,
  metadata          TEXT,
  created_at        INTEGER NOT NULL,
  in_progress_at    INTEGER,
  expires_at        INTEGER NOT NULL,
  finalizing_at     INTEGER,
  completed_at      INTEGER,
  failed_at         INTEGER,
  expired_at        INTEGER,
  cancelling_at     INTEGER,
  cancelled_at      INTEGER,
  priority          INTEGER NOT NULL DEFAULT 0,
  name              TEXT,
  description       TEXT,
  output_expires_after INTEGER,
  finalize_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches(status, seq);

CREATE TABLE IF NOT EXISTS request_items (
  batch_id         TEXT NOT NULL,
  line             INTEGER NOT NULL,
  id               TEXT NOT NULL,
  custom_id        TEXT NOT NULL,
  body             TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'queued',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  status_code      INTEGER,
  request_id       TEXT,
  response_body    TEXT,
  error_code       TEXT,
  error_message    TEXT,
  input_tokens     INTEGER NOT NULL DEFAULT 0,
  cached_tokens    INTEGER NOT NULL DEFAULT 0,
  output_tokens    INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0,
  finished_at      INTEGER,
  PRIMARY KEY (batch_id, line),
  UNIQUE (batch_id, custom_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_state ON request_items(batch_id, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS items_by_id ON request_items(batch_id, id);

-- Live counters, changed in the same transaction as the items they count, so reading them is O(1).
CREATE TABLE IF NOT EXISTS batch_counts (
  batch_id         TEXT PRIMARY KEY,
  total            INTEGER NOT NULL DEFAULT 0,
  succeeded        INTEGER NOT NULL DEFAULT 0,
  failed           INTEGER NOT NULL DEFAULT 0,
  expired          INTEGER NOT NULL DEFAULT 0,
  cancelled        INTEGER NOT NULL DEFAULT 0,
  input_tokens     INTEGER NOT NULL DEFAULT 0,
  cached_tokens    INTEGER NOT NULL DEFAULT 0,
  output_tokens    INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
${WEBHOOK_TABLES}
${VENDOR_JOB_TABLES}`;
