-- Log analyses kept per user: the report (JSON, already bounded by the analyzer: top
-- patterns, bounded histogram), never the log itself. Timestamps are UTC epoch ms.
CREATE TABLE log_analyses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    -- the uploaded file's name, or 'pasted text' / 'upload'; at most 255 characters
    name       TEXT    NOT NULL,
    -- 'json', 'raw', 'file' or 'text'
    source     TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    lines      INTEGER NOT NULL,
    -- ERROR + CRITICAL lines
    errors     INTEGER NOT NULL,
    -- JSON object of the non-zero level counts, so lists need not read the report
    levels     TEXT    NOT NULL,
    report     TEXT    NOT NULL
);
CREATE INDEX log_analyses_user ON log_analyses(user_id, id DESC);
