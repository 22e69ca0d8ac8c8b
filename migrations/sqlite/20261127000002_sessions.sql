-- Dashboard sessions: bumping a user's epoch ends all their sessions on every replica.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
