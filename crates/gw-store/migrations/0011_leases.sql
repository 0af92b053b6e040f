-- gw-store schema, version 11: leases, the part of a user's allowance an instance admits from
-- in memory. Both databases take this DDL as it is.
--
-- An instance with a journal admits from what it holds here without a database round trip (see
-- `ledger.rs`). A row is what instance `instance_id` holds of counter `counter` of (user,
-- period): granted in the same transaction that checked the counter and every lease of it
-- against the plan's limit, so `usage_counters.value` plus the leases of a counter never pass
-- the limit. An admission from a lease moves its estimate from the lease to the counter when its
-- reservation is written; what the instance did not use goes back when it lets the lease go, and
-- the leases of an instance that stopped beating its heartbeat are deleted by recovery.
CREATE TABLE leases (
    instance_id  TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    period       TEXT NOT NULL,
    counter      TEXT NOT NULL,
    held         BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT leases_row PRIMARY KEY (instance_id, user_id, period, counter)
);
CREATE INDEX leases_counter ON leases (user_id, period, counter);

-- An instance that cannot admit because other instances' leases hold what is left says so
-- here; the others give their leases of that (user, period) back within their next tick, and
-- while a want is fresh, top-ups take only what a request lacks, so the last units of an
-- allowance are not left on one instance while another refuses.
CREATE TABLE lease_wants (
    user_id      TEXT NOT NULL,
    period       TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    wanted_at    BIGINT NOT NULL,
    CONSTRAINT lease_wants_row PRIMARY KEY (user_id, period, instance_id)
);
CREATE INDEX lease_wants_at ON lease_wants (wanted_at);
