-- The family of each expected task that reached its outcome in the last seven days
-- (`SETTLED_FAMILY_TTL`): a late callback of such a task that names no family (a
-- failure on the shared path) takes it, so it makes the key the settling poll made,
-- on every replica. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS suno_settled_tasks (
    task_id    TEXT   PRIMARY KEY,
    family     TEXT   NOT NULL,
    settled_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS suno_settled_tasks_settled_at ON suno_settled_tasks (settled_at);
