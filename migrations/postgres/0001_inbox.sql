-- The inbox: one row per stored callback, keyed like the dedup store.
-- Times are Unix milliseconds of the database server's clock.
CREATE TABLE IF NOT EXISTS suno_inbox_events (
    id          BIGSERIAL PRIMARY KEY,
    task_id     TEXT     NOT NULL,
    family      TEXT     NOT NULL DEFAULT '',
    stage       TEXT     NOT NULL,
    outcome     TEXT     NOT NULL,
    body        BYTEA    NOT NULL,
    -- pending | running | done | dead
    state       TEXT     NOT NULL DEFAULT 'pending',
    attempts    INTEGER  NOT NULL DEFAULT 0,
    received_at BIGINT   NOT NULL,
    -- pending: when it may run; running: when its lease ends.
    run_after   BIGINT   NOT NULL,
    lease_token TEXT,
    finished_at BIGINT,
    last_error  TEXT,
    CONSTRAINT suno_inbox_events_key UNIQUE (task_id, family, stage, outcome)
);

CREATE INDEX IF NOT EXISTS suno_inbox_events_due
    ON suno_inbox_events (run_after, id) WHERE state IN ('pending', 'running');

CREATE INDEX IF NOT EXISTS suno_inbox_events_finished
    ON suno_inbox_events (finished_at) WHERE state IN ('done', 'dead');
