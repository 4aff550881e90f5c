#!/usr/bin/python3
"""The other side of test_interop.c: a Kafka client that shares nothing with librdkafka
(Debian's python3-kafka, kafka-python 2.0.2, a pure-Python implementation of the protocol)
drives a running `omo run`:

- it produces the day's inputs, in order, with their keys (plan file: one line per message,
  TOPIC<TAB>KEY-HEX<TAB>VALUE-HEX, KEY-HEX "-" for none), acks=all, one request in flight;
- it reads the output topics back from the beginning with two group-less consumers, one
  read_uncommitted (kafka-python's default) and one read_committed (kafka-python 2.0.2 has no
  setting for it: its fetcher's isolation level is set to 1, which goes out in every FetchRequest
  v4+), until every expected order has an allocation and every bad input its dead letter;
- and checks, for each consumer: every (order_id, revision) once, revisions 1..n in order on one
  partition, keyed by order_id, on the partition murmur2(key) picks (kafka-python's own
  murmur2: omo and any other producer agree); every allocation and shipment status valid against
  config/schema; every record with an omo.seq header, none twice on a topic; the dead letters
  exactly the bad inputs, with omo.error.* and omo.source.* headers; both consumers alike.

    kafka_python.py BOOTSTRAP PLAN EXPECTED_ORDERS NBAD"""
import json
import os
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schema"))
import validate  # noqa: E402

READ_COMMITTED = 1
OUTPUTS = ("omo.allocations", "omo.shipments", "omo.dead-letter")
API = (2, 0, 0)  # skip version probing: the mock answers ApiVersions, the probe is slow
problems = []


def problem(what):
    if len(problems) < 20:
        print("FAIL: " + what, file=sys.stderr)
    problems.append(what)


def produce(bootstrap, plan):
    msgs = []
    with open(plan) as f:
        for line in f:
            topic, key, value = line.rstrip("\n").split("\t")
            msgs.append((topic, None if key == "-" else bytes.fromhex(key), bytes.fromhex(value)))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", api_version=API,
                             max_in_flight_requests_per_connection=1, retries=5, linger_ms=5)
    futures = [producer.send(t, key=k, value=v) for t, k, v in msgs]
    producer.flush(60)
    for fut in futures:
        fut.get(timeout=30)
    producer.close()
    return msgs


def consumer(bootstrap, isolation):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, api_version=API,
                      enable_auto_commit=False, fetch_max_wait_ms=100,
                      consumer_timeout_ms=200)
    c._fetcher._isolation_level = isolation  # no public setting in kafka-python 2.0.2
    parts = [TopicPartition(t, p) for t in OUTPUTS for p in sorted(c.partitions_for_topic(t) or [])]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    return c


def read_until(c, expected, nbad, deadline):
    recs = []
    while time.time() < deadline:
        for batch in c.poll(timeout_ms=200, max_records=5000).values():
            recs.extend(batch)
        orders = {r.key for r in recs if r.topic == "omo.allocations"}
        dead = sum(r.topic == "omo.dead-letter" for r in recs)
        if expected <= orders and dead >= nbad:
            # what the same decisions still send (later revisions, statuses) lands meanwhile
            end = time.time() + 2
            while time.time() < end:
                for batch in c.poll(timeout_ms=200).values():
                    recs.extend(batch)
            return recs
    problem("timed out: %d of %d orders allocated, %d of %d dead letters" %
            (len({r.key for r in recs if r.topic == 'omo.allocations'} & expected), len(expected),
             sum(r.topic == "omo.dead-letter" for r in recs), nbad))
    return recs


def check(name, recs, nparts, expected, schemas):
    revs, seqs = {}, {}
    statuses = 0
    for r in recs:
        h = dict(r.headers or [])
        seq = h.get("omo.seq")
        if seq is None:
            problem("%s: %s/%d@%d has no omo.seq header" % (name, r.topic, r.partition, r.offset))
        elif (r.topic, seq) in seqs:
            problem("%s: omo.seq %s twice on %s" % (name, seq, r.topic))
        seqs[(r.topic, seq)] = r
        if r.topic == "omo.dead-letter":
            for hn in ("omo.error.reason", "omo.error.field", "omo.source.topic",
                       "omo.source.partition", "omo.source.offset"):
                if hn not in h:
                    problem("%s: dead letter @%d lacks header %s" % (name, r.offset, hn))
            continue
        doc = json.loads(r.value)
        errs = schemas.errors(doc, "output")
        if errs:
            problem("%s: %s@%d does not validate: %s" % (name, r.topic, r.offset, errs))
        if r.key != doc["order_id"].encode():
            problem("%s: key %r for order %s" % (name, r.key, doc["order_id"]))
        want = (murmur2(r.key) & 0x7FFFFFFF) % nparts[r.topic]
        if r.partition != want:
            problem("%s: %s key %r on partition %d, murmur2 says %d" %
                    (name, r.topic, r.key, r.partition, want))
        if r.topic == "omo.shipments":
            statuses += 1
            continue
        revs.setdefault(doc["order_id"], []).append((r.partition, r.offset, doc["revision"]))
    for order, seen in revs.items():
        seen.sort(key=lambda x: x[1])
        if len({p for p, _, _ in seen}) != 1:
            problem("%s: order %s on several partitions" % (name, order))
        if [rev for _, _, rev in seen] != list(range(1, len(seen) + 1)):
            problem("%s: order %s revisions %s" % (name, order, [rev for _, _, rev in seen]))
    missing = {o.decode() for o in expected} - set(revs)
    extra = set(revs) - {o.decode() for o in expected}
    if missing or extra:
        problem("%s: %d expected orders missing (%s), %d unexpected" %
                (name, len(missing), sorted(missing)[:3], len(extra)))
    dead = sorted(r.value for r in recs if r.topic == "omo.dead-letter")
    return {"allocations": sum(len(v) for v in revs.values()), "orders": len(revs),
            "shipment_statuses": statuses, "dead_letters": len(dead), "dead": dead}


def main():
    bootstrap, plan, expected_path, nbad = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(expected_path) as f:
        expected = {line.strip().encode() for line in f if line.strip()}
    schemas = validate.Schemas()
    t0 = time.time()
    msgs = produce(bootstrap, plan)
    print("[kafka-python] produced %d messages in %.1f s" % (len(msgs), time.time() - t0))
    seen = {}
    for name, iso in (("read_uncommitted", 0), ("read_committed", READ_COMMITTED)):
        c = consumer(bootstrap, iso)
        recs = read_until(c, expected, nbad, time.time() + 120)
        nparts = {t: len(c.partitions_for_topic(t)) for t in OUTPUTS}
        c.close()
        seen[name] = check(name, recs, nparts, expected, schemas)
        s = seen[name]
        print("[kafka-python] %s: %d allocations of %d orders, %d shipment statuses, %d dead "
              "letters" % (name, s["allocations"], s["orders"], s["shipment_statuses"],
                           s["dead_letters"]))
    a, b = seen["read_uncommitted"], seen["read_committed"]
    if a != b:
        problem("the two isolation levels saw different outputs")
    if a["dead_letters"] != nbad:
        problem("%d dead letters, %d bad inputs" % (a["dead_letters"], nbad))
    bad_inputs = sorted(v for t, k, v in msgs if v in set(a["dead"]))
    if bad_inputs != a["dead"]:
        problem("dead letters that are not bad inputs, byte for byte")
    if problems:
        print("[kafka-python] %d problems" % len(problems), file=sys.stderr)
        return 1
    print("[kafka-python] all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
