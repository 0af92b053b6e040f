-- gw-store schema, version 4: each usage-log row keeps the caller's end user (OpenAI's `user`)
-- and its tags (OpenAI's `metadata`, a JSON object of strings), and every tag is also a row of
-- usage_log_tags, so usage reads can filter by tag on SQLite and PostgreSQL alike, by index.

ALTER TABLE usage_log ADD COLUMN end_user TEXT;
ALTER TABLE usage_log ADD COLUMN metadata TEXT;

CREATE TABLE usage_log_tags (
    request_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    tag_value   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX usage_log_tags_tag ON usage_log_tags (tag_key, tag_value, created_at);
CREATE INDEX usage_log_tags_request ON usage_log_tags (request_id, user_id);
CREATE INDEX usage_log_end_user ON usage_log (end_user, created_at);
