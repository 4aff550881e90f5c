#!/usr/bin/python3
"""The JSON Schemas of config/schema/ against what omo reads and writes.

- every schema is a valid draft 2020-12 schema, and every type omo knows has one (the event
  types of orchestrator/event.c's name table included);
- every event fixture (tests/fixtures/*_events.jsonl, config/day.jsonl) and a generated day with
  malformed lines: each line `omo solve` accepts validates against input.json, and each line the
  schema refuses is one `omo solve` refused (the schema is never stricter than omo, and catches
  the refusals that need no network);
- every allocation `omo solve` writes for them validates against output.json;
- the schemas can fail: known-bad messages are refused with the field named.

    test_schema.py OMO_BINARY GEN_BINARY   (from the source tree's root)"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate  # noqa: E402

FIX = "tests/fixtures"
FIXTURES = [  # events, network, rules
    ("config/day.jsonl", "config/network.yaml", "config/routing.yaml"),
    (FIX + "/diff_events.jsonl", FIX + "/diff_network.yaml", FIX + "/diff_old.yaml"),
    (FIX + "/diff_events.jsonl", FIX + "/diff_network.yaml", FIX + "/diff_new.yaml"),
    (FIX + "/explain_events.jsonl", FIX + "/explain_network.yaml", FIX + "/explain_rules.yaml"),
    (FIX + "/pick_events.jsonl", FIX + "/pick_network.yaml", FIX + "/pick_routing.yaml"),
]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def solve(omo, events, network, rules, out):
    """Runs omo solve; returns the line numbers it refused."""
    p = subprocess.run([omo, "solve", "--network", network, "--rules", rules, "--events", events,
                        "--out", out], capture_output=True, text=True)
    check(p.returncode == 0, "omo solve %s exited %d: %s" % (events, p.returncode, p.stderr[-500:]))
    pat = re.compile(r"^" + re.escape(events) + r":(\d+): error:", re.M)
    return {int(n) for n in pat.findall(p.stderr)}


def check_day(schemas, omo, events, network, rules, tmp):
    out = os.path.join(tmp, "out.jsonl")
    refused = solve(omo, events, network, rules, out)
    accepted = refused_by_schema = 0
    with open(events, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                errs = schemas.errors(json.loads(line), "input")
            except ValueError:
                errs = ["not JSON"]
            if n in refused:
                refused_by_schema += bool(errs)
                continue
            accepted += 1
            check(not errs, "%s:%d: omo accepts it, the schema does not: %s" % (events, n, errs))
    allocations = 0
    with open(out) as f:
        for n, line in enumerate(f, 1):
            allocations += 1
            errs = schemas.errors(json.loads(line), "output")
            check(not errs, "%s: allocation %d does not validate: %s" % (events, n, errs))
    print("[schema] %s: %d accepted lines valid, %d of %d refused lines refused by the schema too, "
          "%d allocations valid" % (events, accepted, refused_by_schema, len(refused), allocations))
    check(allocations > 0, events + ": no allocation to check")


def check_refusals(schemas):
    order = {"type": "order.created", "order_id": "W-1", "created_at": "2026-11-23T10:15:00Z",
             "channel": "web", "customer": {"lat": 40.7, "lon": -74.0},
             "delivery": {"method": "ship", "service": "standard"},
             "lines": [{"line_id": "1", "sku": "SKU-1", "qty": 2}]}
    alloc = {"type": "allocation", "order_id": "W-1", "revision": 1, "status": "allocated",
             "decided_at": "2026-11-23T10:15:00Z", "rules_version": "0123456789abcdef",
             "objective": 12.34, "backordered": [],
             "shipments": [{"shipment_id": "W-1/1", "node_id": "S-012", "method": "ship_from_store",
                            "service": "standard", "cost": 5.8, "hours": 26,
                            "lines": [{"line_id": "1", "sku": "SKU-1", "qty": 2}]}]}
    check(schemas.errors(order) == [], "the contract's order does not validate")
    check(schemas.errors(alloc) == [], "the contract's allocation does not validate")

    def bad(doc, path, change, field):
        d = json.loads(json.dumps(doc))
        target = d
        for p in path[:-1]:
            target = target[p]
        if change is None:
            del target[path[-1]]
        else:
            target[path[-1]] = change
        errs = schemas.errors(d)
        check(any(field in e for e in errs), "%s=%r: expected an error naming %s, got %s"
              % ("/".join(map(str, path)), change, field, errs))

    bad(order, ["order_id"], None, "order_id")
    bad(order, ["created_at"], "2026-11-23 25:00", "created_at")
    bad(order, ["lines", 0, "qty"], 0, "lines/0/qty")
    bad(order, ["lines"], [], "lines")
    bad(order, ["delivery", "method"], "drone", "delivery/method")
    bad(order, ["customer"], None, "customer")
    bad(order, ["lines", 0, "sku"], "SKU 1", "lines/0/sku")
    bad(alloc, ["status"], "maybe", "status")
    bad(alloc, ["rules_version"], "xyz", "rules_version")
    bad(alloc, ["shipments", 0, "method"], "click_and_collect", "pickup_store_id")
    bad(alloc, ["shipments"], [], "shipments")
    bad(alloc, ["revision"], 0, "revision")
    check(schemas.errors({"type": "stock.delta", "event_id": "e", "node_id": "N", "sku": "S",
                          "delta": 1.5}) != [], "a fractional delta validates")
    check(schemas.errors({"type": "shipment.status", "shipment_id": "W-1/1", "order_id": "W-1",
                          "node_id": "S-1", "status": "lost", "at": "2026-11-23T10:15:00Z",
                          "lines": []}) != [], "an unknown shipment status validates")


def main():
    omo, gen = sys.argv[1], sys.argv[2]
    schemas = validate.Schemas()
    names = set(schemas.by_name)
    for t in validate.INPUTS + validate.OUTPUTS + ("input", "output", "common"):
        check(t in names, "no schema for " + t)
    # Every event type the parser knows (its name table) has a schema and is in input.json.
    with open("orchestrator/event.c") as f:
        known = re.findall(r'\[OMO_EV_[A-Z_]+\] = "([a-z_.]+)"', f.read())
    check(len(known) >= 8, "cannot read the event types of orchestrator/event.c")
    for t in known:
        check(t in names and t in validate.INPUTS,
              "event type %s has no schema in config/schema (or is missing from input.json)" % t)
    check_refusals(schemas)
    with tempfile.TemporaryDirectory(prefix="omo-schema-") as tmp:
        for events, network, rules in FIXTURES:
            check_day(schemas, omo, events, network, rules, tmp)
        day = os.path.join(tmp, "gen")
        p = subprocess.run([gen, "--out-dir", day, "--stores", "40", "--skus", "80", "--orders", "600",
                            "--bad", "40", "--seed", "5"], capture_output=True, text=True)
        check(p.returncode == 0, "gen failed: " + p.stderr[-500:])
        if p.returncode == 0:
            check_day(schemas, omo, os.path.join(day, "events.jsonl"),
                      os.path.join(day, "network.yaml"), os.path.join(day, "routing.yaml"), tmp)
    if failures:
        print("[schema] %d failures" % len(failures), file=sys.stderr)
        return 1
    print("[schema] all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
