-- Revision bodies are written by omo's own JSON writer: stored as text, the database need not
-- parse every one again on the hot path. GET /orders/{id} returns them as they are.
ALTER TABLE order_revisions ALTER COLUMN body TYPE text;
