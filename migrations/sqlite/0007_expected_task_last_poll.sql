-- What the last poll of each expected task got, for the operator's console: a short
-- line the reconciler writes ("pending: nothing to deliver yet", "request failed: …")
-- and when (Unix milliseconds). Both are NULL until the task's first poll.
ALTER TABLE suno_expected_tasks ADD COLUMN last_poll TEXT;
ALTER TABLE suno_expected_tasks ADD COLUMN last_polled_at INTEGER;
