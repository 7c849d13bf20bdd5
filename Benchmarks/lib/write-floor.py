#!/usr/bin/env python3
"""The floor of one evaluate's writes: the rows a real run wrote, written again by the
database alone (no quote read, no rule judged, no client of ours), on a fresh copy of the
set-up it started from. No evaluate can be faster than its writes.

  write-floor.py DONE SETUP BINARY [--designs]

DONE: the SQLite store after a timed `stockwatch evaluate`; SETUP: the same store before
it. Prints the seconds SQLite takes (Python's sqlite3, one transaction, closed so that the
WAL is checkpointed, as stockwatch's last connection does).

--designs also measures the floor of other designs of the same information (median of
five alternating runs each, WAL frames of the commit beside it), to say which change of
design would move it (issues 15 and 19):
  SQLite:
    today    the alerts' rows updated in place: the state leads the seek indexes' keys,
             so each firing moves index entries;
    narrow   the state and last firing in a narrow table keyed by alert, which no index
             carries (its ids shuffled, as firings fall across the table in real use: the
             benchmark's firing alerts have neighbouring ids);
    log      each state change appended to a log table;
    none     no state written at all: the notifications, deliveries and watermarks alone.
  SQLite, what the log leaves out: a table of changes (one row per changed alert, K of
  them, random alerts) must be read with its alerts on every evaluate and folded into the
  alerts from time to time; for K = 1, 2 and 4 times this run's changes, the median of
  three reads and three folds (an UPDATE ... FROM of the K rows, then a checkpoint).
  PostgreSQL, when PGHOST is set (the set-up moved there with `db copy`, then vacuumed;
  rounds of three runs, the wall time of the transaction in psql):
    today    the same statements as stockwatch's, declared foreign keys checked per row;
    log      that, with the state changes appended to a log instead of updating alerts;
    nofk     the same without foreign-key checks (session_replication_role = replica);
    nofklog  that, with the state changes appended to a log instead of updating alerts.
"""
import csv, os, random, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

from synced_copy import copy_synced

done, setup, binary = sys.argv[1:4]
designs = "--designs" in sys.argv[4:]
work = tempfile.mkdtemp()

d = sqlite3.connect(done)
d.execute("ATTACH ? AS setup", (setup,))
changed = d.execute("""SELECT a.id, a.state, a.last_fired_at FROM alerts a JOIN setup.alerts s ON s.id = a.id
    WHERE a.state IS NOT s.state OR a.last_fired_at IS NOT s.last_fired_at""").fetchall()
trails = d.execute("""SELECT t.alert_id, t.trailing_from FROM alert_trails t LEFT JOIN setup.alert_trails s ON s.alert_id = t.alert_id
    WHERE s.trailing_from IS NOT t.trailing_from""").fetchall()
notes = d.execute("SELECT id, alert_id, user_id, symbol, price, observed_at, message, created_at FROM notifications ORDER BY id").fetchall()
deliveries = d.execute("SELECT notification_id, channel, next_attempt_at, created_at, updated_at FROM deliveries ORDER BY id").fetchall()
marks = d.execute("SELECT e.symbol, e.observed_at FROM evaluation_progress e LEFT JOIN setup.evaluation_progress s ON s.symbol = e.symbol "
                  "WHERE s.observed_at IS NOT e.observed_at").fetchall()
d.close()


def fresh_copy(path):
    """A connection to a new copy of the set-up at `path`."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    copy_synced(setup, path)
    return sqlite3.connect(path, isolation_level=None)


def insert_batched(c, head, row, rows, tail="", batch=100):
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        c.execute(f"{head} VALUES {', '.join([row] * len(chunk))} {tail}", [v for r in chunk for v in r])


def sqlite_run(design):
    floor = f"{work}/floor.db"
    c = fresh_copy(floor)
    if design == "narrow":
        ids = [i for (i,) in c.execute("SELECT id FROM alerts")]
        shuffled = ids[:]
        random.Random(19).shuffle(shuffled)
        slot = dict(zip(ids, shuffled))
        c.execute("CREATE TABLE alert_states (alert_id INTEGER PRIMARY KEY, state TEXT NOT NULL, last_fired_at INTEGER)")
        c.executemany("INSERT INTO alert_states VALUES (?, ?, ?)",
                      sorted((slot[i], s, t) for i, s, t in c.execute("SELECT id, state, last_fired_at FROM alerts")))
    elif design == "log":
        c.execute("CREATE TABLE alert_state_log (seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, state TEXT NOT NULL, last_fired_at INTEGER)")
    c.close()
    c = sqlite3.connect(floor, isolation_level=None)
    # The set-up's own pages out of the WAL, and none checkpointed before the frames are counted.
    for pragma in ("journal_mode = WAL", "wal_checkpoint(TRUNCATE)", "synchronous = NORMAL", "foreign_keys = ON",
                   "cache_size = -65536", "wal_autocheckpoint = 0"):
        c.execute("PRAGMA " + pragma)
    start = time.perf_counter()
    c.execute("BEGIN IMMEDIATE")
    if design == "today":
        c.executemany("UPDATE alerts SET state = ?, last_fired_at = ? WHERE id = ?", [(s, t, i) for i, s, t in changed])
    elif design == "narrow":
        c.executemany("UPDATE alert_states SET state = ?, last_fired_at = ? WHERE alert_id = ?", [(s, t, slot[i]) for i, s, t in changed])
    elif design == "log":
        c.executemany("INSERT INTO alert_state_log (alert_id, state, last_fired_at) VALUES (?, ?, ?)", changed)
    c.executemany("INSERT INTO alert_trails (alert_id, trailing_from) VALUES (?, ?) "
                  "ON CONFLICT (alert_id) DO UPDATE SET trailing_from = excluded.trailing_from", trails)
    # 100 rows to a statement, as stockwatch's evaluate writes them (RowBatches).
    insert_batched(c, "INSERT INTO evaluation_progress (symbol, observed_at)", "(?, ?)", marks,
                   "ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at")
    insert_batched(c, "INSERT INTO notifications (id, alert_id, user_id, symbol, price, observed_at, message, created_at)",
                   "(?, ?, ?, ?, ?, ?, ?, ?)", notes)
    insert_batched(c, "INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)",
                   "(?, ?, 'pending', 0, ?, ?, ?)", deliveries)
    c.execute("COMMIT")
    frames = (os.path.getsize(floor + "-wal") - 32) // (c.execute("PRAGMA page_size").fetchone()[0] + 24)
    c.close()  # the last connection checkpoints, as stockwatch's does
    return time.perf_counter() - start, frames


def overlay_costs(k):
    """(read seconds, fold seconds) for a table of k changes of random alerts."""
    c = sqlite3.connect(setup)
    ids = [i for (i,) in c.execute("SELECT id FROM alerts")]
    c.close()
    chosen = sorted(random.Random(7).sample(ids, min(k, len(ids))))
    reads, folds = [], []
    path = f"{work}/overlay.db"
    for _ in range(3):
        c = fresh_copy(path)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
            c.execute("PRAGMA " + pragma)
        c.execute("CREATE TABLE changes (alert_id INTEGER PRIMARY KEY, state TEXT NOT NULL, last_fired_at INTEGER)")
        c.execute("BEGIN")
        c.executemany("INSERT INTO changes VALUES (?, 'firing', 1)", [(i,) for i in chosen])
        c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        c = sqlite3.connect(path, isolation_level=None)
        for pragma in ("synchronous = NORMAL", "cache_size = -65536"):
            c.execute("PRAGMA " + pragma)
        start = time.perf_counter()
        c.execute("""SELECT a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
            a.rearm_margin_percent, c.state, c.last_fired_at, a.channels, a.snoozed_until, a.schedule
            FROM changes c JOIN alerts a ON a.id = c.alert_id""").fetchall()
        reads.append(time.perf_counter() - start)
        start = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE alerts SET state = c.state, last_fired_at = c.last_fired_at FROM changes c WHERE alerts.id = c.alert_id")
        c.execute("DELETE FROM changes")
        c.execute("COMMIT")
        c.close()
        folds.append(time.perf_counter() - start)
    return statistics.median(reads), statistics.median(folds)


def psql(sql, database="postgres"):
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database], input=sql, text=True,
                          check=True, capture_output=True).stdout.strip()


def postgres_runs():
    """{design: [seconds, ...]} over three rounds."""
    setup_db = "write_floor_setup"
    psql(f"DROP DATABASE IF EXISTS {setup_db} WITH (FORCE); CREATE DATABASE {setup_db}")
    config = f"{work}/empty.toml"
    open(config, "w").close()
    env = dict(os.environ, STOCKWATCH_CONFIG=config, STOCKWATCH_DB=f"postgres:///{setup_db}")
    subprocess.run([binary, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([binary, "db", "copy", "--from", setup, "--to", f"postgres:///{setup_db}"], env=env, check=True, stdout=subprocess.DEVNULL)
    psql("VACUUM (ANALYZE)", setup_db)
    files = {"tn": notes, "td": deliveries, "ta": changed, "tw": marks}
    for name, rows in files.items():
        with open(f"{work}/{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    update = "UPDATE alerts a SET state = t.state, last_fired_at = t.last_fired_at FROM ta t WHERE a.id = t.id;"
    append = "INSERT INTO alert_state_log (alert_id, state, last_fired_at) SELECT id, state, last_fired_at FROM ta;"
    state = {"today": update, "log": append, "nofk": update, "nofklog": append}
    copies = "".join(f"\\copy {name} FROM '{work}/{name}.csv' CSV\n" for name in files)
    results = {design: [] for design in state}
    for _ in range(3):
        for design, statement in state.items():
            psql(f"DROP DATABASE IF EXISTS write_floor_run WITH (FORCE); CREATE DATABASE write_floor_run TEMPLATE {setup_db}")
            psql("CHECKPOINT")
            out = psql(f"""
                CREATE TEMP TABLE tn (id BIGINT, alert_id BIGINT, user_id BIGINT, symbol TEXT, price FLOAT8,
                    observed_at BIGINT, message TEXT, created_at BIGINT);
                CREATE TEMP TABLE td (notification_id BIGINT, channel TEXT, next_attempt_at BIGINT, created_at BIGINT, updated_at BIGINT);
                CREATE TEMP TABLE ta (id BIGINT, state TEXT, last_fired_at BIGINT);
                CREATE TEMP TABLE tw (symbol TEXT, observed_at BIGINT);
                {copies}
                ANALYZE tn; ANALYZE td; ANALYZE ta; ANALYZE tw;
                CREATE TABLE alert_state_log (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, alert_id BIGINT NOT NULL,
                    state TEXT NOT NULL, last_fired_at BIGINT);
                {"SET session_replication_role = replica;" if design.startswith("nofk") else ""}
                SELECT clock_timestamp() AS t0 \\gset
                BEGIN;
                {statement}
                INSERT INTO evaluation_progress (symbol, observed_at) SELECT symbol, observed_at FROM tw
                    ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at;
                INSERT INTO notifications (id, alert_id, user_id, symbol, price, observed_at, message, created_at)
                    SELECT * FROM tn ORDER BY id ON CONFLICT (alert_id, observed_at) DO NOTHING;
                INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
                    SELECT notification_id, channel, 'pending', 0, next_attempt_at, created_at, updated_at FROM td;
                COMMIT;
                SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
                """, "write_floor_run")
            results[design].append(float(out.splitlines()[-1]))
    psql(f"DROP DATABASE write_floor_run WITH (FORCE); DROP DATABASE {setup_db} WITH (FORCE)")
    return results


try:
    if not designs:
        print(f"{sqlite_run('today')[0]:.2f}")
        sys.exit(0)
    print(f"write floor: {len(changed)} alert rows changed, {len(notes)} notifications, {len(deliveries)} deliveries, "
          f"{len(marks)} watermarks, {len(trails)} trail rows")
    runs = {design: [] for design in ("today", "narrow", "log", "none")}
    for _ in range(5):
        for design in runs:
            runs[design].append(sqlite_run(design))
    for design, results in runs.items():
        print(f"  SQLite {design:8s} {statistics.median(r[0] for r in results):.3f} s median "
              f"({min(r[0] for r in results):.3f}-{max(r[0] for r in results):.3f}), {results[0][1]} WAL frames")
    for times in (1, 2, 4):
        read, fold = overlay_costs(times * len(changed))
        print(f"  SQLite a table of {times * len(changed)} changes: read with its alerts {read:.3f} s, folded {fold:.3f} s")
    if os.environ.get("PGHOST"):
        for design, seconds in postgres_runs().items():
            print(f"  PostgreSQL {design:8s} {statistics.median(seconds):.3f} s median ({min(seconds):.3f}-{max(seconds):.3f})")
finally:
    shutil.rmtree(work)
