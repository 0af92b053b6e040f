-- gw-store schema, version 3: usage counters become one row per (user, period, counter), the
-- counter named as plans, quota errors and fixtures name it (`text_tokens`, `cost_usd`, ...), so a
-- new modality adds rows, not columns. A counter without a row is zero, so zeros are not copied.
-- Money stays BIGINT nano-USD (the old `cost_nanos` column becomes the `cost_usd` row).

CREATE TABLE usage_counters_v3 (
    user_id     TEXT NOT NULL REFERENCES users (id),
    period      TEXT NOT NULL,
    counter     TEXT NOT NULL,
    value       BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT usage_counters_row PRIMARY KEY (user_id, period, counter)
);

INSERT INTO usage_counters_v3 (user_id, period, counter, value, updated_at)
          SELECT user_id, period, 'text_requests',   text_requests,   updated_at FROM usage_counters WHERE text_requests   <> 0
UNION ALL SELECT user_id, period, 'text_tokens',     text_tokens,     updated_at FROM usage_counters WHERE text_tokens     <> 0
UNION ALL SELECT user_id, period, 'image_requests',  image_requests,  updated_at FROM usage_counters WHERE image_requests  <> 0
UNION ALL SELECT user_id, period, 'image_units',     image_units,     updated_at FROM usage_counters WHERE image_units     <> 0
UNION ALL SELECT user_id, period, 'video_requests',  video_requests,  updated_at FROM usage_counters WHERE video_requests  <> 0
UNION ALL SELECT user_id, period, 'video_units',     video_units,     updated_at FROM usage_counters WHERE video_units     <> 0
UNION ALL SELECT user_id, period, 'audio_requests',  audio_requests,  updated_at FROM usage_counters WHERE audio_requests  <> 0
UNION ALL SELECT user_id, period, 'audio_units',     audio_units,     updated_at FROM usage_counters WHERE audio_units     <> 0
UNION ALL SELECT user_id, period, 'search_requests', search_requests, updated_at FROM usage_counters WHERE search_requests <> 0
UNION ALL SELECT user_id, period, 'search_units',    search_units,    updated_at FROM usage_counters WHERE search_units    <> 0
UNION ALL SELECT user_id, period, 'cost_usd',        cost_nanos,      updated_at FROM usage_counters WHERE cost_nanos      <> 0;

DROP TABLE usage_counters;
ALTER TABLE usage_counters_v3 RENAME TO usage_counters;
