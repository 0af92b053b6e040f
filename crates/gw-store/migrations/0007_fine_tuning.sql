-- gw-store schema, version 7: stored files (the training data of fine-tuning jobs, and the LoRAs
-- they produce) and fine-tuning jobs with their events. Both databases take this DDL as it is.
--
-- A fine-tuning job is kept exactly like a video job (0006): it owns the reservation its
-- submission was admitted with (reservation_id), recovery of a dead instance's reservations
-- leaves that alone while the job is not settled, and the job's end settles it once, in the same
-- transaction that sets `settled` (see gw-store's fine_tuning.rs).

-- A file's bytes are kept in the gateway's media storage under `storage_key`, or, for a file the
-- client hosts itself, fetched from `url`: exactly one of the two is set. A deleted file keeps
-- its row (jobs name it) with `deleted` set to the Unix milliseconds of its deletion.
CREATE TABLE files (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    purpose          TEXT NOT NULL,
    filename         TEXT NOT NULL,
    bytes            BIGINT NOT NULL,
    content_type     TEXT NOT NULL,
    storage_key      TEXT,
    url              TEXT,
    created_at       BIGINT NOT NULL,
    deleted          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX files_user ON files (user_id, created_at);

-- Statuses are OpenAI's: queued, running, succeeded, failed, cancelled. `hyperparameters` and
-- `metadata` are JSON objects (the provider options as sent, the client's metadata).
-- `weights_url` is the provider's temporary URL of the trained weights, recorded before they are
-- copied into the gateway's storage (`weights_key`, served as the file `result_file`), so that a
-- restart in between can copy them again.
CREATE TABLE fine_tuning_jobs (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    request_id       TEXT NOT NULL,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    provider_job_id  TEXT NOT NULL,
    status           TEXT NOT NULL,
    training_file    TEXT NOT NULL REFERENCES files (id),
    suffix           TEXT,
    trigger_word     TEXT,
    hyperparameters  TEXT NOT NULL,
    metadata         TEXT,
    weights_url      TEXT,
    weights_key      TEXT,
    result_file      TEXT REFERENCES files (id),
    fine_tuned_model TEXT,
    error_code       TEXT,
    error_message    TEXT,
    reservation_id   TEXT,
    estimate_nanos   BIGINT,
    cost_nanos       BIGINT,
    steps            BIGINT,
    retries          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    settled          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX fine_tuning_jobs_due ON fine_tuning_jobs (settled, lease_until);
CREATE INDEX fine_tuning_jobs_user ON fine_tuning_jobs (user_id, created_at);
CREATE INDEX fine_tuning_jobs_reservation ON fine_tuning_jobs (reservation_id);

-- `seq` numbers a job's events 1, 2, 3, ... in the order they were written (milliseconds can
-- tie); events are only written in a transaction that first updates the job's row, which
-- serialises them. The unique index both lists a job's events in order and refuses a duplicate.
CREATE TABLE fine_tuning_events (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES fine_tuning_jobs (id),
    created_at       BIGINT NOT NULL,
    level            TEXT NOT NULL,
    message          TEXT NOT NULL,
    seq              BIGINT NOT NULL
);
CREATE UNIQUE INDEX fine_tuning_events_job ON fine_tuning_events (job_id, seq);
