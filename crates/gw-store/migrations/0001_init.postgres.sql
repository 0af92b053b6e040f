-- gw-store schema, version 1, PostgreSQL part: only the generated key of usage_log differs.

-- One row per request that reached admission (status ok, an error kind, or recovered).
CREATE TABLE usage_log (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id           TEXT NOT NULL,
    reservation_id       TEXT,
    user_id              TEXT NOT NULL,
    period               TEXT NOT NULL,
    provider             TEXT NOT NULL,
    model                TEXT NOT NULL,
    modality             TEXT NOT NULL,
    operation            TEXT NOT NULL,
    status               TEXT NOT NULL,
    error_message        TEXT,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    cached_input_tokens  BIGINT NOT NULL,
    reasoning_tokens     BIGINT NOT NULL,
    units                BIGINT NOT NULL,
    cost_nanos           BIGINT,
    pricing_version      TEXT,
    estimated            BIGINT NOT NULL,
    billable             BIGINT NOT NULL,
    latency_ms           BIGINT,
    ttft_ms              BIGINT,
    retries              BIGINT NOT NULL,
    cached               BIGINT NOT NULL,
    created_at           BIGINT NOT NULL
);
CREATE INDEX usage_log_user_time ON usage_log (user_id, created_at);
CREATE INDEX usage_log_time ON usage_log (created_at);
