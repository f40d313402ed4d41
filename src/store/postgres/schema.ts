/**
 * The PostgreSQL schema, as numbered migrations: `openbatch_schema` records the highest applied, and `migrate`
 * (postgres-store.ts) applies the rest at start-up under an advisory lock, so many processes starting at once against
 * one database migrate it once. Column names and meanings follow the SQLite schema (store/sqlite/schema.ts); times are
 * unix ms in BIGINT (read back as numbers). Tables only PostgreSQL has: `workers` (heartbeats), `blob_writes` +
 * `blob_chunks` (file bytes), `provider_pauses` (shared rate-limit pauses), `provider_slots` (the shared send schedule) and `openbatch_settings` (the key vault's
 * secret when OPENBATCH_SECRET is not set).
 */
export const PG_MIGRATIONS: string[] = [
  // 1: everything the SQLite store has.
  `
CREATE TABLE files (
  seq        BIGSERIAL PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  owner      TEXT NOT NULL,
  filename   TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  bytes      BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT
);
CREATE INDEX files_by_expiry ON files(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE batches (
  seq               BIGSERIAL PRIMARY KEY,
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
  created_at        BIGINT NOT NULL,
  in_progress_at    BIGINT,
  expires_at        BIGINT NOT NULL,
  finalizing_at     BIGINT,
  completed_at      BIGINT,
  failed_at         BIGINT,
  expired_at        BIGINT,
  cancelling_at     BIGINT,
  cancelled_at      BIGINT,
  priority          INTEGER NOT NULL DEFAULT 0,
  name              TEXT,
  description       TEXT,
  output_expires_after BIGINT,
  finalize_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batches_by_status ON batches(status, seq);

CREATE TABLE request_items (
  batch_id         TEXT NOT NULL,
  line             INTEGER NOT NULL,
  id               TEXT NOT NULL,
  custom_id        TEXT NOT NULL,
  body             TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'queued',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  BIGINT NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_at BIGINT,
  status_code      INTEGER,
  request_id       TEXT,
  response_body    TEXT,
  error_code       TEXT,
  error_message    TEXT,
  input_tokens     BIGINT NOT NULL DEFAULT 0,
  cached_tokens    BIGINT NOT NULL DEFAULT 0,
  output_tokens    BIGINT NOT NULL DEFAULT 0,
  reasoning_tokens BIGINT NOT NULL DEFAULT 0,
  finished_at      BIGINT,
  PRIMARY KEY (batch_id, line),
  UNIQUE (batch_id, custom_id)
);
-- The claim query walks this: only queued items, in the order they are handed out.
CREATE INDEX items_queued ON request_items(batch_id, next_attempt_at, line) WHERE state = 'queued';
-- Leases of a dead worker are found by owner (migration 5 replaces this and the next two).
CREATE INDEX items_leased ON request_items(lease_owner) WHERE state = 'in_flight';
CREATE INDEX items_unfinished ON request_items(batch_id, line) WHERE state IN ('queued', 'in_flight');
CREATE INDEX items_by_id ON request_items(batch_id, id);

CREATE TABLE batch_counts (
  batch_id         TEXT PRIMARY KEY,
  total            BIGINT NOT NULL DEFAULT 0,
  succeeded        BIGINT NOT NULL DEFAULT 0,
  failed           BIGINT NOT NULL DEFAULT 0,
  expired          BIGINT NOT NULL DEFAULT 0,
  cancelled        BIGINT NOT NULL DEFAULT 0,
  input_tokens     BIGINT NOT NULL DEFAULT 0,
  cached_tokens    BIGINT NOT NULL DEFAULT 0,
  output_tokens    BIGINT NOT NULL DEFAULT 0,
  reasoning_tokens BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE webhook_events (
  seq        BIGSERIAL PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  batch_id   TEXT NOT NULL,
  dialect    TEXT NOT NULL,
  type       TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE webhook_deliveries (
  seq             BIGSERIAL PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  event_id        TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  batch_id        TEXT NOT NULL,
  url             TEXT NOT NULL,
  body            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'pending',
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  created_at      BIGINT NOT NULL,
  UNIQUE (event_id, url)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_batch ON webhook_deliveries(batch_id, seq);
CREATE TABLE webhook_attempts (
  delivery_id     TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  attempted_at    BIGINT NOT NULL,
  status_code     INTEGER,
  error           TEXT,
  next_attempt_at BIGINT,
  PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE native_runs (
  batch_id      TEXT PRIMARY KEY,
  requested     TEXT,
  mode          TEXT,
  held          BOOLEAN NOT NULL DEFAULT false,
  decided_at    BIGINT,
  input_tokens  BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE vendor_jobs (
  seq              BIGSERIAL PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  batch_id         TEXT NOT NULL,
  chunk            INTEGER NOT NULL,
  provider         TEXT NOT NULL,
  vendor           TEXT NOT NULL,
  endpoint         TEXT NOT NULL,
  first_line       INTEGER NOT NULL,
  last_line        INTEGER NOT NULL,
  requests         INTEGER NOT NULL,
  bytes            BIGINT NOT NULL,
  state            TEXT NOT NULL,
  vendor_file_id   TEXT,
  vendor_id        TEXT,
  vendor_status    TEXT,
  outcome          TEXT,
  result_ref       TEXT,
  failure          TEXT,
  cancel_requested BOOLEAN NOT NULL DEFAULT false,
  errors           INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT,
  next_attempt_at  BIGINT NOT NULL DEFAULT 0,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  UNIQUE (batch_id, chunk)
);
CREATE INDEX vendor_jobs_open ON vendor_jobs(state, seq);
`,
  // 2: what only the shared store needs.
  `
-- One row per dispatching process (its lease owner id): a row whose last_seen is older than the dead-after time is a
-- dead worker, whose leases any live process returns to the queue.
CREATE TABLE workers (
  id         TEXT PRIMARY KEY,
  providers  TEXT[] NOT NULL DEFAULT '{}',
  started_at BIGINT NOT NULL,
  last_seen  BIGINT NOT NULL
);

-- File bytes: one row per write (its random key), its bytes in chunks of at most 256 KiB, so neither a write nor a
-- read ever holds a whole file. A write becomes blob \`id\` on commit (the blob's earlier write, if any, goes in the
-- same transaction); a row without an id is a write still going on, or one a dead process left.
CREATE TABLE blob_writes (
  key        TEXT PRIMARY KEY,
  id         TEXT UNIQUE,
  bytes      BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
  key   TEXT NOT NULL REFERENCES blob_writes(key) ON DELETE CASCADE,
  n     INTEGER NOT NULL,
  start BIGINT NOT NULL,
  data  BYTEA NOT NULL,
  PRIMARY KEY (key, n)
);

-- The pause of a provider shared by every worker that has it: a 429 with Retry-After (or an exhausted remaining)
-- seen by one worker pauses them all, not only the one told.
CREATE TABLE provider_pauses (
  provider     TEXT PRIMARY KEY,
  paused_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE openbatch_settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`,
  // 3: what the vendor reports of a running native job (requests finished so far), until its results are recorded.
  `
CREATE TABLE vendor_job_progress (
  job_id    TEXT PRIMARY KEY,
  batch_id  TEXT NOT NULL,
  completed BIGINT NOT NULL DEFAULT 0,
  failed    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX vendor_job_progress_by_batch ON vendor_job_progress(batch_id);
`,
  // 4: one send schedule per provider shared by every worker (store/postgres/budgets.ts reserveSlot): the first free
  // slot, unix ms on the database's clock.
  `
CREATE TABLE provider_slots (
  provider TEXT PRIMARY KEY,
  next_at  DOUBLE PRECISION NOT NULL
);
`,
  // 5: fewer indexes on request_items. A claim and an outcome each write a new row version that every index takes an
  // entry for (a state change is never a HOT update), so each index cost every item three insertions. In-flight items
  // (few: the workers' concurrency) get one index that serves lease expiry, dead workers' leases and hasUnfinished;
  // an item's id carries its line (store/item-ids.ts), so lineOfItem reads the primary key. Measured only together
  // with the claims ahead of engine/dispatcher.ts (its figures); this part alone was within the runs' noise.
  `
CREATE INDEX items_in_flight ON request_items(batch_id, lease_expires_at) WHERE state = 'in_flight';
DROP INDEX items_leased;
DROP INDEX items_unfinished;
DROP INDEX items_by_id;
`,
];
