-- omo: the service's state. PostgreSQL is the source of truth: every batch of applied input
-- events is committed in one transaction with the input positions it came from, the output
-- messages it produced (the outbox) and the rows it changed. Replaying applied_events through
-- the engine rebuilds the in-memory view exactly; the other tables serve operators and HTTP.
--
-- Topics are numbered as in orchestrator/bus.h: 0 orders, 1 stock, 2 allocations,
-- 3 shipments, 4 dead letter.

-- Migrations applied so far (the runner creates it before the first migration, too).
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Input events in apply order. value is bytea: a refused event is kept as it arrived, valid
-- UTF-8 or not. A NULL value is a Kafka message without one.
CREATE TABLE applied_events (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    topic smallint NOT NULL CHECK (topic >= 0),
    partition integer NOT NULL CHECK (partition >= 0),
    "offset" bigint NOT NULL CHECK ("offset" >= 0),
    value bytea,
    rules_version text,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Where to resume reading each input partition.
CREATE TABLE input_positions (
    topic smallint NOT NULL CHECK (topic >= 0),
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Output messages, written in the same transaction as the change that produced them, and
-- marked with their topic offset once the broker confirms them. headers holds name, value
-- pairs flattened: {name1,value1,name2,value2}. Nothing but the pending index may mention
-- delivered_offset: marking 2,000 rows delivered is the costliest statement of a batch.
CREATE TABLE outbox (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    topic smallint NOT NULL CHECK (topic >= 0),
    partition integer NOT NULL CHECK (partition >= 0),
    key bytea,
    value bytea,
    headers text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_offset bigint CHECK (delivered_offset >= 0),
    delivered_at timestamptz
);

-- What is still to send, in seq order.
CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered_offset IS NULL;

-- For each output partition, one past the highest offset confirmed for an outbox message:
-- where reading the partition back after a crash starts. Kept with the delivery marks.
CREATE TABLE output_positions (
    topic smallint NOT NULL CHECK (topic >= 0),
    partition integer NOT NULL CHECK (partition >= 0),
    confirmed_end bigint NOT NULL CHECK (confirmed_end >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Every revision of every order's allocation, as sent on the allocations topic. json keeps the
-- body byte for byte.
CREATE TABLE order_revisions (
    order_id text NOT NULL,
    revision integer NOT NULL CHECK (revision >= 1),
    status text NOT NULL,
    body json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);

-- The current stock of every node and SKU, as the engine holds it.
CREATE TABLE stock (
    node_id text NOT NULL,
    sku text NOT NULL,
    on_hand bigint NOT NULL,
    reserved bigint NOT NULL,
    bin text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, sku)
);

-- Every rules version that was ever live, by the hash allocations name it with.
CREATE TABLE rules_versions (
    hash text PRIMARY KEY,
    text text NOT NULL,
    went_live timestamptz NOT NULL DEFAULT now(),
    "by" text NOT NULL DEFAULT ''
);

-- Shipments and where each is in its life: allocated -> picked -> shipped | collected,
-- or -> short, or -> cancelled.
CREATE TABLE shipments (
    shipment_id text PRIMARY KEY,
    order_id text NOT NULL,
    node_id text NOT NULL,
    state text NOT NULL
        CHECK (state IN ('allocated', 'picked', 'shipped', 'collected', 'short', 'cancelled')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shipments_order ON shipments (order_id);
-- A store's open picks.
CREATE INDEX shipments_open ON shipments (node_id, updated_at) WHERE state = 'allocated';

-- Each status a shipment reached, once, with the message that announced it.
CREATE TABLE shipment_status_history (
    shipment_id text NOT NULL REFERENCES shipments (shipment_id),
    status text NOT NULL
        CHECK (status IN ('allocated', 'picked', 'shipped', 'collected', 'short', 'cancelled')),
    at timestamptz NOT NULL DEFAULT now(),
    body json,
    PRIMARY KEY (shipment_id, status)
);
