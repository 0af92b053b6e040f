-- gw-store schema, version 10: a late settlement corrects the row recovery wrote. Both
-- databases take this DDL as it is.
--
-- A reservation recovered at its estimate (its instance was taken for dead, or it was not
-- settled in time) gets a usage-log row with status `recovered`. When the request's real
-- settlement arrives after all, it looks that row up by reservation id, takes it out of the
-- log and the summary, and writes the real one: this partial index keeps that look-up cheap
-- however long the log grows, and costs nothing for ordinary rows.
CREATE INDEX usage_log_recovered ON usage_log (reservation_id) WHERE status = 'recovered';
