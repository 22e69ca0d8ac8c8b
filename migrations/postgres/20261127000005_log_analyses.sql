-- Log analyses kept per user: the report (JSON, already bounded by the analyzer: top
-- patterns, bounded histogram), never the log itself. Timestamps are UTC epoch ms.
CREATE TABLE log_analyses (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    -- the uploaded file's name, or 'pasted text' / 'upload'; at most 255 characters
    name       TEXT    NOT NULL,
    -- 'json', 'raw', 'file' or 'text'
    source     TEXT    NOT NULL,
    bytes      BIGINT  NOT NULL,
    lines      BIGINT  NOT NULL,
    -- ERROR + CRITICAL lines
    errors     BIGINT  NOT NULL,
    -- JSON object of the non-zero level counts, so lists need not read the report
    levels     TEXT    NOT NULL,
    report     TEXT    NOT NULL
);
CREATE INDEX log_analyses_user ON log_analyses(user_id, id DESC);
