-- A batch writes each output message once, and marks its delivery with a narrow row.
--
-- Revisions are no longer copied into a table of their own: they are the allocations topic's
-- outbox rows, read by order through an index. order_revisions stays, as a view, for
-- operators' queries.
DROP TABLE order_revisions;
CREATE INDEX outbox_allocations ON outbox (key, seq) WHERE topic = 2;
CREATE VIEW order_revisions AS
    SELECT convert_from(key, 'UTF8') AS order_id,
           (convert_from(value, 'UTF8')::json ->> 'revision')::integer AS revision,
           convert_from(value, 'UTF8')::json ->> 'status' AS status,
           convert_from(value, 'UTF8') AS body,
           created_at
    FROM outbox WHERE topic = 2;

-- Confirmed deliveries: the topic offset of each outbox message the broker confirmed. Marking
-- them used to rewrite every outbox row.
CREATE TABLE deliveries (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    "offset" bigint NOT NULL CHECK ("offset" >= 0),
    delivered_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO deliveries (seq, "offset", delivered_at)
    SELECT seq, delivered_offset, COALESCE(delivered_at, now()) FROM outbox
    WHERE delivered_offset IS NOT NULL;
ALTER TABLE outbox DROP COLUMN delivered_offset, DROP COLUMN delivered_at;

-- Every message of an instance below this seq is confirmed (or was adopted by another): what
-- it may still have to send is at or above it, so finding that reads only the outbox's end.
ALTER TABLE instances ADD COLUMN unconfirmed_from bigint NOT NULL DEFAULT 0;

-- For operators: every outbox message with its delivery, if confirmed.
CREATE VIEW outbox_deliveries AS
    SELECT o.seq, o.topic, o.partition, o.key, o.value, o.headers, o.instance, o.created_at,
           d."offset" AS delivered_offset, d.delivered_at
    FROM outbox o LEFT JOIN deliveries d USING (seq);
