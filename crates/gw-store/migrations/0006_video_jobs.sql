-- gw-store schema, version 6: video jobs, kept so that a job outlives the process that
-- submitted it. Both databases take this DDL as it is.
--
-- A job owns the reservation its submission was admitted with (reservation_id): recovery of a
-- dead instance's reservations leaves it alone while the job is not settled, and the job's end
-- settles it once, in the same transaction that sets `settled` (see gw-store's jobs.rs).
CREATE TABLE video_jobs (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    request_id       TEXT NOT NULL,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    provider_job_id  TEXT NOT NULL,
    status           TEXT NOT NULL,
    progress         BIGINT,
    seconds          BIGINT,
    size             TEXT,
    resolution       TEXT,
    prompt           TEXT NOT NULL,
    output_url       TEXT,
    error_code       TEXT,
    error_message    TEXT,
    reservation_id   TEXT,
    estimate_nanos   BIGINT,
    cost_nanos       BIGINT,
    retries          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    completed_at     BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    settled          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX video_jobs_due ON video_jobs (settled, lease_until);
CREATE INDEX video_jobs_user ON video_jobs (user_id, created_at);
CREATE INDEX video_jobs_reservation ON video_jobs (reservation_id);
