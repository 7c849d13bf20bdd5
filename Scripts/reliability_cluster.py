#!/usr/bin/env python3
"""The cluster section of Scripts/reliability (issue 16): the whole pipeline as
services on one PostgreSQL, killed and restarted under load.

On one local PostgreSQL (PGHOST etc.; `.ci/run` runs it inside pg_virtualenv):
4 `notify --follow` workers (restarted when they exit, as systemd would),
2 `serve` instances with a WebSocket client of every user on each, and for
--rounds R rounds (100) 2 `fetch` processes started together, then 2
`evaluate` processes started together, against the provider fake of the
overlap section serving one round's prices at a time. Meanwhile:

  - --kills K (200) kill -9, spread over the rounds: mostly notify workers,
    some fetch and evaluate processes at a random moment of their run;
  - PostgreSQL restarted twice (`pg_ctlcluster VERSION NAME restart`), a third
    and two thirds of the way through.

Then the workers are stopped, one `tick` runs, and `notify` drains what is left.
Checks: every process exits 0, 69 or 75 or is killed (serve never exits, it
recovers by itself); the notifications are exactly those the rules give for
the rounds whose quotes were stored (none judged twice); no delivery lost;
duplicates received never more than the deliveries that were `sending` at the
kills; every stream client of both instances got every notification of its
user exactly once, by id.

Runs under Scripts/test-python (the `websockets` package). The final line is
`cluster: N passed, N failed`.
"""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliability_pipeline import (  # noqa: E402
    CRASH_MARKERS, Deployment, ProviderFake, Run, Series, describe, make_alerts, outcome_checks, parse_section_args,
    run_section, start_fakes, stored_rounds)
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

PG_ENV = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGSYSCONFDIR")


def psql(sql, database="postgres"):
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-d", database, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    def value(field):
        try:
            return int(field)
        except ValueError:
            try:
                return float(field)
            except ValueError:
                return field
    return [tuple(value(f) for f in line.split("\t")) for line in out.splitlines() if line]


def cluster_of_server():
    """(version, name) of the cluster on PGPORT, for pg_ctlcluster."""
    port = os.environ.get("PGPORT", "5432")
    for line in subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == port:
            return fields[0], fields[1]
    raise RuntimeError("no cluster on port %s in pg_lsclusters" % port)


class ClusterDeployment(Deployment):
    """The overlap section's deployment, on a PostgreSQL database of its own."""

    def __init__(self, root, binary, provider, fakes, database):
        super().__init__(root, "cluster", binary, provider, fakes)
        self.database = database
        self.db = "postgres:///%s" % database
        self.env["STOCKWATCH_DB"] = self.db
        for k in PG_ENV:
            if k in os.environ:
                self.env[k] = os.environ[k]
        with open(self.config, "a") as f:
            # Every client connects from 127.0.0.1.
            f.write("[serve]\nmax_connections_per_address = 0\n")

    def sql(self, query, args=()):
        assert not args
        for attempt in range(30):  # the server may be restarting
            try:
                return psql(query, self.database)
            except subprocess.CalledProcessError:
                if attempt == 29:
                    raise
                time.sleep(1)

    def add_users(self, users, devices_per_user):
        api_tokens, device_tokens = {}, {}
        for u in users:
            r = self.run(["user", "add", u, "--json"])
            if r.rc != 0:
                raise RuntimeError("user add %s: exit %s: %s" % (u, r.rc, r.err.decode(errors="replace")))
            api_tokens[u] = json.loads(r.out)["token"]
            device_tokens[u] = ["cluster-%s-device-%d" % (u, d) for d in range(devices_per_user)]
            for t in device_tokens[u]:
                r = self.run(["device", "add", "--user", u, "--fcm-token", t])
                if r.rc != 0:
                    raise RuntimeError("device add: exit %s: %s" % (r.rc, r.err.decode(errors="replace")))
        return api_tokens, device_tokens

    def add_alerts(self, alerts, series):
        lines = [json.dumps({"user": a["user"], "symbol": a["symbol"], "trigger": a["trigger"], "channels": a["channels"],
                             "condition": {"kind": a["kind"], "value": series.levels[a["symbol"]][a["level_index"]]}})
                 for a in alerts]
        r = self.run(["alert", "import", "-"], stdin_data=("\n".join(lines) + "\n").encode())
        if r.rc != 0:
            raise RuntimeError("alert import: exit %s: %s" % (r.rc, r.err.decode(errors="replace")))


class Supervisor:
    """Long-running processes restarted when they exit, as systemd would; every exit
    is recorded with whether the harness killed it."""

    def __init__(self, dep, argv, count, restart=True):
        self.dep, self.argv, self.restart = dep, argv, restart
        self.lock = threading.Lock()
        self.procs = [None] * count
        self.killed = set()  # pids killed on purpose
        self.exits = []  # Run records
        self.stopping = False
        for i in range(count):
            self.spawn(i)
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def spawn(self, i):
        p = self.dep.start(self.argv)
        p.started = time.monotonic()
        p.err_chunks = []
        threading.Thread(target=lambda: p.err_chunks.append(p.stderr.read()), daemon=True).start()
        threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
        self.procs[i] = p

    def watch(self):
        while True:
            with self.lock:
                if self.stopping:
                    return
                for i, p in enumerate(self.procs):
                    if p.poll() is not None:
                        time.sleep(0.05)  # let the stderr reader finish
                        err = b"".join(p.err_chunks)
                        self.exits.append(Run(self.argv, p.returncode, b"", err, time.monotonic() - p.started, p.pid in self.killed))
                        if self.restart:
                            self.spawn(i)
            time.sleep(0.1)

    def kill_one(self, rng):
        with self.lock:
            p = rng.choice([p for p in self.procs if p.poll() is None] or [None])
            if p is None:
                return False
            self.killed.add(p.pid)
            p.send_signal(signal.SIGKILL)
            return True

    def stop(self, sig=signal.SIGTERM, timeout=20):
        with self.lock:
            self.stopping = True
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)
        for p in self.procs:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            time.sleep(0.05)
            self.exits.append(Run(self.argv, p.returncode, b"", b"".join(p.err_chunks), time.monotonic() - p.started,
                                  p.pid in self.killed))


class StreamClients:
    """A WebSocket client of every user on every serve instance, in a thread of its own,
    recording the notification ids each receives."""

    def __init__(self, ports, api_tokens):
        self.ports, self.api_tokens = ports, api_tokens
        self.received = {(port, user): [] for port in ports for user in api_tokens}
        self.closed = []  # (port, user, reason) of a stream that ended before the harness closed it
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.connected = 0
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),), daemon=True)
        self.thread.start()

    async def client(self, port, user):
        headers = {"Authorization": "Bearer " + self.api_tokens[user]}
        try:
            async with ws_connect("ws://127.0.0.1:%d/v1/stream" % port, additional_headers=headers, max_size=1 << 20,
                                  open_timeout=10) as ws:
                self.connected += 1
                if self.connected == len(self.received):
                    self.ready.set()
                async for text in ws:
                    message = json.loads(text)
                    if message.get("type") == "notification":
                        self.received[(port, user)].append(message["id"])
                if not self.stopping.is_set():
                    self.closed.append((port, user, "closed by the server: %s" % ws.close_code))
        except Exception as e:  # noqa: BLE001
            if not self.stopping.is_set():
                self.closed.append((port, user, "%s: %s" % (type(e).__name__, e)))
                self.ready.set()

    async def main(self):
        self.stopping = asyncio.Event()
        self.tasks = [asyncio.create_task(self.client(port, user)) for port in self.ports for user in self.api_tokens]
        await self.stopping.wait()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def stop(self):
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=10)


def start_serve(dep):
    p = dep.start(["serve", "--listen", "127.0.0.1:0"])
    line = p.stdout.readline().decode()
    if not line.startswith("listening on 127.0.0.1:"):
        p.kill()
        raise RuntimeError("serve did not start: %r %s" % (line, p.stderr.read(2000)))
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    p.err_chunks = []
    threading.Thread(target=lambda: p.err_chunks.append(p.stderr.read()), daemon=True).start()
    return p, int(line.rsplit(":", 1)[1])


def stored_by_symbol(dep, series):
    """Per symbol, the rounds whose quote (with the round's price) was stored."""
    have = {sym: set() for sym in series.prices}
    for sym, obs, price in dep.sql("SELECT symbol, observed_at / 1000, price FROM quotes"):
        r = (obs - series.t0) // 60
        if sym in have and 0 <= r < series.rounds and series.prices[sym][r] == price:
            have[sym].add(r)
    return {sym: sorted(rounds) for sym, rounds in have.items()}


def run_killable(dep, argv, kill_after):
    """Runs one step; with kill_after (seconds), kill -9 at that moment if still running."""
    started = time.monotonic()
    p = dep.start(argv)
    killed = False
    if kill_after is not None:
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            killed = True
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Run(argv, "timeout", out, err, time.monotonic() - started)
    return Run(argv, p.returncode, out, err, time.monotonic() - started, killed)


def section_cluster(a, root, checks):
    if not os.environ.get("PGHOST"):
        raise RuntimeError("no PostgreSQL: set PGHOST (or run under pg_virtualenv)")
    version, name = cluster_of_server()
    database = "stockwatch_cluster_%d" % os.getpid()
    psql("DROP DATABASE IF EXISTS %s" % database)
    psql("CREATE DATABASE %s" % database)
    series = Series(a.seed, a.rounds)
    users = ["user%d" % i for i in range(10)]
    alerts = make_alerts(a.seed, a.alerts, users)
    provider = ProviderFake(series)
    fakes = start_fakes(a, root, "fakes-cluster")
    rng = random.Random("%s/cluster" % a.seed)
    workers = serves = clients = None
    try:
        dep = ClusterDeployment(root, a.binary, provider, fakes, database)
        r = dep.run(["db", "migrate"])
        if r.rc != 0:
            raise RuntimeError(describe(r))
        api_tokens, device_tokens = dep.add_users(users, 2)
        dep.add_alerts(alerts, series)
        serves = [start_serve(dep) for _ in range(2)]
        clients = StreamClients([port for _, port in serves], api_tokens)
        if not clients.ready.wait(30) or clients.closed:
            raise RuntimeError("stream clients did not connect: %s" % clients.closed[:3])
        workers = Supervisor(dep, ["notify", "--follow"], 4)

        runs, kills, in_flight, restarts = [], {"notify": 0, "fetch": 0, "evaluate": 0}, 0, []
        restart_rounds = {a.rounds // 3, 2 * a.rounds // 3}
        kills_per_round = a.kills / a.rounds
        owed = 0.0
        started = time.monotonic()
        for rnd in range(a.rounds):
            provider.round = rnd
            if rnd in restart_rounds:
                def restart():
                    t0 = time.monotonic()
                    x = subprocess.run(["pg_ctlcluster", version, name, "restart"], capture_output=True)
                    restarts.append((x.returncode, time.monotonic() - t0, x.stderr.decode(errors="replace")[:200]))
                threading.Timer(rng.uniform(0, 0.3), restart).start()
            owed += kills_per_round
            victims = []
            while owed >= 1:
                owed -= 1
                victims.append(rng.choice(["notify", "notify", "notify", "fetch", "evaluate"]))
            for step in ("fetch", "evaluate"):
                kill_at = [None, None]
                for v in victims:
                    free = [k for k in range(2) if kill_at[k] is None]
                    if v == step and free:
                        kill_at[rng.choice(free)] = rng.uniform(0, 0.08)
                    elif v == step:
                        owed += 1  # both of this step's processes are victims already
                results = [None, None]

                def one(k, step=step, kill_at=kill_at, results=results):
                    results[k] = run_killable(dep, [step], kill_at[k])
                threads = [threading.Thread(target=one, args=(k,)) for k in range(2)]
                for t in threads:
                    t.start()
                for v in victims:
                    if v == "notify":
                        time.sleep(rng.uniform(0, 0.05))
                        sending = dep.sql("SELECT count(*) FROM deliveries WHERE status = 'sending'")[0][0]
                        if workers.kill_one(rng):
                            in_flight += sending
                            kills["notify"] += 1
                        else:
                            owed += 1  # every worker was restarting: later
                victims = [v for v in victims if v != "notify"]
                for t in threads:
                    t.join()
                landed = sum(1 for x in results if x.killed)
                kills[step] += landed
                # A kill that came after its process ended is owed to a later round.
                owed += sum(1 for k in kill_at if k is not None) - landed
                runs.extend(results)
            if not a.quiet and (rnd + 1) % max(1, a.rounds // 5) == 0:
                print("cluster: round %d/%d, %.0f s" % (rnd + 1, a.rounds, time.monotonic() - started), file=sys.stderr, flush=True)

        # Kills still owed (their fetch or evaluate ended first) go to the workers.
        for _ in range(50):
            if owed <= 0.5:
                break
            time.sleep(0.2)
            sending = dep.sql("SELECT count(*) FROM deliveries WHERE status = 'sending'")[0][0]
            if workers.kill_one(rng):
                in_flight += sending
                kills["notify"] += 1
                owed -= 1
        # The end: workers stopped, one tick, then notify until nothing waits.
        time.sleep(1)
        workers.stop()
        tick = dep.run(["tick"], timeout=120)
        drained, drains = dep.drain(90)
        time.sleep(2)  # the last notifications reach the streams (within 1 s)

        all_runs = runs + workers.exits + [tick] + drains
        crashes = [x for x in all_runs if not x.killed and (x.rc == "timeout" or (isinstance(x.rc, int) and x.rc < 0)
                                                            or any(m in x.err for m in CRASH_MARKERS))]
        def allowed(x):
            if x.killed:
                return True
            if x.argv == ["notify", "--follow"]:
                return x.rc in (0, 69, 75)
            return x.rc in (0, 69, 75)
        other = [x for x in all_runs if x not in crashes and not allowed(x)]
        checks.add("processes run", "%d steps, %d worker exits" % (len(runs), len(workers.exits)), "all", True)
        checks.add("crashes or hangs", len(crashes), "0", not crashes, crashes and describe(crashes[0]))
        checks.add("exits other than 0, 69, 75", len(other), "0", not other, other and describe(other[0]))
        landed = sum(kills.values())
        checks.add("kill -9 landed", "%d (notify %d, fetch %d, evaluate %d)" % (landed, kills["notify"], kills["fetch"], kills["evaluate"]),
                   str(a.kills), landed >= a.kills)
        ok_restarts = [x for x in restarts if x[0] == 0]
        checks.add("PostgreSQL restarts", "%d of 2" % len(ok_restarts), "2", len(ok_restarts) == 2,
                   restarts and str([x for x in restarts if x[0] != 0][:1]))
        serve_alive = [p.poll() is None for p, _ in serves]
        checks.add("serve instances still up", "%d of 2" % sum(serve_alive), "2", all(serve_alive),
                   "serve said: %s" % b"".join(serves[0][0].err_chunks)[:200])
        checks.add("the last tick", tick.rc, "0", tick.rc == 0, describe(tick))
        exit_counts = {}
        for x in runs + workers.exits:
            key = "killed" if x.killed else str(x.rc)
            exit_counts[key] = exit_counts.get(key, 0) + 1
        checks.info.append("exits: %s; PostgreSQL restarts took %s s" % (
            ", ".join("%s %d" % kv for kv in sorted(exit_counts.items())), ", ".join("%.1f" % x[1] for x in restarts)))
        # Two fetchers split the providers between them, so a killed one can leave a
        # round with the stocks stored and not the currencies: expected per symbol.
        by_symbol = stored_by_symbol(dep, series)
        complete = stored_rounds(dep, series)
        checks.info.append("rounds whose quotes were all stored: %d of %d (a fetch killed or cut off by a restart "
                           "stores nothing of its providers' symbols that round)" % (len(complete), a.rounds))
        checks.add("rounds stored", "%d of %d" % (len(complete), a.rounds), ">= half", len(complete) * 2 >= a.rounds)
        got_fcm, got_hook, dups = outcome_checks(checks, dep, series, alerts, device_tokens, fakes, by_symbol)
        checks.add("duplicates <= sends in flight at kills", "%d <= %d" % (dups, in_flight), "yes", dups <= in_flight and drained)

        # Every stream client: every notification of its user, once each.
        by_user = {}
        for nid, user in dep.sql("SELECT n.id, u.name FROM notifications n JOIN users u ON u.id = n.user_id"):
            by_user.setdefault(user, []).append(nid)
        clients.stop()
        wrong = []
        for (port, user), ids in clients.received.items():
            want = sorted(by_user.get(user, []))
            if sorted(ids) != want:
                missing = len(set(want) - set(ids))
                wrong.append("%s on :%d: %d received, %d missing, %d twice" % (user, port, len(ids), missing, len(ids) - len(set(ids))))
        total = sum(len(v) for v in clients.received.values())
        checks.add("stream: every notification once", "%d clients wrong of %d (%d received)" % (len(wrong), len(clients.received), total),
                   "0", not wrong and not clients.closed, (wrong or [str(c) for c in clients.closed])[:1])
    finally:
        if workers is not None and not workers.stopping:
            workers.stop(signal.SIGKILL)
        if clients is not None and clients.thread.is_alive():
            clients.stop()
        for p, _ in serves or []:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        fakes.stop()
        provider.stop()
        try:
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % database)
        except subprocess.CalledProcessError:
            pass


def main():
    a = parse_section_args(__doc__.split("\n")[0], lambda ap: None)
    header = "cluster: seed %d, %d rounds, %d alerts, %d kill -9, 2 PostgreSQL restarts; 4 notify workers, 2 fetchers, " \
             "2 evaluators, 2 serve instances" % (a.seed, a.rounds, a.alerts, a.kills)
    return run_section("cluster", a, section_cluster, header)


if __name__ == "__main__":
    sys.exit(main())
