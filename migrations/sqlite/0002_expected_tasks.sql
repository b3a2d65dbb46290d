-- The tasks the application expects an outcome for (the reconciler's registry).
-- Times are Unix milliseconds of the registering process's clock.
CREATE TABLE IF NOT EXISTS suno_expected_tasks (
    task_id       TEXT    PRIMARY KEY NOT NULL,
    family        TEXT    NOT NULL,
    registered_at INTEGER NOT NULL,
    -- When it is next due. A process that takes it moves it a lease ahead.
    due_at        INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS suno_expected_tasks_due ON suno_expected_tasks (due_at);
