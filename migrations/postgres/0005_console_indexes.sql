-- The operator's filters (the console and the command-line tool): events of one state
-- or one family newest first, and events by time received. With these each filter
-- reads one index range, newest first, and stops after a page. On a large table
-- the migration holds off writes while it builds them (seconds per million rows).
CREATE INDEX IF NOT EXISTS suno_inbox_events_state_id ON suno_inbox_events (state, id);
CREATE INDEX IF NOT EXISTS suno_inbox_events_family_id ON suno_inbox_events (family, id);
-- State and family together (the dead events of one family) without reading the
-- whole state.
CREATE INDEX IF NOT EXISTS suno_inbox_events_state_family_id
    ON suno_inbox_events (state, family, id);
CREATE INDEX IF NOT EXISTS suno_inbox_events_received ON suno_inbox_events (received_at);
