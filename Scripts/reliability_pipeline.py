#!/usr/bin/env python3
"""The overlap, crash and disk sections of Scripts/reliability (issue 7).

Each section runs the release binary the way cron does, over one database in a
fresh temporary folder, against fakes on 127.0.0.1: a provider fake in this
process (Finnhub for the stocks, fixer for the currency pairs) that serves a
fixed, seeded price series one round at a time, and `stockwatch-fakes` (FCM,
which checks every JWT and message, and a Standard Webhooks receiver, which
checks every signature). Every alert is an above/below/crossing level with a
once, rearm or every trigger, so the notifications the series must produce
are computed here from README's rules ("Conditions and triggers") and
compared with what the database and the fakes got.

  overlap   --processes P (20) processes per round, each running `stockwatch
            tick`, then separately each running `fetch && evaluate && notify`,
            for --rounds R (100) rounds over --alerts N (1,000) alerts; each
            round's processes start together, with a random delay of up to
            0.2 s each, so their steps overlap in every order.
  crash     --kills K (200) rounds: fetch, evaluate and notify for the
            round's prices, one of them killed with SIGKILL at a random moment
            of its run; PRAGMA integrity_check; then a clean `tick`.
  disk      a database on a small tmpfs (needs root to mount it): every
            writing command on a full disk, then on a read-only file system.

The final line of each section is `SECTION: N passed, N failed`.
Python 3 standard library only; deterministic inputs for a given --seed.
"""

import argparse
import http.server
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

CRASH_MARKERS = [b"Fatal error", b"Illegal instruction", b"Segmentation", b"Current stack trace",
                 b"Stack dump", b"Trace/breakpoint trap", b"Aborted", b"Assertion failed"]
BUSY_MARKERS = [b"database is locked", b"is busy", b"SQLITE_BUSY"]
TICK_LOCK_LINE = b"another tick is still running"
STOCKS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM"]
FX = ["EUR/USD", "EUR/GBP", "EUR/JPY", "EUR/CHF"]
KINDS = ["above", "below", "crosses_above", "crosses_below"]
TRIGGERS = ["once", "rearm", "every"]
STEP = 60  # seconds between the rounds' observed times


# ---------------------------------------------------------------------------
# The price series and what it must fire


class Series:
    """Per symbol: a base price, seven levels around it, and one price per round
    that swings across the levels (a sine plus noise, sometimes exactly a level)."""

    def __init__(self, seed, rounds):
        rng = random.Random("%s/series" % seed)
        self.rounds = rounds
        self.t0 = int(time.time()) // STEP * STEP - (rounds + 5) * STEP
        self.prices, self.levels = {}, {}
        for sym in STOCKS + FX:
            digits = 4 if "/" in sym else 2
            base = round(rng.uniform(1.0, 2.0), 2) if "/" in sym else float(rng.randrange(50, 500))
            if sym == "EUR/JPY":
                base, digits = float(rng.randrange(150, 170)), 2
            levels = [round(base * (1 + 0.03 * k), digits) for k in range(-3, 4)]
            period, phase = rng.uniform(6, 20), rng.uniform(0, 2 * math.pi)
            series = []
            for r in range(rounds):
                if rng.random() < 0.1:
                    p = rng.choice(levels)  # exactly at a level: >= and <= must hold
                else:
                    p = base * (1 + 0.11 * math.sin(2 * math.pi * r / period + phase) + rng.gauss(0, 0.01))
                series.append(round(max(p, 10 ** -digits), digits))
            self.prices[sym], self.levels[sym] = series, levels

    def observed(self, r):
        return self.t0 + STEP * r


def expected_firings(kind, trigger, level, prices):
    """Indices of the quotes that fire one alert, by README's rules (margin 0,
    no cooldown, the alert added before the first quote)."""
    fired, state, prev = [], "armed", None
    for i, p in enumerate(prices):
        if kind == "above":
            holds = p >= level
        elif kind == "below":
            holds = p <= level
        elif kind == "crosses_above":
            holds = prev is not None and prev < level <= p
        else:
            holds = prev is not None and prev > level >= p
        upward = kind in ("above", "crosses_above")
        if state == "firing" and (p < level if upward else p > level):
            state = "armed"
        elif state == "armed" and holds:
            fired.append(i)
            state = {"once": "fired", "rearm": "firing", "every": "armed"}[trigger]
        prev = p
    return fired


def make_alerts(seed, n, users):
    rng = random.Random("%s/alerts" % seed)
    out = []
    for i in range(n):
        sym = rng.choice(STOCKS + FX)
        out.append({"user": users[i % len(users)], "symbol": sym, "kind": rng.choice(KINDS),
                    "trigger": rng.choice(TRIGGERS), "level_index": rng.randrange(7),
                    "channels": rng.choice([["phone"], ["hook"], ["phone", "hook"]])})
    return out


# ---------------------------------------------------------------------------
# Fakes


class ProviderFake:
    """Finnhub (/finnhub/quote) and fixer (/fixer/latest) answering the current
    round's prices, in the formats of REFERENCE.md."""

    def __init__(self, series):
        self.series, self.round, self.requests = series, 0, 0
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.requests += 1
                    r = fake.round
                url = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(url.query)
                t = fake.series.observed(r)
                if url.path == "/finnhub/quote" and self.headers.get("X-Finnhub-Token") == "finnhub-key":
                    sym = q.get("symbol", [""])[0]
                    if sym in fake.series.prices:
                        p = fake.series.prices[sym][r]
                        body = {"c": p, "d": 0, "dp": 0, "h": p, "l": p, "o": p, "pc": p, "t": t}
                    else:
                        body = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
                elif url.path == "/fixer/latest" and q.get("access_key") == ["fixer-key"]:
                    codes = q.get("symbols", [""])[0].split(",")
                    rates = {c: fake.series.prices["EUR/" + c][r] for c in codes if "EUR/" + c in fake.series.prices}
                    body = {"success": True, "timestamp": t, "base": "EUR",
                            "date": time.strftime("%Y-%m-%d", time.gmtime(t)), "rates": rates}
                else:
                    body = {"success": False, "error": {"code": 101, "type": "invalid_access_key"}}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a killed fetch resets its connections: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Fakes:
    """stockwatch-fakes: FCM and the webhook receiver."""

    def __init__(self, binary, folder):
        self.proc = subprocess.Popen(
            [binary, "--service-account-out", os.path.join(folder, "firebase.json"),
             "--webhook-secret-out", os.path.join(folder, "hook.secret")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("stockwatch-fakes did not start")
        urls = json.loads(line)
        self.fcm, self.webhook = urls["fcm"], urls["webhook"]

    def get(self, path):
        with urllib.request.urlopen(self.fcm + path, timeout=30) as r:
            return json.load(r)

    def stop(self):
        try:
            self.proc.stdin.close()  # EOF on stdin stops it
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


# ---------------------------------------------------------------------------
# One database, its config and its processes


class Run:
    __slots__ = ("argv", "rc", "out", "err", "seconds", "killed")

    def __init__(self, argv, rc, out, err, seconds, killed=False):
        self.argv, self.rc, self.out, self.err, self.seconds, self.killed = argv, rc, out, err, seconds, killed


class Deployment:
    def __init__(self, root, name, binary, provider, fakes, notify_extra=""):
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "home"), exist_ok=True)
        self.binary = binary
        self.db = os.path.join(self.dir, "stockwatch.db")
        self.config = os.path.join(self.dir, "config.toml")
        self.env = {"PATH": "/usr/bin:/bin", "HOME": os.path.join(self.dir, "home"), "STOCKWATCH_DB": self.db,
                    "STOCKWATCH_CONFIG": self.config, "XDG_CONFIG_HOME": os.path.join(self.dir, "home"),
                    "XDG_STATE_HOME": os.path.join(self.dir, "home"), "TMPDIR": self.dir, "LANG": "C.UTF-8"}
        text = """# written by Scripts/reliability_pipeline.py
[alerts]
default_notify = ["phone"]
[channels.phone]
type = "fcm"
service_account_file = "%(sa)s"
api_base_url = "%(fcm)s"
timeout = "2s"
[channels.hook]
type = "webhook"
url = "%(hook)s"
secret_file = "%(secret)s"
timeout = "2s"
[notify]
backoff_base = "1s"
backoff_cap = "2s"
lease = "18s"
%(notify_extra)s
[providers.finnhub]
api_key = "finnhub-key"
base_url = "%(prov)s/finnhub"
timeout = "5s"
[providers.fixer]
api_key = "fixer-key"
base_url = "%(prov)s/fixer"
timeout = "5s"
[routing]
fx = ["fixer"]
stocks = ["finnhub"]
""" % {"sa": fakes.account_path, "fcm": fakes.fcm, "hook": fakes.webhook, "secret": fakes.secret_path,
       "prov": provider.url, "notify_extra": notify_extra}
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def start(self, argv, stdin=None):
        return subprocess.Popen([self.binary] + argv, env=self.env, cwd=self.dir, stdin=stdin or subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, argv, timeout=60, stdin_data=None):
        started = time.monotonic()
        p = self.start(argv, stdin=subprocess.PIPE if stdin_data is not None else None)
        try:
            out, err = p.communicate(stdin_data, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return Run(argv, "timeout", out, err, time.monotonic() - started)
        return Run(argv, p.returncode, out, err, time.monotonic() - started)

    def sql(self, query, args=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def setup(self, alerts, series, users, devices_per_user):
        """Users, their devices and the alerts, through the binary."""
        tokens = {}
        for u in users:
            r = self.run(["user", "add", u])
            if r.rc != 0:
                raise RuntimeError("user add %s: exit %s: %s" % (u, r.rc, r.err.decode(errors="replace")))
            tokens[u] = ["%s-%s-device-%d" % (os.path.basename(self.dir), u, d) for d in range(devices_per_user)]
            for t in tokens[u]:
                r = self.run(["device", "add", "--user", u, "--fcm-token", t])
                if r.rc != 0:
                    raise RuntimeError("device add: exit %s: %s" % (r.rc, r.err.decode(errors="replace")))
        lines = []
        for a in alerts:
            lines.append(json.dumps({"user": a["user"], "symbol": a["symbol"], "trigger": a["trigger"],
                                     "channels": a["channels"],
                                     "condition": {"kind": a["kind"], "value": series.levels[a["symbol"]][a["level_index"]]}}))
        r = self.run(["alert", "import", "-"], stdin_data=("\n".join(lines) + "\n").encode())
        if r.rc != 0:
            raise RuntimeError("alert import: exit %s: %s" % (r.rc, r.err.decode(errors="replace")))
        return tokens

    def drain(self, deadline_seconds):
        """Runs notify until no delivery is waiting (pending, retry, or sending
        with a lease to run out); False if that takes longer than the deadline."""
        end = time.monotonic() + deadline_seconds
        runs = []
        while True:
            left = self.sql("SELECT count(*) FROM deliveries WHERE status IN ('pending', 'retry', 'sending')")[0][0]
            if left == 0:
                return True, runs
            if time.monotonic() > end:
                return False, runs
            runs.append(self.run(["notify"]))
            time.sleep(0.5)


# ---------------------------------------------------------------------------
# Checks and the report


class Checks:
    def __init__(self, section):
        self.section = section
        self.rows = []  # (name, figure, goal, ok)
        self.examples = []
        self.info = []  # figures that are not checks

    def add(self, name, figure, goal, ok, example=None):
        self.rows.append((name, str(figure), goal, bool(ok)))
        if not ok and example:
            self.examples.append("%s: %s" % (name, example))

    def report(self, header, started):
        print()
        print(header)
        print()
        print("%-40s %-28s %-20s %s" % ("CHECK", "FIGURE", "GOAL", "RESULT"))
        for name, figure, goal, ok in self.rows:
            print("%-40s %-28s %-20s %s" % (name, figure, goal, "pass" if ok else "FAIL"))
        for line in self.info:
            print("  " + line)
        for e in self.examples[:20]:
            print("  FAIL " + e)
        passed = sum(1 for r in self.rows if r[3])
        failed = len(self.rows) - passed
        print("%s: %.0f s wall" % (self.section, time.monotonic() - started))
        print("%s: %d passed, %d failed" % (self.section, passed, failed))
        return 0 if failed == 0 else 1


def describe(run):
    first = run.err.decode("utf-8", "replace").strip().split("\n")[0][:200]
    return "stockwatch %s -> exit %s: %s" % (" ".join(run.argv), run.rc, first)


def classify(runs, allowed):
    """Counts crashes, busy failures and other unexpected exits among finished runs."""
    crashes, busy, other = [], [], []
    for r in runs:
        if r.killed:
            continue
        if r.rc == "timeout" or (isinstance(r.rc, int) and r.rc < 0) or any(m in r.err for m in CRASH_MARKERS):
            crashes.append(r)
        elif any(m in r.err for m in BUSY_MARKERS):
            busy.append(r)
        elif not allowed(r):
            other.append(r)
    return crashes, busy, other


def outcome_checks(checks, dep, series, alerts, tokens, fakes, stored_rounds, label=""):
    """Notifications versus the series; deliveries versus what the fakes accepted.
    stored_rounds: the rounds whose quotes were stored, or a dict of them by symbol."""
    # notifications: (alert id, round) expected from the series versus written
    alert_ids = [aid for (aid,) in dep.sql("SELECT id FROM alerts ORDER BY id")]  # in import order
    expected = set()
    for a, aid in zip(alerts, alert_ids):
        rounds = stored_rounds[a["symbol"]] if isinstance(stored_rounds, dict) else stored_rounds
        prices = [series.prices[a["symbol"]][r] for r in rounds]
        level = series.levels[a["symbol"]][a["level_index"]]
        for i in expected_firings(a["kind"], a["trigger"], level, prices):
            expected.add((aid, series.observed(rounds[i])))
    rows = dep.sql("SELECT n.id, n.alert_id, n.observed_at / 1000, u.name FROM notifications n JOIN users u ON u.id = n.user_id")
    written = {}
    for nid, aid, obs, user in rows:
        written.setdefault((aid, obs), []).append(nid)
    missing = expected - set(written)
    extra = set(written) - expected
    doubled = sum(len(v) - 1 for v in written.values())
    checks.add(label + "notifications = series", "%d of %d, %d extra" % (len(expected & set(written)), len(expected), len(extra) + doubled),
               "equal", not missing and not extra and doubled == 0,
               "missing %s; extra %s" % (sorted(missing)[:5], sorted(extra)[:5]))

    # deliveries the fakes should have accepted, once each
    by_alert = {aid: a for a, aid in zip(alerts, alert_ids)}
    want_fcm, want_hook = set(), set()
    for nid, aid, obs, user in rows:
        a = by_alert.get(aid)
        if a is None:
            continue
        if "phone" in a["channels"]:
            for t in tokens[user]:
                want_fcm.add((t, str(nid)))
        if "hook" in a["channels"]:
            want_hook.add(str(nid))
    got = fakes.get("/delivered")
    got_fcm = {(t, n): c for t, n, c in got["fcm"]}
    got_hook = {n: c for n, c in got["webhook"]}
    lost = len(want_fcm - set(got_fcm)) + len(want_hook - set(got_hook))
    stray = len(set(got_fcm) - want_fcm) + len(set(got_hook) - want_hook)
    dups = sum(c - 1 for c in got_fcm.values()) + sum(c - 1 for c in got_hook.values())
    waiting = dep.sql("SELECT status, count(*) FROM deliveries WHERE status <> 'sent' GROUP BY status")
    checks.add(label + "deliveries lost", "%d of %d" % (lost, len(want_fcm) + len(want_hook)), "0",
               lost == 0 and stray == 0, "lost %d, not created but received %d" % (lost, stray))
    checks.add(label + "deliveries not 'sent'", sum(n for _, n in waiting), "0", not waiting, "statuses %s" % waiting)
    stats = fakes.get("/stats")
    checks.add(label + "bad signatures / rejected sends", "%d / %d" % (stats["webhook_bad_signatures"], stats["rejections"]),
               "0 / 0", stats["webhook_bad_signatures"] == 0 and stats["rejections"] == 0)
    return got_fcm, got_hook, dups


def integrity(db):
    con = sqlite3.connect(db, timeout=30)
    try:
        return [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
    finally:
        con.close()


# ---------------------------------------------------------------------------
# overlap


def section_overlap(a, root, checks):
    series = Series(a.seed, a.rounds)
    users = ["user%d" % i for i in range(10)]
    alerts = make_alerts(a.seed, a.alerts, users)
    provider = ProviderFake(series)
    try:
        for variant in ("tick", "chain"):
            fakes = start_fakes(a, root, "fakes-" + variant)
            try:
                dep = Deployment(root, "overlap-" + variant, a.binary, provider, fakes)
                tokens = dep.setup(alerts, series, users, 2)
                runs, lock_skipped = [], 0
                rng = random.Random("%s/overlap/%s" % (a.seed, variant))
                started = time.monotonic()
                for r in range(a.rounds):
                    provider.round = r
                    delays = [rng.uniform(0, 0.2) for _ in range(a.processes)]
                    results = [None] * a.processes

                    def worker(k):
                        time.sleep(delays[k])
                        if variant == "tick":
                            results[k] = [dep.run(["tick"])]
                        else:  # the chain: fetch && evaluate && notify
                            out = []
                            for step in ("fetch", "evaluate", "notify"):
                                out.append(dep.run([step]))
                                if out[-1].rc != 0:
                                    break
                            results[k] = out
                    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.processes)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    for res in results:
                        runs.extend(res)
                    if not a.quiet and (r + 1) % max(1, a.rounds // 5) == 0:
                        print("overlap %s: round %d/%d, %.0f s" % (variant, r + 1, a.rounds, time.monotonic() - started),
                              file=sys.stderr, flush=True)
                lock_skipped = sum(1 for x in runs if x.rc == 75 and TICK_LOCK_LINE in x.err and x.err.count(b"\n") == 1)
                crashes, busy, other = classify(runs, lambda x: x.rc == 0 or (x.rc == 75 and TICK_LOCK_LINE in x.err))
                ok, drains = dep.drain(60)
                # each process of the chain counts once, by its first step
                started_processes = sum(1 for x in runs if x.argv[0] in ("tick", "fetch"))
                checks.add(variant + ": processes run", started_processes, "%d rounds x %d" % (a.rounds, a.processes),
                           started_processes == a.rounds * a.processes)
                if variant == "tick":
                    checks.info.append("tick: %d of %d found another tick holding the lock and did nothing (exit 75, "
                                       "documented)" % (lock_skipped, len(runs)))
                checks.add(variant + ": crashes or hangs", len(crashes), "0", not crashes, crashes and describe(crashes[0]))
                checks.add(variant + ": busy / database is locked", len(busy), "0", not busy, busy and describe(busy[0]))
                checks.add(variant + ": other failed runs", len(other), "0", not other, other and describe(other[0]))
                stored = stored_rounds(dep, series)
                checks.add(variant + ": rounds whose quotes were stored", "%d of %d" % (len(stored), a.rounds), "all",
                           len(stored) == a.rounds)
                got_fcm, got_hook, dups = outcome_checks(checks, dep, series, alerts, tokens, fakes, stored, variant + ": ")
                checks.add(variant + ": duplicates received", dups, "0", dups == 0 and ok)
                checks.add(variant + ": integrity_check", integrity(dep.db)[0], "ok", integrity(dep.db) == ["ok"])
            finally:
                fakes.stop()
    finally:
        provider.stop()


def stored_rounds(dep, series):
    """The rounds for which every symbol has its quote stored (with the round's price)."""
    rows = dep.sql("SELECT symbol, observed_at / 1000, price FROM quotes")
    have = {}
    for sym, obs, price in rows:
        r = (obs - series.t0) // STEP
        if 0 <= r < series.rounds and series.prices.get(sym, [None] * series.rounds)[r] == price:
            have.setdefault(r, set()).add(sym)
    return [r for r in range(series.rounds) if have.get(r) == set(series.prices)]


def start_fakes(a, root, name):
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    fakes = Fakes(a.fakes, folder)
    fakes.account_path = os.path.join(folder, "firebase.json")
    fakes.secret_path = os.path.join(folder, "hook.secret")
    return fakes


# ---------------------------------------------------------------------------
# crash


def section_crash(a, root, checks):
    # Three clean rounds first measure how long each step takes; a kill that comes
    # after its process ended leaves a clean run, and the rounds go on until K landed.
    rounds = 2 * a.kills + 3
    series = Series(a.seed, rounds)
    users = ["user%d" % i for i in range(10)]
    alerts = make_alerts(a.seed, a.alerts, users)
    provider = ProviderFake(series)
    fakes = start_fakes(a, root, "fakes-crash")
    try:
        dep = Deployment(root, "crash", a.binary, provider, fakes)
        tokens = dep.setup(alerts, series, users, 2)
        rng = random.Random("%s/crash" % a.seed)
        durations = {"fetch": [], "evaluate": [], "notify": []}
        runs, kills, landed, bad_integrity = [], [], 0, []
        in_flight = {}  # notification id -> kills that left one of its deliveries 'sending'
        started = time.monotonic()
        for r in range(rounds):
            if landed >= a.kills:
                rounds = r
                break
            provider.round = r
            victim = rng.choice(["fetch", "evaluate", "notify"]) if r >= 3 else None
            for step in ("fetch", "evaluate", "notify"):
                if step != victim:
                    x = dep.run([step])
                    durations[step].append(x.seconds)
                    runs.append(x)
                    continue
                # a random moment of the step's usual run, the start and the commit included
                typical = sorted(durations[step])[len(durations[step]) // 2]
                delay = rng.uniform(0, typical)
                # claims an earlier kill left (their lease still runs) are not this kill's
                sending = "SELECT id, lease_until, notification_id FROM deliveries WHERE status = 'sending'"
                left_before = {row[:2] for row in dep.sql(sending)}
                t = time.monotonic()
                p = dep.start([step])
                time.sleep(delay)
                killed = p.poll() is None
                if killed:
                    p.send_signal(signal.SIGKILL)
                out, err = p.communicate()
                x = Run([step], p.returncode, out, err, time.monotonic() - t, killed)
                runs.append(x)
                if killed:
                    landed += 1
                    kills.append((r, step, delay))
                    if step == "notify":
                        caught = {nid for (did, lease, nid) in dep.sql(sending) if (did, lease) not in left_before}
                        for nid in caught:
                            in_flight.setdefault(str(nid), []).append(len(kills))
                    result = integrity(dep.db)
                    if result != ["ok"]:
                        bad_integrity.append("round %d, %s killed after %.3f s: %s" % (r, step, delay, result[:3]))
            # the next cron minute: a clean tick catches up on whatever the kill left
            runs.append(dep.run(["tick"]))
            if not a.quiet and (r + 1) % 20 == 0:
                print("crash: round %d, %d of %d kills landed, %.0f s" % (r + 1, landed, a.kills, time.monotonic() - started),
                      file=sys.stderr, flush=True)
        crashes, busy, other = classify(runs, lambda x: x.rc == 0)
        ok, drains = dep.drain(60)  # after the last leases run out (18 s), their deliveries go out again
        checks.add("kill -9 that landed mid-run", "%d in %d rounds" % (landed, rounds - 3), "%d" % a.kills, landed == a.kills)
        by_step = {s: sum(1 for k in kills if k[1] == s) for s in ("fetch", "evaluate", "notify")}
        checks.add("kills per step (fetch/evaluate/notify)", "%(fetch)d / %(evaluate)d / %(notify)d" % by_step, "each > 0",
                   all(by_step.values()))
        checks.add("integrity_check failures", len(bad_integrity), "0", not bad_integrity, bad_integrity and bad_integrity[0])
        checks.add("crashes or hangs of clean runs", len(crashes), "0", not crashes, crashes and describe(crashes[0]))
        checks.add("busy / database is locked", len(busy), "0", not busy, busy and describe(busy[0]))
        checks.add("other failed clean runs", len(other), "0", not other, other and describe(other[0]))
        checks.add("all deliveries finished after the kills", "yes" if ok else "no", "yes", ok)
        stored = stored_rounds(dep, series)
        checks.add("rounds whose quotes were stored", "%d of %d" % (len(stored), rounds), "all", len(stored) == rounds)
        got_fcm, got_hook, dups = outcome_checks(checks, dep, series, alerts, tokens, fakes, stored)
        # A killed notify may have sent a message it had no time to record: it goes out
        # again after the lease. Each such duplicate must belong to a notification that
        # the kill left 'sending', at most one extra copy per kill that caught it.
        unexplained, per_kill = [], {}
        for key, c in list(got_fcm.items()) + [((None, n), c) for n, c in got_hook.items()]:
            if c <= 1:
                continue
            nid = key[1]
            caught = in_flight.get(nid, [])
            if c - 1 > len(caught):
                unexplained.append("notification %s received %d times, in flight at %d kills" % (nid, c, len(caught)))
            for k in caught[:c - 1]:
                per_kill[k] = per_kill.get(k, 0) + 1
        checks.add("duplicates: copies per message per kill", "%d copies after %d notify kills" % (dups, by_step["notify"]),
                   "<= 1, of a kill's", not unexplained, unexplained and unexplained[0])
        checks.info.append("duplicates: the most messages one kill doubled: %d (a kill catches up to [notify] "
                           "concurrency sends in flight, and outcomes not yet written: those of the store step under way)"
                           % max(per_kill.values() or [0]))
        checks.add("integrity_check at the end", integrity(dep.db)[0], "ok", integrity(dep.db) == ["ok"])
    finally:
        fakes.stop()
        provider.stop()


# ---------------------------------------------------------------------------
# disk: full, then read-only


def section_disk(a, root, checks):
    mnt = os.path.join(root, "small-fs")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], capture_output=True)
    if r.returncode != 0:
        checks.add("mount a 16 MB tmpfs", "failed", "mounted", False,
                   "needs root (mount -t tmpfs): %s" % r.stderr.decode(errors="replace").strip())
        return
    try:
        disk_cases(a, root, mnt, checks)
    finally:
        r = subprocess.run(["umount", "-l", mnt], capture_output=True)
        if r.returncode != 0:  # rmtree must not reach into a file system still mounted
            raise SystemExit("disk: umount %s failed: %s" % (mnt, r.stderr.decode(errors="replace").strip()))


def snapshot(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(map(repr, con.execute("SELECT * FROM \"%s\"" % t).fetchall())) for t in tables}
    finally:
        con.close()


def truncate_wal(db):
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def fill(path):
    """Fills the file system of `path` to the last byte."""
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        for size in (4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def disk_cases(a, root, mnt, checks):
    series = Series(a.seed, 3)
    provider = ProviderFake(series)
    fakes = start_fakes(a, root, "fakes-disk")
    try:
        dep = Deployment(root, "disk", a.binary, provider, fakes)
        dep.db = os.path.join(mnt, "stockwatch.db")
        dep.env["STOCKWATCH_DB"] = dep.db
        users = ["user0", "user1"]
        alerts = make_alerts(a.seed, 200, users)
        dep.setup(alerts, series, users, 1)
        big = "\n".join(json.dumps({"user": "user0", "symbol": STOCKS[i % len(STOCKS)], "condition": {"kind": "above", "value": 1000 + i}})
                        for i in range(5000)) + "\n"
        csv_path = os.path.join(dep.dir, "quotes.csv")
        with open(csv_path, "w") as f:
            t = series.observed(2)
            for sym in STOCKS + FX:
                f.write("%s,%s,%d\n" % (sym, series.prices[sym][2], t))
        provider.round = 1
        writers = [
            (["alert", "import", "-"], big.encode()),
            (["alert", "add", "AAPL", "--above", "1", "--user", "user0"], None),
            (["user", "add", "carol"], None),
            (["device", "add", "--user", "user0", "--fcm-token", "full-disk-token"], None),
            (["fetch"], None),
            (["fetch", "--from", csv_path], None),
            (["tick"], None),
        ]
        # 1. a full disk: each writing command fails with one clear line, exit 75, and
        # changes nothing; once there is room again, the same command works.
        filler = os.path.join(mnt, "filler")
        bad, changed = [], []
        for argv, stdin in writers:
            before = snapshot(dep.db)
            truncate_wal(dep.db)  # else a small write can fit in the WAL's old pages
            fill(filler)
            x = dep.run(argv, stdin_data=stdin)
            lines = x.err.decode("utf-8", "replace").strip().split("\n")
            if x.rc != 75 or len(lines) != 1 or "disk full" not in lines[0] or x.out:
                bad.append(describe(x))
            os.unlink(filler)
            if snapshot(dep.db) != before or integrity(dep.db) != ["ok"]:
                changed.append(" ".join(argv))
            y = dep.run(argv, stdin_data=stdin)
            if y.rc != 0:
                bad.append("with room again: " + describe(y))
        checks.add("disk full: exit 75, one 'disk full' line", "%d of %d wrong" % (len(bad), len(writers)), "0", not bad,
                   bad and bad[0])
        checks.add("disk full: nothing half-written", "%d changed" % len(changed), "0", not changed,
                   changed and changed[0])
        # 2. a read-only file system: a clear error naming it, exit 69, nothing changed.
        before = snapshot(dep.db)
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        bad = []
        for argv, stdin in writers + [(["alert", "list"], None), (["status"], None)]:
            x = dep.run(argv, stdin_data=stdin)
            lines = x.err.decode("utf-8", "replace").strip().split("\n")
            if x.rc != 69 or len(lines) != 1 or "read-only" not in lines[0] or x.out:
                bad.append(describe(x))
        subprocess.run(["mount", "-o", "remount,rw", mnt], check=True)
        checks.add("read-only: exit 69, one line naming it", "%d of %d wrong" % (len(bad), len(writers) + 2), "0",
                   not bad, bad and bad[0])
        checks.add("read-only: nothing changed", "yes" if snapshot(dep.db) == before else "no", "yes",
                   snapshot(dep.db) == before)
        checks.add("integrity_check at the end", integrity(dep.db)[0], "ok", integrity(dep.db) == ["ok"])
    finally:
        fakes.stop()
        provider.stop()


# ---------------------------------------------------------------------------


def parse_section_args(description, add_own):
    """The options the pipeline-style sections share (binary, fakes, seed, sizes, keep,
    quiet), plus the section's own from add_own(parser); the binaries resolved."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=description)
    add_own(ap)
    ap.add_argument("--binary", default=os.environ.get("STOCKWATCH_BIN", os.path.join(repo, ".build/release/stockwatch")))
    ap.add_argument("--fakes", default=None, help="stockwatch-fakes (default: beside --binary)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    a.fakes = os.path.abspath(a.fakes or os.path.join(os.path.dirname(a.binary), "stockwatch-fakes"))
    return a


def run_section(section, a, body, header):
    """Runs body(a, root, checks) in a fresh temporary folder and prints the report;
    the exit status (2 when a binary is missing)."""
    for b in (a.binary, a.fakes):
        if not os.access(b, os.X_OK):
            print("%s: no executable binary at %s" % (section, b), file=sys.stderr)
            return 2
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="stockwatch-%s-" % section)
    checks = Checks(section)
    try:
        body(a, root, checks)
    except Exception as e:  # noqa: BLE001
        checks.add("setup", "exception", "none", False, "%s: %s" % (type(e).__name__, e))
    status = checks.report(header + "; binary %s" % a.binary, started)
    if a.keep:
        print("kept %s" % root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return status


def main():
    def own(ap):
        ap.add_argument("section", choices=["overlap", "crash", "disk"])
        ap.add_argument("--processes", type=int, default=20)
    a = parse_section_args(__doc__.split("\n")[0], own)
    header = {
        "overlap": "overlap: seed %d, %d rounds x %d processes, %d alerts" % (a.seed, a.rounds, a.processes, a.alerts),
        "crash": "crash: seed %d, %d kill -9 rounds, %d alerts" % (a.seed, a.kills, a.alerts),
        "disk": "disk: a 16 MB tmpfs, full then read-only",
    }[a.section]
    return run_section(a.section, a, {"overlap": section_overlap, "crash": section_crash, "disk": section_disk}[a.section], header)


if __name__ == "__main__":
    sys.exit(main())
