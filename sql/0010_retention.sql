-- Retention (contract section 11): the append-only tables are partitioned by seq range, so that
-- history older than state.retain_days leaves as whole partitions dropped, never as rows deleted
-- in bulk (no dead tuples, no vacuum after it). seq_partitions lists each table's partitions;
-- omo_partitions_ensure makes them ahead of the seqs in use and omo_partitions_drop drops those
-- wholly below a seq (called by the janitor, orchestrator/janitor.c). The rows there before
-- this migration become each table's first partition.
DROP VIEW order_revisions;
DROP VIEW outbox_deliveries;

CREATE TABLE seq_partitions (
    tbl text NOT NULL,
    name text PRIMARY KEY,
    lo bigint NOT NULL, -- seqs lo <= seq < hi
    hi bigint NOT NULL,
    size bigint NOT NULL -- the range of the partitions made after it
);

DO $$
DECLARE
    t record;
    top bigint;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('applied_events', 500000::bigint), ('outbox', 100000::bigint),
                                   ('deliveries', 100000::bigint)) AS v(tbl, size) LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t.tbl, t.tbl || '_p0');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
                       'PARTITION BY RANGE (seq)', t.tbl, t.tbl || '_p0');
        EXECUTE format('SELECT COALESCE(max(seq), 0) + 1 FROM %I', t.tbl || '_p0') INTO top;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%s)',
                       t.tbl, t.tbl || '_p0', top);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (seq)', t.tbl);
        INSERT INTO seq_partitions VALUES (t.tbl, t.tbl || '_p0', 0, top, t.size);
    END LOOP;
END $$;

CREATE INDEX outbox_allocations_by_key ON outbox (key, seq) WHERE topic = 2;
CREATE INDEX outbox_statuses_by_key ON outbox (key, seq) WHERE topic = 3;

-- Messages of orders still open when the partition holding them was dropped: GET /orders/{id}
-- answers for an open order however old, and forgets it once it is finished.
CREATE TABLE kept_messages (
    seq bigint PRIMARY KEY,
    topic smallint NOT NULL,
    key bytea,
    value bytea
);
CREATE INDEX kept_messages_by_key ON kept_messages (key, seq);

CREATE FUNCTION omo_partitions_ensure(t text, upto bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
    step bigint;
    made integer := 0;
BEGIN
    -- One maker at a time (a service starting, a janitor, a commit that outran them).
    PERFORM pg_advisory_xact_lock(8029195955916075636); -- "omo.part"
    SELECT hi, size INTO top, step FROM seq_partitions WHERE tbl = t ORDER BY hi DESC LIMIT 1;
    WHILE top <= upto LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                       t || '_p' || top, t, top, top + step);
        INSERT INTO seq_partitions VALUES (t, t || '_p' || top, top, top + step, step);
        top := top + step;
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Drops the partitions of t holding only seqs <= below (never the newest one).
CREATE FUNCTION omo_partitions_drop(t text, below bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(8029195955916075636); -- "omo.part"
    FOR p IN SELECT name FROM seq_partitions WHERE tbl = t AND hi <= below + 1
             AND hi < (SELECT max(hi) FROM seq_partitions WHERE tbl = t) ORDER BY lo LOOP
        EXECUTE format('DROP TABLE %I', p.name);
        DELETE FROM seq_partitions WHERE name = p.name;
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

-- Sets the range of t's partitions still to come (dropping those made ahead and still empty):
-- for an operator who wants other sizes, and for tests.
CREATE FUNCTION omo_partitions_resize(t text, new_size bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
    p record;
BEGIN
    PERFORM pg_advisory_xact_lock(8029195955916075636); -- "omo.part"
    EXECUTE format('SELECT COALESCE(max(seq), 0) FROM %I', t) INTO top;
    FOR p IN SELECT name FROM seq_partitions WHERE tbl = t AND lo > top ORDER BY lo LOOP
        EXECUTE format('DROP TABLE %I', p.name);
        DELETE FROM seq_partitions WHERE name = p.name;
    END LOOP;
    UPDATE seq_partitions SET size = new_size WHERE tbl = t;
    RETURN omo_partitions_ensure(t, top + 2 * new_size);
END $$;

SELECT omo_partitions_ensure('applied_events', 1000000);
SELECT omo_partitions_ensure('outbox', 200000);
SELECT omo_partitions_ensure('deliveries', 200000);

CREATE VIEW order_revisions AS
    SELECT convert_from(key, 'UTF8') AS order_id,
           (convert_from(value, 'UTF8')::json ->> 'revision')::integer AS revision,
           convert_from(value, 'UTF8')::json ->> 'status' AS status,
           convert_from(value, 'UTF8') AS body,
           created_at
    FROM outbox WHERE topic = 2;
CREATE VIEW outbox_deliveries AS
    SELECT o.seq, o.topic, o.partition, o.key, o.value, o.headers, o.instance, o.created_at,
           d."offset" AS delivered_offset, d.delivered_at
    FROM outbox o LEFT JOIN deliveries d USING (seq);
