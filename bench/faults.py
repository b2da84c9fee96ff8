#!/usr/bin/env python3
"""kill -9 fault suite: writers through the CLI or the HTTP API, killed at random moments; counts
acknowledged writes, lost acknowledged writes and integrity failures. Driven by bench/faults.sh.

A write is acknowledged only when its writer got a success answer: exit code 0 from `dialtone`,
HTTP 2xx from `dialtone serve`. After each kill the store is checked: every acknowledged write is
there, `PRAGMA integrity_check` (SQLite) says ok, `dialtone audit verify` exits 0, and no incident
was opened without its gate answers (open is one transaction). Every wait has a bound.
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

GATE = ["gate.operational_requirements=no", "gate.client_error=none"]
GATE_STEPS = ["gate.operational_requirements", "gate.client_error"]
PROC_TIMEOUT = 20.0  # one CLI command
HTTP_TIMEOUT = 5.0  # one API request
START_TIMEOUT = 30.0  # serve printing its address


class Store:
    """Where the suite's data lives (a SQLite data dir or a PostgreSQL database)."""

    def __init__(self, backend, work, pg_admin):
        self.backend = backend
        self.pg_admin = pg_admin
        self.db = None
        if backend == "sqlite":
            self.args = ["--data-dir", os.path.join(work, "data")]
            self.file = os.path.join(work, "data", "dialtone.sqlite")
        else:
            self.db = "dialtone_faults_%d_%d" % (os.getpid(), random.randrange(1 << 30))
            psql(pg_admin, "CREATE DATABASE %s" % self.db)
            self.url = pg_admin.rsplit("/", 1)[0] + "/" + self.db
            self.args = ["--database", self.url]

    def drop(self):
        if self.db:
            psql(self.pg_admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)

    def query(self, sql):
        """Rows as tuples of strings."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.file, timeout=10)
            try:
                return [tuple(str(c) for c in r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = subprocess.run(
            ["psql", "-XAt", "-F", "\t", self.url, "-c", sql],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def integrity(self):
        """None when intact, else what is wrong."""
        if self.backend != "sqlite":
            return None  # PostgreSQL checksums its own pages; the audit chain covers our rows
        rows = self.query("PRAGMA integrity_check")
        return None if rows == [("ok",)] else "integrity_check: %s" % rows[:3]


def psql(url, sql):
    subprocess.run(["psql", "-Xq", url, "-c", sql], capture_output=True, timeout=30, check=True)


class Acks:
    """What writers were told succeeded."""

    def __init__(self):
        self.lock = threading.Lock()
        self.incidents = set()
        self.steps = set()  # (incident, step)
        self.attachments = set()
        self.count = 0

    def add(self, incident=None, steps=(), attachment=None):
        with self.lock:
            if incident is not None:
                self.incidents.add(incident)
                self.count += 1
            for s in steps:
                self.steps.add(s)
                self.count += 1
            if attachment is not None:
                self.attachments.add(attachment)
                self.count += 1


def verify(store, acks, bin_, env):
    """(lost, corruption messages) for the store as it is now."""
    incidents = {int(r[0]) for r in store.query("SELECT id FROM incidents")}
    steps = {(int(r[0]), r[1]) for r in store.query("SELECT incident_id, step FROM step_records")}
    atts = {int(r[0]) for r in store.query("SELECT id FROM attachments")}
    lost = len(acks.incidents - incidents) + len(acks.steps - steps) + len(acks.attachments - atts)
    bad = []
    integrity = store.integrity()
    if integrity:
        bad.append(integrity)
    half = store.query(
        "SELECT COUNT(*) FROM incidents i WHERE (SELECT COUNT(*) FROM step_records s "
        "WHERE s.incident_id = i.id AND s.step LIKE 'gate.%') < 2"
    )
    if half and half[0][0] != "0":
        bad.append("%s incident(s) without their gate answers" % half[0][0])
    v = subprocess.run(
        [bin_] + store.args + ["audit", "verify"],
        capture_output=True, text=True, timeout=PROC_TIMEOUT, env=env,
    )
    if v.returncode != 0:
        bad.append("audit verify exit %d: %s" % (v.returncode, (v.stdout + v.stderr).strip()[:300]))
    return lost, bad


# ----- the CLI ----------------------------------------------------------------------------------


def cli_trial(bin_, store, env, acks, rng, writers, attach_file, trial):
    """One trial: writers run `dialtone` commands until all in-flight ones are killed."""
    running = set()
    lock = threading.Lock()
    stop = threading.Event()

    def run(args):
        with lock:
            if stop.is_set():
                return None
            p = subprocess.Popen(
                [bin_] + store.args + ["--json"] + args,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
            )
            running.add(p)
        try:
            out, _ = p.communicate(timeout=PROC_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return None
        finally:
            with lock:
                running.discard(p)
        if p.returncode != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def writer(w):
        mine = []  # (id, answered)
        k = 0
        while not stop.is_set():
            k += 1
            op = rng.random()
            if not mine or op < 0.4:
                args = ["incident", "open", "--account", "f%d-%d-%d" % (trial, w, k), "--reporter", "r"]
                for a in GATE:
                    args += ["--answer", a]
                r = run(args)
                if r:
                    iid = r["incident"]["id"]
                    acks.add(incident=iid, steps=[(iid, s) for s in GATE_STEPS])
                    mine.append([iid, False])
            elif op < 0.75:
                target = rng.choice(mine)
                if target[1]:
                    continue
                r = run(["incident", "answer", str(target[0]), "connected", "--step", "l1.connection_status"])
                if r:
                    acks.add(steps=[(target[0], "l1.connection_status")])
                    target[1] = True
            else:
                target = rng.choice(mine)
                r = run(["incident", "attach", str(target[0]), attach_file])
                if r:
                    acks.add(attachment=r["id"])

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.3, 1.5))
    with lock:
        stop.set()
        killed = 0
        for p in list(running):
            try:
                os.kill(p.pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    for t in threads:
        t.join(PROC_TIMEOUT + 5)
    return killed


# ----- dialtone serve ---------------------------------------------------------------------------


def start_serve(bin_, store, env):
    p = subprocess.Popen(
        [bin_] + store.args + ["serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
    )
    found = {}

    def read():
        line = p.stdout.readline().decode(errors="replace")
        m = re.search(r"http://(127\.0\.0\.1):(\d+)", line)
        if m:
            found["addr"] = (m.group(1), int(m.group(2)))
        for _ in p.stdout:  # keep draining
            pass

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + START_TIMEOUT
    while "addr" not in found and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    if "addr" not in found:
        p.kill()
        p.wait()
        raise RuntimeError("dialtone serve did not start within %ss" % START_TIMEOUT)
    return p, found["addr"]


def api(conn, token, path, body):
    conn.request(
        "POST", path, body=json.dumps(body),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def serve_trial(bin_, store, env, acks, rng, writers, token, trial):
    server, (host, port) = start_serve(bin_, store, env)
    stop = threading.Event()

    def writer(w):
        conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT)
        mine = []
        k = 0
        while not stop.is_set():
            k += 1
            try:
                if not mine or rng.random() < 0.5:
                    status, data = api(conn, token, "/api/incidents", {
                        "account": "s%d-%d-%d" % (trial, w, k), "reporter": "r",
                        "gate": {"gate.operational_requirements": "no", "gate.client_error": "none"},
                    })
                    if 200 <= status < 300:
                        inc = json.loads(data)["incident"]
                        acks.add(incident=inc["id"], steps=[(inc["id"], s) for s in GATE_STEPS])
                        mine.append(inc)
                else:
                    inc = mine.pop(rng.randrange(len(mine)))
                    status, data = api(conn, token, "/api/incidents/%d/answer" % inc["id"], {
                        "version": inc["version"], "step": "l1.connection_status", "answer": "connected",
                    })
                    if 200 <= status < 300:
                        acks.add(steps=[(inc["id"], "l1.connection_status")])
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                conn.close()
                if stop.is_set():
                    return
                time.sleep(0.05)
                conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT)
        conn.close()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.3, 2.0))
    os.kill(server.pid, signal.SIGKILL)
    stop.set()
    server.wait(10)
    for t in threads:
        t.join(HTTP_TIMEOUT + 5)
    return 1


def make_token(bin_, store, env):
    subprocess.run(
        [bin_] + store.args + ["user", "add", "fault-writer", "--role", "l2"],
        input="a long fault password\n", text=True, capture_output=True, timeout=60, env=env, check=True,
    )
    out = subprocess.run(
        [bin_] + store.args + ["user", "token", "fault-writer"],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    ).stdout
    return out.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", required=True, choices=["cli-sqlite", "cli-pg", "serve-sqlite", "serve-pg"])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--writers", type=int, default=0, help="concurrent writers (CLI 4, serve 8)")
    ap.add_argument("--pg", default=os.environ.get("DIALTONE_TEST_PG_URL"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    a = ap.parse_args()
    kind, backend = a.mode.split("-")
    if backend == "pg" and not a.pg:
        sys.exit("faults.py: --pg or DIALTONE_TEST_PG_URL is needed for %s" % a.mode)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    writers = a.writers or (4 if kind == "cli" else 8)
    env = dict(os.environ, DIALTONE_USER="fault-agent", RUST_BACKTRACE="0")
    env.pop("DIALTONE_DATABASE", None)
    env.pop("DIALTONE_CONFIG", None)
    with tempfile.TemporaryDirectory(prefix="dialtone-faults-") as work:
        store = Store(backend, work, a.pg)
        try:
            acks = Acks()
            attach_file = os.path.join(work, "client.log")
            with open(attach_file, "wb") as f:
                f.write(os.urandom(64 * 1024))
            token = make_token(a.bin, store, env) if kind == "serve" else None
            lost_total, bad_trials, kills = 0, 0, 0
            messages = []
            started = time.time()
            for trial in range(a.trials):
                if kind == "cli":
                    kills += cli_trial(a.bin, store, env, acks, rng, writers, attach_file, trial)
                else:
                    kills += serve_trial(a.bin, store, env, acks, rng, writers, token, trial)
                lost, bad = verify(store, acks, a.bin, env)
                lost_total = lost  # cumulative: every ack so far is checked again
                if bad:
                    bad_trials += 1
                    messages.append("trial %d: %s" % (trial, "; ".join(bad)))
                    if len(messages) <= 3:
                        print("  " + messages[-1], file=sys.stderr)
                if (trial + 1) % 25 == 0:
                    print("  %s: %d trials, %d acknowledged, %d lost so far" % (
                        a.mode, trial + 1, acks.count, lost_total), file=sys.stderr)
            figures = {
                "mode": a.mode, "trials": a.trials, "writers": writers, "kills": kills,
                "acknowledged": acks.count, "lost": lost_total, "corrupt_trials": bad_trials,
                "seconds": round(time.time() - started, 1), "seed": seed,
            }
            if a.json:
                print(json.dumps(figures))
            else:
                print("%-13s trials %4d  kills %5d  acknowledged %6d  lost %d  corrupt/integrity failures %d  (%.0f s, seed %d)" % (
                    a.mode, a.trials, kills, acks.count, lost_total, bad_trials, figures["seconds"], seed))
            return 1 if lost_total or bad_trials else 0
        finally:
            store.drop()


if __name__ == "__main__":
    sys.exit(main())
