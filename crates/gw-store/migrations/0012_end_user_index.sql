-- gw-store schema, version 12: the end-user index holds only rows that name an end user. Both
-- databases take this DDL as it is.
--
-- Most requests carry no `user`, and every one of them added an entry to this index that no
-- read can use (usage reads filter by `end_user = $n`, which a partial index on `end_user IS
-- NOT NULL` serves): one index insert a request for nothing, in the writer's batches. On a
-- large existing log, the new index is built in one pass over it, with writes held meanwhile.
DROP INDEX usage_log_end_user;
CREATE INDEX usage_log_end_user ON usage_log (end_user, created_at) WHERE end_user IS NOT NULL;
