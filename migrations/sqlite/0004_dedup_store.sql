-- The dedup store (`SqliteStore`): one row per claimed or completed dedup key, and
-- one per bound signature. Keys and signatures are SHA-256 digests, so no input
-- costs more than a fixed-size row. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS suno_dedup_keys (
    -- SHA-256 of the dedup key's canonical bytes.
    key        BLOB    PRIMARY KEY,
    -- The claim's token (16 bytes) while claimed; NULL once done.
    token      BLOB,
    -- Claimed: when the lease ends. Done: when the key is forgotten.
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Pruning takes the expired rows oldest first, in small batches.
CREATE INDEX IF NOT EXISTS suno_dedup_keys_expires ON suno_dedup_keys (expires_at);

CREATE TABLE IF NOT EXISTS suno_signature_bindings (
    -- SHA-256 of the signed task id and timestamp.
    signature  BLOB    PRIMARY KEY,
    -- SHA-256 of the use the signature is bound to.
    bound_use  BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS suno_signature_bindings_expires
    ON suno_signature_bindings (expires_at);
