-- gw-store schema, version 5: a counter bumped by every change that must reach each replica's
-- caches at once (a key revoked, a user's plan changed); replicas poll it.

CREATE TABLE auth_changes (
    id     INTEGER PRIMARY KEY,
    epoch  BIGINT NOT NULL
);
INSERT INTO auth_changes (id, epoch) VALUES (1, 0);
