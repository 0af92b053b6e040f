-- gw-store schema, version 1: the tables both databases declare alike.
-- Times are unix milliseconds (BIGINT); money is BIGINT nano-USD; flags are BIGINT 0/1, because
-- sqlx's Any driver reads neither SQLite's BOOLEAN nor PostgreSQL's NUMERIC.

-- The end users of the gateway and the plan each is on.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Gateway keys. Only the SHA-256 of a key is kept (hex), plus a short prefix to recognise it by.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- What each user has used (settled plus reserved) in each billing period: the numbers plan
-- limits are checked against. Admission updates a row with a conditional UPDATE, which is the
-- whole of the concurrency control.
CREATE TABLE usage_counters (
    user_id          TEXT NOT NULL REFERENCES users (id),
    period           TEXT NOT NULL,
    text_requests    BIGINT NOT NULL DEFAULT 0,
    text_tokens      BIGINT NOT NULL DEFAULT 0,
    image_requests   BIGINT NOT NULL DEFAULT 0,
    image_units      BIGINT NOT NULL DEFAULT 0,
    video_requests   BIGINT NOT NULL DEFAULT 0,
    video_units      BIGINT NOT NULL DEFAULT 0,
    audio_requests   BIGINT NOT NULL DEFAULT 0,
    audio_units      BIGINT NOT NULL DEFAULT 0,
    search_requests  BIGINT NOT NULL DEFAULT 0,
    search_units     BIGINT NOT NULL DEFAULT 0,
    cost_nanos       BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (user_id, period)
);

-- Gateway processes, so that the reservations of one that died can be told from live ones.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- Estimates counted at admission and not settled yet. cost_nanos is NULL for an unpriced model.
CREATE TABLE reservations (
    id           TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id),
    period       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    modality     TEXT NOT NULL,
    operation    TEXT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    units        BIGINT NOT NULL,
    cost_nanos   BIGINT,
    instance_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX reservations_instance ON reservations (instance_id);

-- Totals of usage_log per user, period, provider, model and modality, upserted with every row.
CREATE TABLE usage_summary (
    user_id              TEXT NOT NULL,
    period               TEXT NOT NULL,
    provider             TEXT NOT NULL,
    model                TEXT NOT NULL,
    modality             TEXT NOT NULL,
    requests             BIGINT NOT NULL,
    errors               BIGINT NOT NULL,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    cached_input_tokens  BIGINT NOT NULL,
    reasoning_tokens     BIGINT NOT NULL,
    units                BIGINT NOT NULL,
    cost_nanos           BIGINT NOT NULL,
    unpriced             BIGINT NOT NULL,
    estimated            BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (user_id, period, provider, model, modality)
);
