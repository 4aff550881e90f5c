#!/usr/bin/python3
"""docker/compose.yaml, docker/Dockerfile, docker/omo.yaml and the systemd unit, checked without
an engine (none runs here; Debian's podman-compose 1.0.3 has no `config`):

- compose: the services the README names, each image pinned; Kafka in KRaft mode as one
  combined broker and controller; PostgreSQL 15; the init job creates the five topics omo.yaml
  names, with partitions and cleanup.policy, then `omo db migrate` runs; omo starts only once
  both are healthy and the init job succeeded, with docker/omo.yaml mounted and its ${NAME}s in
  the env file; every depends_on names a service and is health-gated; the producer sends the
  example day;
- docker/omo.yaml passes `omo config check` with the env file's values;
- Dockerfile: multi-stage on debian:12-slim, non-root, HEALTHCHECK on /healthz, the default
  command and the demo target;
- the unit: Type=notify, WatchdogSec, a dedicated user, Restart=on-failure, hardening;
- `cmake --install` (into a DESTDIR): the binary, the unit naming it, the configuration in
  etc/omo, the migrations, schemas, examples and manual under share.

    test_compose.py OMO_BINARY OMO_SERVICE_UNIT BUILD_DIR SYSCONFDIR  (from the source root)"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def env_file(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
    return out


def check_compose(omo):
    with open("docker/compose.yaml") as f:
        doc = yaml.safe_load(f)
    svcs = doc.get("services", {})
    for name in ("kafka", "postgres", "topics", "migrate", "omo", "producer"):
        check(name in svcs, "compose: no service " + name)
    if failures:
        return
    for name, s in svcs.items():
        image = s.get("image", "")
        check(":" in image, "compose: %s: image %r is not pinned to a tag" % (name, image))
        for dep, cond in (s.get("depends_on") or {}).items():
            check(dep in svcs, "compose: %s depends on unknown %s" % (name, dep))
            check(isinstance(cond, dict) and cond.get("condition") in
                  ("service_healthy", "service_completed_successfully"),
                  "compose: %s -> %s is not health-gated" % (name, dep))
            if isinstance(cond, dict) and cond.get("condition") == "service_healthy":
                check("healthcheck" in svcs[dep], "compose: %s waits for %s's health, which has "
                      "no healthcheck" % (name, dep))

    k = svcs["kafka"]
    check(k["image"].startswith("apache/kafka:"), "compose: kafka is not apache/kafka")
    ke = {a: str(b) for a, b in k["environment"].items()}
    check(set(ke.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"},
          "compose: kafka is not one combined broker and controller (KRaft)")
    check("CONTROLLER" in ke.get("KAFKA_CONTROLLER_LISTENER_NAMES", ""),
          "compose: no controller listener")
    check(re.match(r"^1@kafka:\d+$", ke.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")) is not None,
          "compose: the quorum is not the one node")
    check("zookeeper" not in str(doc).lower(), "compose: ZooKeeper mentioned")
    check(ke.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false",
          "compose: topics may be auto-created")
    check("PLAINTEXT://kafka:9092" in ke.get("KAFKA_ADVERTISED_LISTENERS", ""),
          "compose: kafka:9092 is not advertised to the other containers")

    pg = svcs["postgres"]
    check(pg["image"] == "postgres:15", "compose: PostgreSQL is not postgres:15")
    check("pg_isready" in str(pg["healthcheck"]["test"]), "compose: postgres health is not pg_isready")

    # The init job: the five topics of docker/omo.yaml, each with partitions and cleanup.policy.
    with open("docker/omo.yaml") as f:
        conf = yaml.safe_load(f)
    topics = conf["kafka"]["topics"]
    script = svcs["topics"]["command"][0] if isinstance(svcs["topics"]["command"], list) \
        else svcs["topics"]["command"]
    created = dict(re.findall(r"^\s*create (\S+) (\d+) ", script, re.M))
    for role in ("orders", "stock", "allocations", "shipments", "dead_letter"):
        check(topics[role] in created, "compose: the init job does not create " + topics[role])
    check(all(int(p) >= 3 for p in created.values()), "compose: a topic with fewer than 3 partitions")
    check("cleanup.policy=delete" in script, "compose: topics created without cleanup.policy")
    check("--if-not-exists" in script, "compose: the init job is not repeatable")
    check(svcs["topics"].get("restart") == "no" and svcs["migrate"].get("restart") == "no",
          "compose: an init job restarts")
    check(svcs["migrate"]["command"][:3] == ["omo", "db", "migrate"], "compose: migrate does not "
          "run omo db migrate")
    check(svcs["migrate"]["depends_on"].get("topics", {}).get("condition") ==
          "service_completed_successfully", "compose: migrate does not follow the topics")

    o = svcs["omo"]
    check(o["depends_on"]["migrate"]["condition"] == "service_completed_successfully",
          "compose: omo does not wait for the migration")
    check(o["depends_on"]["kafka"]["condition"] == "service_healthy" and
          o["depends_on"]["postgres"]["condition"] == "service_healthy",
          "compose: omo does not wait for kafka and postgres to be healthy")
    check("./omo.yaml:/etc/omo/omo.yaml:ro" in o["volumes"], "compose: docker/omo.yaml not mounted")
    check("/readyz" in str(o["healthcheck"]["test"]), "compose: omo's health is not /readyz")
    check(o.get("env_file") == "omo.env", "compose: omo's tokens are not from omo.env")
    check(o["build"]["dockerfile"] == "docker/Dockerfile" and o["build"]["context"] == "..",
          "compose: omo is not built from docker/Dockerfile")
    check(any("8080" in str(p) for p in o.get("ports", [])), "compose: the HTTP port is not published")
    check(conf["kafka"]["brokers"] == "kafka:9092", "docker/omo.yaml: brokers are not kafka:9092")
    check("@postgres:5432/" in conf["postgres"]["dsn"], "docker/omo.yaml: dsn is not the postgres service")
    check(str(conf["http"]["listen"]).startswith("0.0.0.0:8080"),
          "docker/omo.yaml: HTTP does not listen on 0.0.0.0:8080 (the health checks' port)")

    p = svcs["producer"]
    check("../config/day.jsonl:/day.jsonl:ro" in p["volumes"], "compose: the producer lacks the day")
    check(p["depends_on"]["omo"]["condition"] == "service_healthy", "compose: producer before omo")

    # Every ${NAME} of docker/omo.yaml is in the env file, and the file checks with them.
    env = env_file("docker/omo.env")
    with open("docker/omo.yaml") as f:
        names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", f.read()))
    check(names and names <= set(env), "docker/omo.env lacks %s" % sorted(names - set(env)))
    check(env.get("POSTGRES_PASSWORD") == env.get("OMO_PG_PASSWORD"),
          "docker/omo.env: PostgreSQL's password differs from omo's")
    # omo.yaml names network.yaml and routing.yaml beside it: in the image, /etc/omo's copies of
    # config/; here, the same files beside a copy of it.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy("docker/omo.yaml", tmp)
        shutil.copy("config/network.yaml", tmp)
        shutil.copy("config/routing.yaml", tmp)
        r = subprocess.run([omo, "config", "check", "--config", os.path.join(tmp, "omo.yaml")],
                           env=dict(os.environ, **env), capture_output=True, text=True)
        check(r.returncode == 0, "omo config check docker/omo.yaml: %s" % r.stderr)
        r = subprocess.run([omo, "config", "check", "--config", os.path.join(tmp, "omo.yaml")],
                           env={k: v for k, v in os.environ.items() if k not in env},
                           capture_output=True, text=True)
        check(r.returncode == 2 and ":" in r.stderr and "is not set" in r.stderr,
              "omo config check passes without the env file: %s" % r.stderr)


def check_dockerfile():
    with open("docker/Dockerfile") as f:
        text = f.read()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(froms) >= 3, "Dockerfile: not multi-stage")
    check(froms[0][0] == "debian:12-slim", "Dockerfile: the build stage is not debian:12-slim")
    check(any(f == "debian:12-slim" and a == "runtime" for f, a in froms),
          "Dockerfile: no runtime stage on debian:12-slim")
    check(any(a == "demo" for _, a in froms), "Dockerfile: no demo target")
    check(froms[-1][1] == "service", "Dockerfile: the default (last) target is not the service")
    runtime = text.split("AS runtime", 1)[1].split("AS demo", 1)[0]
    runtime = "\n".join(l for l in runtime.splitlines() if not l.lstrip().startswith("#"))
    check("-dev" not in runtime, "Dockerfile: -dev packages in the runtime image")
    check("postgresql" not in runtime, "Dockerfile: PostgreSQL server in the service image")
    check(re.search(r"^USER omo$", runtime, re.M), "Dockerfile: the runtime does not run as omo")
    health = re.search(r"^ENV OMO_HEALTH_URL=(\S+)$", runtime, re.M)
    check(health and health.group(1) == "http://127.0.0.1:8080/healthz" and
          re.search(r'^HEALTHCHECK .*\\\n\s*CMD curl -fsS "\$OMO_HEALTH_URL"', runtime, re.M),
          "Dockerfile: no HEALTHCHECK on /healthz")
    check('CMD ["omo", "run", "--config", "/etc/omo/omo.yaml"]' in runtime,
          "Dockerfile: the default command is not omo run --config /etc/omo/omo.yaml")
    check("EXPOSE 8080" in runtime, "Dockerfile: port 8080 not exposed")
    demo = text.split("AS demo", 1)[1]
    check("postgresql-15" in demo and 'CMD ["omo", "demo"' in demo,
          "Dockerfile: the demo target lacks PostgreSQL or `omo demo`")


def check_unit(path):
    with open(path) as f:
        text = f.read()
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    want = {"Type": "notify", "Restart": "on-failure", "User": "omo", "NoNewPrivileges": "yes",
            "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
            "NotifyAccess": "main"}
    for k, v in want.items():
        check(keys.get(k) == [v], "unit: %s=%s expected, got %s" % (k, v, keys.get(k)))
    check(re.match(r"^\d+s$", (keys.get("WatchdogSec") or [""])[0]), "unit: no WatchdogSec")
    check(re.match(r"^/\S+/omo run --config /\S+/omo/omo\.yaml$", keys["ExecStart"][0]),
          "unit: ExecStart %s" % keys["ExecStart"])
    check(keys.get("RestartPreventExitStatus") == ["2"], "unit: restarts on a configuration error")


def check_install(build, sysconfdir, unit):
    with open(unit) as f:
        binary = re.search(r"^ExecStart=(\S+) run", f.read(), re.M).group(1)
    prefix = os.path.dirname(os.path.dirname(binary))
    with tempfile.TemporaryDirectory(prefix="omo-install-") as dest:
        r = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest),
                           capture_output=True, text=True)
        if not check(r.returncode == 0, "cmake --install: " + r.stderr[-400:]):
            return
        root = lambda p: dest + p  # noqa: E731
        share = root(prefix + "/share/omo")
        check(os.access(root(binary), os.X_OK), "install: no %s (the unit's ExecStart)" % binary)
        check(os.path.isfile(root(prefix + "/lib/systemd/system/omo.service")), "install: no unit")
        for name in ("omo.yaml", "network.yaml", "routing.yaml"):
            check(os.path.isfile(root(sysconfdir + "/omo/" + name)), "install: no etc/omo/" + name)
        sql = sorted(os.path.basename(p) for p in glob.glob("sql/*.sql"))
        check(sorted(os.listdir(share + "/sql")) == sql, "install: migrations differ from sql/")
        schemas = sorted(os.path.basename(p) for p in glob.glob("config/schema/*.json"))
        check(sorted(os.listdir(share + "/schema")) == schemas, "install: schemas differ")
        for name in ("config/day.jsonl", "config/network.yaml", "config/routing.yaml", "omo.1"):
            check(os.path.isfile(share + "/" + name), "install: no share/omo/" + name)
        check(os.path.isfile(root(prefix + "/share/man/man1/omo.1")), "install: no man page")
        r = subprocess.run([root(binary), "help"], capture_output=True, text=True)
        check(r.returncode == 0 and "config check" in r.stdout, "install: the binary does not run")


def main():
    omo, unit, build, sysconfdir = sys.argv[1:5]
    check_compose(omo)
    check_dockerfile()
    check_unit(unit)
    check_install(build, sysconfdir, unit)
    if failures:
        print("[compose] %d failures" % len(failures), file=sys.stderr)
        return 1
    print("[compose] compose.yaml, Dockerfile, omo.yaml and the unit check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
