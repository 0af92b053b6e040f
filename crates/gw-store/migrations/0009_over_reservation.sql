-- gw-store schema, version 9: settlements that went past what admission reserved. Both
-- databases take this DDL as it is.
--
-- A provider may ignore the bound a request set (its `max_tokens`, a media length): the real
-- usage is still charged, and the usage-log row says so (`over_reservation`: 1 when the settled
-- tokens or units passed the reserved ones, or the cost passed the reserved cost when both are
-- known; 0 otherwise, and always 0 for a row recovered at its reservation). No earlier version
-- kept the reservation once settled, so rows written before read as 0.
ALTER TABLE usage_log ADD COLUMN over_reservation BIGINT NOT NULL DEFAULT 0;

-- The summary counts those rows.
ALTER TABLE usage_summary ADD COLUMN over_reservation BIGINT NOT NULL DEFAULT 0;
