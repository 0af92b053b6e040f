-- gw-store schema, version 8: requests answered from the gateway's response cache. Both
-- databases take this DDL as it is.
--
-- A usage-log row says how its request was answered from the cache (`cache_hit`: NULL for no
-- hit, `exact` or `semantic`) and what the cached answer had cost when it was made
-- (`cost_saved_nanos`: NULL unless a hit whose original answer was priced). The `cached` column
-- stays, 1 for a hit, for readers of the older schema. No earlier version wrote a hit, so there
-- is nothing to fill in.
ALTER TABLE usage_log ADD COLUMN cache_hit TEXT;
ALTER TABLE usage_log ADD COLUMN cost_saved_nanos BIGINT;

-- The summary counts the hits and adds up what they saved.
ALTER TABLE usage_summary ADD COLUMN cached_requests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_summary ADD COLUMN cost_saved_nanos BIGINT NOT NULL DEFAULT 0;
