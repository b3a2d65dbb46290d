-- The route each expected task was created through: `classic` (one endpoint per
-- family, polled at the family's record-info) or `jobs` (`/api/v1/jobs/createTask`,
-- polled at `/api/v1/jobs/recordInfo`). Rows registered before are classic.
ALTER TABLE suno_expected_tasks ADD COLUMN IF NOT EXISTS route TEXT NOT NULL DEFAULT 'classic';
