#!/usr/bin/python3
"""Validates JSON lines against omo's JSON Schemas (config/schema/, draft 2020-12), each line by
its "type": input events by input.json, output messages by output.json.

    validate.py [--schemas DIR] [--skip-lines N,M,...] FILE...

Prints FILE:LINE: error: WHAT for every line that does not validate, and a count on stderr;
exits 0 when every line validates, 1 otherwise. Importable: load() and errors()."""
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.normpath(os.path.join(HERE, "..", "..", "config", "schema"))
INPUTS = ("order.created", "order.cancelled", "stock.snapshot", "stock.delta", "stock.bin",
          "pick.confirmed", "shipment.shipped", "shipment.collected", "hold.placed",
          "hold.released", "hold.expired", "node.paused", "node.resumed")
OUTPUTS = ("allocation", "shipment.status", "availability")


class Schemas:
    """Every schema of a folder, each checked against draft 2020-12, with $refs between them."""

    def __init__(self, folder=SCHEMAS):
        self.store = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                with open(os.path.join(folder, name)) as f:
                    schema = json.load(f)
                jsonschema.Draft202012Validator.check_schema(schema)
                self.store[schema["$id"]] = schema
        self.by_name = {s["$id"].rsplit("/", 1)[1][:-5]: s for s in self.store.values()}
        self._validators = {}

    def validator(self, name):
        if name not in self._validators:
            schema = self.by_name[name]
            resolver = jsonschema.RefResolver(schema["$id"], schema, store=self.store)
            self._validators[name] = jsonschema.Draft202012Validator(schema, resolver=resolver)
        return self._validators[name]

    def errors(self, doc, kind=None):
        """The messages of every violation of doc (a parsed JSON value); [] when it is valid.
        kind: "input", "output", or None for either (by its type)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return ["not an object with a string \"type\""]
        t = doc["type"]
        if kind is None:
            kind = "output" if t in OUTPUTS else "input"
        out = []
        for e in sorted(self.validator(kind).iter_errors(doc), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in e.absolute_path)
            out.append("%s%s" % (where + ": " if where else "", e.message))
        return out


def main(argv):
    folder, skip, files = SCHEMAS, set(), []
    it = iter(argv)
    for a in it:
        if a == "--schemas":
            folder = next(it)
        elif a == "--skip-lines":
            skip = {int(x) for x in next(it).split(",") if x}
        else:
            files.append(a)
    schemas = Schemas(folder)
    bad = total = 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or n in skip:
                    continue
                total += 1
                try:
                    doc = json.loads(line)
                except ValueError as e:
                    errs = ["not JSON: %s" % e]
                else:
                    errs = schemas.errors(doc)
                for e in errs:
                    print("%s:%d: error: %s" % (path, n, e))
                bad += bool(errs)
    print("[schema] %d of %d lines valid" % (total - bad, total), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
