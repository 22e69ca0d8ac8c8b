-- `Idempotency-Key` of `POST /logs/analyze`: a client that retries an upload after a
-- timeout gets the analysis it already stored back instead of a second one. The key lives
-- on the analysis row, so deleting the analysis frees the key; `body_sha256` is the
-- SHA-256 of the uploaded log, so reusing a key for another log is refused, not replayed.
ALTER TABLE log_analyses ADD COLUMN idempotency_key TEXT;
ALTER TABLE log_analyses ADD COLUMN body_sha256 TEXT;
-- One analysis per (user, key): two concurrent uploads with the same key store one row.
-- Partial, so analyses without a key cost the index nothing.
CREATE UNIQUE INDEX log_analyses_idempotency ON log_analyses(user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
