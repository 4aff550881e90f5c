-- Checkpoints of the in-memory view (orchestrator/snapshot.h): a restart loads the newest one
-- whose events are committed and replays only the applied events after applied_seq. body is the
-- whole checkpoint, with its own version and checksum; the row is written in one statement.
CREATE TABLE checkpoints (
    applied_seq bigint PRIMARY KEY CHECK (applied_seq >= 0),
    outbox_seq bigint NOT NULL CHECK (outbox_seq >= 0),
    event_day bigint NOT NULL, -- the latest event time it covers, in days since the epoch (UTC)
    event_ms bigint NOT NULL,
    body bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
