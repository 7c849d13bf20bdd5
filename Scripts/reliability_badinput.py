#!/usr/bin/env python3
"""The bad-input section of Scripts/reliability (issue 7).

Runs the stockwatch binary against a fresh temporary folder (HOME,
STOCKWATCH_DB, XDG_CONFIG_HOME, XDG_STATE_HOME and TMPDIR all point into it)
with randomly generated bad command lines and randomly mutated config files,
and checks what README.md promises for bad input:

  commands (--commands N):
    crash           no signal, no Swift trap ("Fatal error", ...)
    exit-code       the exit status is in README's table {0,1,64,65,69,70,75,78}
                    (1 only from status)
    internal-error  no exit 70 (README: "internal error (a bug)")
    db-unchanged    a command that exited non-zero left the database as it was
                    ("Bad input of any kind changes nothing in the database");
                    provider_state and access_tokens are ignored
    error-line      a rejected command prints exactly one stderr line starting
                    with "stockwatch: error: ", plus with --json one line
                    {"error":{"code","exit_status","message"}}
    error-line-ctrl the error line holds no raw control characters (a value
                    with a carriage return or an escape sequence is echoed
                    raw); beyond the brief, see README "Errors are one line"
    json-stdout     with --json, a command that exited 0 printed one JSON
                    document on stdout; beyond the brief
    timeout         every command ends within --timeout seconds

  configs (--configs M), each run as `config check` and `alert list`:
    cfg-baseline    config.example.toml with its secrets in place passes
    cfg-crash, cfg-exit-code (0 or 78), cfg-error-line (one line that names
    the config file), cfg-db-unchanged (the database is neither changed nor
    created by a failing config), cfg-expected-78 (mutations that are invalid
    by README or by TOML are refused), cfg-consistency (config check is the
    stricter one: config check 0 implies alert list 0), cfg-timeout

Python 3 standard library only. Deterministic for a given --seed, --commands,
--configs and --shards (--jobs only changes how many shards run at once).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

DOCUMENTED_EXITS = {0, 1, 64, 65, 69, 70, 75, 78}
ERROR_CODES = {"invalid_value", "usage", "not_found", "already_exists", "invalid_input",
               "config", "insecure_file", "unavailable", "temporary", "internal"}
PREFIX = b"stockwatch: error: "
IGNORED_TABLES = {"provider_state", "access_tokens"}
CRASH_MARKERS = [b"Fatal error", b"Illegal instruction", b"Segmentation", b"Current stack trace",
                 b"Stack dump", b"Trace/breakpoint trap", b"Aborted"]
# the stdout channel's line, printed on stderr under --json (README: notify)
STDOUT_CHANNEL_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*\(notification \d+\)$")
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")

# ---------------------------------------------------------------------------
# Arguments that are easy to reproduce from a shell


class LongArg(str):
    """A long value made of one unit repeated; quoted as a python3 one-liner."""

    def __new__(cls, unit, n):
        s = str.__new__(cls, unit * n)
        s.unit, s.n = unit, n
        return s


def long_arg(unit, nbytes=100 * 1024):
    return LongArg(unit, max(1, nbytes // len(unit.encode())))


def to_bytes(a):
    return a if isinstance(a, bytes) else a.encode("utf-8", "surrogateescape")


def shq(a):
    """Quote one argument for bash, readably."""
    if isinstance(a, LongArg):
        return '"$(python3 -c "import sys; sys.stdout.write(%r*%d)")"' % (a.unit, a.n)
    b = to_bytes(a)
    if b == b"":
        return "''"
    if re.fullmatch(rb"[A-Za-z0-9_./:=@%+,-]+", b):
        return b.decode()
    s = b.decode("utf-8", "surrogateescape")
    if all(ch.isprintable() and not (0xDC80 <= ord(ch) <= 0xDCFF) for ch in s) and "'" not in s:
        return "'" + s + "'"
    out = []
    for ch in s:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable() and not (0xDC80 <= ord(ch) <= 0xDCFF):
            out.append(ch)
        else:
            out.extend("\\x%02x" % c for c in ch.encode("utf-8", "surrogateescape"))
    return "$'" + "".join(out) + "'"


def show_line(b, limit=240):
    """A stderr line for the report: decoded, control characters escaped, cut."""
    s = b.decode("utf-8", "replace")
    s = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode() for ch in s)
    return s if len(s) <= limit else s[:limit] + "... (%d chars)" % len(s)


def signature(path, rc, line):
    """Groups failures that are the same bug: values in quotes and numbers blanked."""
    s = line.decode("utf-8", "replace")
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"\d+", "N", s)
    return "%s|%s|%s" % (" ".join(path), rc, s[:160])


# ---------------------------------------------------------------------------
# Value pools. {F} is replaced by the shard's fixture folder, {T} by the shard.

LONGS = [long_arg("x"), long_arg("A"), long_arg("é"), long_arg("📈"), long_arg("ab ")]
CONTROL = ["a\x01b", "tab\there", "cr\rhere", "nl\nhere", "esc\x1b[31mred", "del\x7f", "\x1b]0;title\x07",
           "bell\x07", "vt\x0bff\x0c"]
INVALID_UTF8 = [b"\xff\xfe", b"AAPL\xc3", b"\xed\xa0\x80", b"caf\xe9"]

POOLS = {
    "price": (["200", "1.05", "0.0001", "99999.99", "1", "150.5", "1.0525"],
              ["0", "-0", "-1", "-200", "1e309", "1e5", "1E2", "nan", "NaN", "inf", "-inf", "Infinity",
               "0x1A", "0x1p3", "99999999999999999999999999", "1" + "0" * 400, "0." + "0" * 400 + "1",
               "1,5", "1_000", " 5", "5 ", "+5", ".5", "5.", "5%", "", "٣", "５", "1.2.3", "0e0", "--5",
               "0.00000000000000000000001", "340282366920938463463374607431768211457"]),
    "percent": (["5", "5%", "0.5", "99", "1000", "2.5%", "99.99"],
                ["0", "-5", "100", "1001", "100%", "nan", "inf", "5%%", "%", "5 %", "1e2", "-0", "0x10", "",
                 "99.9999999999999999999", "1000.0000000001", "0%", "1e-400"]),
    "duration": (["5m", "90s", "4h", "2d", "1w", "1h30m", "24h", "520w", "3650d"],
                 ["0s", "-1h", "99999999d", "1 h", "", "5", "h", "1y", "10y", "3651d", "522w", "1.5h", "1H",
                  "PT1H", "9223372036854775807s", "18446744073709551616s", "1h-30m", "1h1h", "5m ", "m5", "∞",
                  "0", "1s1s1s", "00000000000000000001s", "315360001s", "9999999999999999999w"]),
    "symbol": (["AAPL", "MSFT", "BRK.B", "VOD.L", "EUR/USD", "USD/JPY", "aapl", "eur/usd", "A", "ABCDEFGHIJKL",
                "TSLA"],
               ["ABCDEFGHIJKLM", "EUR/EUR", "XXX/YYY", "EUR/", "/USD", "EUR/USD/GBP", "/", "A A", "AAPL ", "ÄPFEL",
                "📈", "", "-", ".", "..", "$AAPL", "A\tB", "A\x01B", "eur usd", "EURUSD=X", "AAPL\u200b", "ＡＡＰＬ",
                "A" * 200, "eur/usd ", "Eur/Usd", "123456789012", "A..B", "-AAPL", "AAPL\n"]),
    "user": (["alice", "default", "bob"],
             ["", "a" * 64, "a" * 65, "al ice", "álice", "@", ".", "..", "-rf", "bob@x", "😀", "a/b", "ALICE",
              "alice\n", "nobody", "alice "]),
    "id": (["1", "2", "3", "4"],
           ["0", "-1", "999999", "9223372036854775807", "9223372036854775808", "1.0", "abc", "0x1", "", " 1",
            "1e3", "+1", "١", "-9223372036854775808", "18446744073709551616", "01"]),
    "expires": (["2030-12-31", "2030-12-31T18:00:00Z", "2030-12-31T18:00:00+02:00", "30d", "1h"],
                ["2020-01-01", "2030-13-45", "2030-02-30", "tomorrow", "9999-12-31", "0000-01-01",
                 "2030-12-31T25:00:00Z", "2030-12-31T18:00:00", "2030-12-31 18:00:00Z", "-1d", "0s",
                 "1970-01-01T00:00:00Z", "99999-01-01", "20301231", "2030-12-31T18:00:00+25:00", "",
                 "2030-12-31T18:00:00.123456789Z", "+002030-12-31", "99999999d", "1e9"]),
    "since": (["24h", "7d", "2025-01-01", "2026-11-25T08:00:00Z", "1h"],
              ["-1h", "0s", "2999-01-01", "yesterday", "", "99999999d", "2026-02-30", "1 h", "10y",
               "0001-01-01", "2026-11-25T08:00:00", "9999999999999999999s"]),
    "trigger": (["once", "rearm", "every"], ["ONCE", "never", "", "Once ", "rearm,once", "0"]),
    "state": (["armed", "firing", "fired", "paused", "expired"], ["ARMED", "bogus", "", "armed ", "active"]),
    "channel": (["stdout"], ["phone", "console", "ops-hook", "pager", "unknown", "", "std out", "STDOUT",
                             "a" * 65, "stdout\n"]),
    "note": (["hello", "EUR weak", "x" * 1000], ["x" * 1001, "é" * 1000, "é" * 1001, "📈" * 1000, "👨‍👩‍👧" * 300,
                                                 "\x1b[31mred", "line1\nline2", ""]),
    "token": (["tok1", "tok2", "dX1c:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"],
              ["", "a b", "\x01", "tok\n1", "x" * 5000, "🔑"]),
    "label": (["Pixel 8", "work phone"], ["x" * 201, "é" * 200, "é" * 201, "", "\x1b[2J"]),
    "limit": (["1", "10", "100"], ["0", "-5", "1e3", "99999999999999999999", "abc", "", "9223372036854775807",
                                   "500", "501", "100000", "-0", "0x10"]),
    "inpath": (["{F}/quotes-good.csv", "{F}/quotes-header.csv", "{F}/quotes.ndjson", "{F}/quotes-unix.csv",
                "{F}/alerts-good.json", "{F}/alerts-good.ndjson", "-"],
               ["{F}/quotes-bad-price.csv", "{F}/quotes-negative.csv", "{F}/quotes-nan.csv", "{F}/quotes-1e309.csv",
                "{F}/quotes-future.csv", "{F}/quotes-old.csv", "{F}/quotes-bad-symbol.csv", "{F}/empty.txt",
                "{F}/garbage.bin", "{F}/invalid-utf8.csv", "{F}/long-line.csv", "{F}/crlf.csv",
                "{F}/alerts-bad-record.json", "{F}/alerts-unknown-user.json", "{F}/alerts-not-array.json",
                "{F}/alerts-deep.json", "{F}/alerts-huge-number.json", "{F}/alerts-bad.ndjson",
                "{F}/alerts-deep-object.json", "{F}/quotes-deep.ndjson", "{F}/nope.csv", "{F}/adir", "",
                "{F}/alerts-dup-keys.json", "{F}/quotes-many-columns.csv", "/dev/null"]),
    "dbpath": (["{T}/other.db"],
               ["x", "-", "?", "é", "./y", "{T}/nodir/sub/x.db", "{F}/adir", "{F}/garbage.bin", "{F}/quotes-good.csv", "", "{T}/other.db/x"]),
    "cfgpath": (["{F}/config-valid.toml", "{F}/config-empty.toml"],
                ["{F}/nope.toml", "{F}/adir", "{F}/garbage.bin", "{F}/config-unknown-key.toml",
                 "{F}/config-invalid-utf8.toml", "", "{F}/config-bad-value.toml", "/dev/null"]),
}
# --config fixtures that must make every command fail
BAD_CONFIGS = {"{F}/nope.toml", "{F}/adir", "{F}/garbage.bin", "{F}/config-unknown-key.toml",
               "{F}/config-invalid-utf8.toml", "{F}/config-bad-value.toml"}
GARBAGE = ["", "-", "--", "---", "-x", "%s%n", "'", '"', "\\", "$(id)", "`id`", "*", "?", "../../x",
           "\x7f", "null", "{}", "[]", "true", "—above", "--above=", "-1", "1e309"] + CONTROL
GARBAGE_FLAGS = ["--bogus", "-x", "--abov", "---above", "--ABOVE", "-", "--", "-vv", "-v=1", "--json=true",
                 "--no-json", "--yes=no", "-h1", "--db=", "--user=", "—json", "--Json", "-j", "--", "--verbose=0",
                 "--from", "--symbol", "--limit", "--yes"]

COMMON = {"--db": "dbpath", "--config": "cfgpath"}

# the command tree, without serve (runs until killed) and demo (excluded)
TREE = {
    ("tick",): {"opts": {"--from": "inpath"}},
    ("fetch",): {"opts": {"--from": "inpath"}, "pos": ("symbol", 0, 3)},
    ("evaluate",): {},
    ("notify",): {},
    ("alert", "add"): {"opts": {"--above": "price", "--below": "price", "--crosses-above": "price",
                                "--crosses-below": "price", "--rise": "percent", "--fall": "percent",
                                "--within": "duration", "--trigger": "trigger", "--cooldown": "duration",
                                "--rearm-margin": "percent", "--expires": "expires", "--notify": "channel",
                                "--user": "user", "--note": "note"}, "pos": ("symbol", 1, 1)},
    ("alert", "list"): {"opts": {"--user": "user", "--symbol": "symbol", "--state": "state"}},
    ("alert", "show"): {"pos": ("id", 1, 1)},
    ("alert", "remove"): {"pos": ("id", 1, 3), "flags": ["--yes"]},
    ("alert", "pause"): {"pos": ("id", 1, 1)},
    ("alert", "resume"): {"pos": ("id", 1, 1)},
    ("alert", "import"): {"opts": {"--user": "user"}, "pos": ("inpath", 1, 1)},
    ("user", "add"): {"pos": ("user", 1, 1)},
    ("user", "list"): {},
    ("user", "remove"): {"pos": ("user", 1, 1), "flags": ["--yes"]},
    ("device", "add"): {"opts": {"--user": "user", "--fcm-token": "token", "--label": "label"}},
    ("device", "list"): {"opts": {"--user": "user"}},
    ("device", "remove"): {"pos": ("id", 1, 1), "flags": ["--yes"]},
    ("history",): {"opts": {"--symbol": "symbol", "--alert": "id", "--since": "since", "--limit": "limit"},
                   "flags": ["--prices"]},
    ("status",): {},
    ("config", "check"): {},
}
PATHS = list(TREE)
CONDITIONS = ["--above", "--below", "--crosses-above", "--crosses-below", "--rise", "--fall"]


class Cmd:
    __slots__ = ("index", "path", "args", "stdin", "config_bad")

    def __init__(self, index, path, args, stdin, config_bad):
        self.index, self.path, self.args, self.stdin, self.config_bad = index, path, args, stdin, config_bad

    def argv(self):
        return list(self.path) + self.args


def pick_value(rng, kind):
    ok, bad = POOLS[kind]
    r = rng.random()
    if r < 0.55:
        return rng.choice(ok)
    if r < 0.88:
        return rng.choice(bad)
    if r < 0.93:
        return rng.choice(LONGS)
    if r < 0.96:
        return rng.choice(INVALID_UTF8)
    return rng.choice(GARBAGE)


def generate_command(rng, index):
    path = rng.choice(PATHS)
    spec = TREE[path]
    opts = spec.get("opts", {})
    items = []  # list of lists: [flag, value] or [flag] or [positional]

    if path == ("alert", "add"):
        r = rng.random()
        conds = [] if r < 0.08 else rng.sample(CONDITIONS, 2) if r < 0.2 else [rng.choice(CONDITIONS)]
        for c in conds:
            items.append([c, pick_value(rng, opts[c])])
            if c in ("--rise", "--fall") and rng.random() < 0.85:
                items.append(["--within", pick_value(rng, "duration")])
        for o in ("--trigger", "--cooldown", "--rearm-margin", "--expires", "--notify", "--user", "--note"):
            if rng.random() < 0.22:
                items.append([o, pick_value(rng, opts[o])])
    else:
        for o, kind in opts.items():
            if rng.random() < 0.35:
                items.append([o, pick_value(rng, kind)])
        if path == ("device", "add") and rng.random() < 0.8 and not any(i[0] == "--fcm-token" for i in items):
            items.append(["--fcm-token", pick_value(rng, "token")])
    if "pos" in spec:
        kind, lo, hi = spec["pos"]
        for _ in range(rng.randint(lo, hi)):
            items.append([pick_value(rng, kind)])
    for f in spec.get("flags", []):
        if rng.random() < 0.6:
            items.append([f])
    if rng.random() < 0.5:
        items.append(["--json"])
    if rng.random() < 0.15:
        items.append([rng.choice(["-v", "--verbose"])])
    if rng.random() < 0.06:
        items.append(["--db", pick_value(rng, "dbpath")])
    cfg_p = 0.4 if path == ("config", "check") else 0.1
    if rng.random() < cfg_p:
        items.append(["--config", pick_value(rng, "cfgpath")])
    if rng.random() < 0.02:
        items.append([rng.choice(["-h", "--help"])])
    if rng.random() < 0.01:
        items.append(["--version"])
    rng.shuffle(items)

    # bad-input operations
    nops = 0 if rng.random() < 0.3 else rng.randint(1, 3)
    pre = []  # tokens before the subcommand path
    for _ in range(nops):
        op = rng.randrange(10)
        if op == 0:
            items.insert(rng.randint(0, len(items)), [rng.choice(GARBAGE_FLAGS)])
        elif op == 1:  # duplicate a flag with another value
            withval = [i for i in items if len(i) == 2]
            if withval:
                it = rng.choice(withval)
                kind = opts.get(it[0]) or COMMON.get(it[0]) or "price"
                items.insert(rng.randint(0, len(items)), [it[0], pick_value(rng, kind)])
            elif items:
                items.insert(rng.randint(0, len(items)), list(rng.choice(items)))
        elif op == 2:  # missing value
            withval = [i for i in items if len(i) == 2]
            if withval:
                it = rng.choice(withval)
                del it[1]
                if rng.random() < 0.5:
                    items.remove(it)
                    items.append(it)
        elif op == 3:  # extra positional
            items.insert(rng.randint(0, len(items)), [rng.choice(GARBAGE + POOLS["symbol"][0] + ["1", "2"])])
        elif op == 4:  # drop a positional
            pos = [i for i in items if len(i) == 1 and not str(i[0]).startswith("-")]
            if pos:
                items.remove(rng.choice(pos))
        elif op == 5:  # an option before (or inside) the subcommand path
            pre.append(rng.choice(["--json", "-v", "--db", "--yes", "--bogus", "--config"]))
        elif op == 6:  # --opt=value
            withval = [i for i in items if len(i) == 2]
            if withval:
                it = rng.choice(withval)
                if isinstance(it[1], str) and not isinstance(it[1], LongArg):
                    it[:] = [it[0] + "=" + it[1]]
        elif op == 7:  # a 100 KB value
            withval = [i for i in items if len(i) == 2]
            if withval:
                rng.choice(withval)[1] = rng.choice(LONGS)
            else:
                items.append([rng.choice(LONGS)])
        elif op == 8:
            items.insert(rng.randint(0, len(items)), ["--"])
        else:  # flip --json
            js = [i for i in items if i == ["--json"]]
            if js:
                items.remove(js[0])
            else:
                items.append(["--json"])
    args = [a for it in items for a in it]
    path_tokens = list(path)
    argv_path = path
    if pre:
        # `stockwatch --json alert list` or `stockwatch alert --json list`
        where = rng.randint(0, len(path_tokens) - 1)
        path_tokens = path_tokens[:where] + pre + path_tokens[where:]
        argv_path = tuple(path_tokens)
    stdin = None
    if "-" in args:
        stdin = rng.choice(["quotes-good.csv", "quotes.ndjson", "alerts-good.json", "alerts-good.ndjson",
                            "quotes-bad-price.csv", "garbage.bin", "empty.txt", "alerts-bad-record.json",
                            "invalid-utf8.csv"])
    config_bad = False
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args) and args[i + 1] in BAD_CONFIGS:
            config_bad = True
        if isinstance(a, str) and a.startswith("--config=") and a[len("--config="):] in BAD_CONFIGS:
            config_bad = True
    cmd = Cmd(index, argv_path, args, stdin, config_bad)
    return cmd, path


# ---------------------------------------------------------------------------
# Fixtures


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def make_fixtures(fdir, secrets, now):
    os.makedirs(fdir, exist_ok=True)
    os.makedirs(os.path.join(fdir, "adir"), exist_ok=True)
    t0, t1, t2 = iso(now - timedelta(minutes=30)), iso(now - timedelta(minutes=10)), iso(now - timedelta(minutes=1))
    w = lambda name, data, mode=0o644: write(os.path.join(fdir, name), data, mode)
    w("quotes-good.csv", f"AAPL,201.5,{t1}\nMSFT,410,{t1}\nEUR/USD,1.04,{t1}\nTSLA,251.2,{t1}\n")
    w("quotes-header.csv", f"symbol,price,time\nAAPL,199.25,{t0}\nEUR/USD,1.06,{t0}\n")
    w("quotes.ndjson", "".join(json.dumps({"symbol": s, "price": p, "time": t2}) + "\n"
                               for s, p in [("AAPL", 202.1), ("MSFT", 431.0), ("EUR/USD", 1.049)]))
    w("quotes-unix.csv", f"AAPL,200.5,{int((now - timedelta(minutes=20)).timestamp())}\n")
    w("quotes-bad-price.csv", f"AAPL,201.5,{t1}\nAAPL,abc,{t2}\n")
    w("quotes-negative.csv", f"AAPL,-5,{t2}\n")
    w("quotes-nan.csv", f"AAPL,nan,{t2}\nMSFT,inf,{t2}\n")
    w("quotes-1e309.csv", f"AAPL,1e309,{t2}\n")
    w("quotes-future.csv", f"AAPL,201,{iso(now + timedelta(days=1))}\n")
    w("quotes-old.csv", "AAPL,201,1990-01-01T00:00:00Z\n")
    w("quotes-bad-symbol.csv", f"not a symbol,201,{t2}\n")
    w("quotes-many-columns.csv", f"AAPL,201,{t2},extra,columns\n")
    w("quotes-deep.ndjson", "[" * 100000 + "\n")
    w("empty.txt", b"")
    w("garbage.bin", bytes(random.Random(7).randrange(256) for _ in range(4096)))
    w("invalid-utf8.csv", b"AAPL\xff,201," + t2.encode() + b"\n")
    w("long-line.csv", "AAPL," + "9" * (1 << 20) + "," + t2 + "\n")
    w("crlf.csv", f"AAPL,201.75,{t0}\r\nMSFT,405,{t0}\r\n")
    alert = lambda sym, cond, **kw: dict({"symbol": sym, "condition": cond, "trigger": "rearm",
                                          "channels": ["stdout"], "user": "default"}, **kw)
    good = [alert("NVDA", {"kind": "above", "value": 900}),
            alert("EUR/USD", {"kind": "fall", "percent": 2, "window_seconds": 3600}, trigger="once")]
    w("alerts-good.json", json.dumps(good))
    w("alerts-good.ndjson", "".join(json.dumps(a) + "\n" for a in good))
    w("alerts-bad-record.json", json.dumps([good[0], alert("not a symbol", {"kind": "above", "value": 1})]))
    w("alerts-bad.ndjson", json.dumps(good[0]) + "\n{broken\n")
    w("alerts-unknown-user.json", json.dumps([alert("AMD", {"kind": "below", "value": 5}, user="nobody")]))
    w("alerts-not-array.json", '{"a": 1}')
    w("alerts-deep.json", "[" * 100000 + "]" * 100000)
    w("alerts-deep-object.json", '{"a":' * 50000 + "1" + "}" * 50000)
    w("alerts-huge-number.json", '[{"symbol":"AMD","condition":{"kind":"above","value":1e400}}]')
    w("alerts-dup-keys.json", '[{"symbol":"AMD","symbol":"INTC","condition":{"kind":"above","value":5}}]')
    # configs used by commands
    w("config-empty.toml", "", 0o600)
    w("config-unknown-key.toml", "[alerts]\ncolour = \"red\"\n", 0o600)
    w("config-invalid-utf8.toml", b"[alerts]\n# caf\xe9\ndefault_notify = [\"stdout\"]\n", 0o600)
    w("config-bad-value.toml", "[notify]\nconcurrency = 0\n", 0o600)
    w("config-valid.toml", f"""[alerts]
default_notify = ["stdout"]

[channels.phone]
type = "fcm"
service_account_file = "{secrets}/firebase-service-account.json"
timeout = "2s"

[channels.ops-hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_file = "{secrets}/ops-hook.secret"
timeout = "2s"

[channels.pager]
type = "exec"
command = ["{secrets}/no-such-program"]
timeout = "2s"

[channels.console]
type = "stdout"

[providers.stooq]
base_url = "http://127.0.0.1:9"
timeout = "2s"
connect_timeout = "1s"

[providers.fixer]
api_key_file = "{secrets}/fixer.key"
base_url = "http://127.0.0.1:9"
timeout = "2s"
connect_timeout = "1s"
""", 0o600)


def make_secrets(sdir):
    os.makedirs(sdir, exist_ok=True)
    os.chmod(sdir, 0o700)
    # config check loads the key as notify does: it must be a real RSA key
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                         capture_output=True, check=True).stdout.decode()
    write(os.path.join(sdir, "page-oncall"), "#!/bin/sh\ncat >/dev/null\n", 0o700)
    sa = {"type": "service_account", "project_id": "reliability", "private_key_id": "k1",
          "private_key": pem,
          "client_email": "stockwatch@reliability.iam.gserviceaccount.com",
          "token_uri": "http://127.0.0.1:9/token"}
    write(os.path.join(sdir, "firebase-service-account.json"), json.dumps(sa), 0o600)
    write(os.path.join(sdir, "ops-hook.secret"),
          "whsec_" + base64.b64encode(hashlib.sha256(b"reliability").digest()).decode() + "\n", 0o600)
    for k in ("fixer", "currencylayer", "finnhub"):
        write(os.path.join(sdir, k + ".key"), "0123456789abcdef\n", 0o600)


# ---------------------------------------------------------------------------
# Database snapshots


def snapshot(db):
    """All rows of all tables (and the schema), or None if there is no database."""
    if not os.path.exists(db):
        return None
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        snap = {}
        for name, sql in con.execute("SELECT name, sql FROM sqlite_master ORDER BY type, name").fetchall():
            snap["schema:" + name] = sql
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            if t in IGNORED_TABLES:
                continue
            rows = con.execute('SELECT * FROM "%s"' % t.replace('"', '""')).fetchall()
            snap[t] = sorted(rows, key=repr)
        return snap
    finally:
        con.close()


def diff_snapshots(a, b):
    if a is None or b is None:
        return "database %s" % ("created" if a is None else "deleted")
    out = []
    for k in sorted(set(a) | set(b)):
        if k.startswith("schema:"):
            if a.get(k) != b.get(k):
                out.append("schema of %s changed" % k[7:])
            continue
        ra, rb = a.get(k, []), b.get(k, [])
        if ra != rb:
            sa, sb = set(map(repr, ra)), set(map(repr, rb))
            out.append("%s +%d -%d" % (k, len(sb - sa), len(sa - sb)))
    return ", ".join(out) or "unchanged"


# ---------------------------------------------------------------------------
# Running


class Result:
    __slots__ = ("rc", "stdout", "stderr", "timed_out", "seconds")


def run(binary, argv, env, cwd, stdin_path, timeout):
    res = Result()
    start = time.monotonic()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen([binary] + [to_bytes(a) for a in argv], stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
            res.timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            res.timed_out = True
        res.rc, res.stdout, res.stderr = p.returncode, out, err
    finally:
        if stdin_path:
            stdin.close()
    res.seconds = time.monotonic() - start
    return res


class Checks:
    """Counts per check, and up to `keep` failures per distinct signature."""

    def __init__(self):
        self.lock = threading.Lock()
        self.exits = {}  # (path, exit) -> count, for --stats
        self.runs = {}
        self.fails = {}  # name -> list of (order, signature, text)
        self.nfail = {}

    def ran(self, name, n=1):
        with self.lock:
            self.runs[name] = self.runs.get(name, 0) + n

    def fail(self, name, order, sig, text):
        with self.lock:
            self.nfail[name] = self.nfail.get(name, 0) + 1
            self.fails.setdefault(name, []).append((order, sig, text))


class Shard:
    def __init__(self, k, root, binary, timeout, checks, now):
        self.k, self.binary, self.timeout, self.checks = k, binary, timeout, checks
        self.dir = os.path.join(root, "shard-%d" % k)
        self.files = os.path.join(self.dir, "files")
        self.secrets = os.path.join(self.dir, "secrets")
        self.db = os.path.join(self.dir, "state", "stockwatch.db")
        for d in ("home", "config", "state", "tmp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                    "HOME": os.path.join(self.dir, "home"), "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
                    "XDG_STATE_HOME": os.path.join(self.dir, "state"), "STOCKWATCH_DB": self.db,
                    "TMPDIR": os.path.join(self.dir, "tmp"),
                    # a crash is seen by its signal; the backtracer takes seconds per crash
                    "SWIFT_BACKTRACE": "enable=no"}
        make_secrets(self.secrets)
        make_fixtures(self.files, self.secrets, now)
        self.known = None
        self.setup_errors = []

    def subst(self, a):
        if isinstance(a, bytes) or isinstance(a, LongArg):
            return a
        return a.replace("{F}", self.files).replace("{T}", self.dir)

    def tool(self, *argv, stdin=None):
        """A setup step through the binary; must exit 0."""
        r = run(self.binary, list(argv), self.env, self.dir, stdin, 30)
        if r.rc != 0:
            self.setup_errors.append("shard %d: stockwatch %s -> exit %s: %s" % (
                self.k, " ".join(map(shq, argv)), r.rc, show_line(r.stderr.strip())))
        return r

    def seed(self):
        self.tool("user", "add", "alice")
        self.tool("alert", "add", "AAPL", "--above", "200")
        self.tool("alert", "add", "EUR/USD", "--crosses-below", "1.05", "--trigger", "once")
        self.tool("alert", "add", "MSFT", "--rise", "5", "--within", "24h")
        self.tool("alert", "add", "TSLA", "--below", "100", "--user", "alice", "--note", "seed")
        self.tool("device", "add", "--user", "alice", "--fcm-token", "tok1", "--label", "Pixel 8")
        self.tool("fetch", "--from", os.path.join(self.files, "quotes-header.csv"))
        self.tool("fetch", "--from", os.path.join(self.files, "quotes-good.csv"))
        self.tool("evaluate")

    def counts(self):
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            alerts = con.execute("SELECT count(*) FROM alerts").fetchone()[0]
            alice = con.execute("SELECT count(*) FROM users WHERE name='alice'").fetchone()[0]
            devices = con.execute("SELECT count(*) FROM devices").fetchone()[0]
        finally:
            con.close()
        return alerts, alice, devices

    def maintain(self):
        """Keep the seeded rows present and the database small."""
        alerts, alice, devices = self.counts()
        if alice == 0:
            self.tool("user", "add", "alice")
        if alerts < 3:
            self.tool("alert", "add", "AAPL", "--above", "200")
            self.tool("alert", "add", "EUR/USD", "--crosses-below", "1.05", "--trigger", "once")
            self.tool("alert", "add", "MSFT", "--rise", "5", "--within", "24h")
        if devices < 1:
            self.tool("device", "add", "--user", "alice", "--fcm-token", "tok1")
        if alerts > 1000:
            con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True)
            ids = [str(r[0]) for r in con.execute("SELECT id FROM alerts ORDER BY id DESC LIMIT 500")]
            con.close()
            self.tool("alert", "remove", *ids, "--yes")
        self.known = snapshot(self.db)

    # -- the command checks ------------------------------------------------

    def run_command(self, cmd, real_path):
        argv = [self.subst(a) for a in cmd.argv()]
        stdin = os.path.join(self.files, cmd.stdin) if cmd.stdin else None
        if self.known is None:
            self.known = snapshot(self.db)
        r = run(self.binary, argv, self.env, self.dir, stdin, self.timeout)
        shown = "stockwatch " + " ".join(shq(a) for a in argv) + (" < " + stdin if stdin else " < /dev/null")
        first = (r.stderr.split(b"\n") or [b""])[0]
        head = "%s\n      exit %s%s; stderr: %s" % (shown, r.rc, " (timed out)" if r.timed_out else "",
                                                    show_line(first) if r.stderr else "(empty)")
        c = self.checks
        fail = lambda name, extra="", sig=None: c.fail(name, cmd.index, sig or signature(real_path, r.rc, first),
                                                      head + (("\n      " + extra) if extra else ""))
        options = argv[:argv.index("--")] if "--" in argv else argv  # after --, all are positionals
        help_like = any(a in ("-h", "--help", "--version") for a in options) or \
            r.stdout.startswith((b"OVERVIEW:", b"USAGE:"))
        json_on = "--json" in options
        json_maybe = "--json" in argv and not json_on  # only after --: either way is fine

        with c.lock:
            key = (" ".join(real_path), "timeout" if r.timed_out else r.rc)
            c.exits[key] = c.exits.get(key, 0) + 1
        c.ran("timeout")
        if r.timed_out:
            fail("timeout", "ran %.1f s" % r.seconds)
            self.known = snapshot(self.db)
            return
        c.ran("crash")
        crashed = r.rc < 0 or any(m in r.stderr for m in CRASH_MARKERS)
        if crashed:
            why = ("killed by signal %d" % -r.rc) if r.rc < 0 else "trap message on stderr"
            where = self.crash_site(argv, stdin)
            fail("crash", why + ("; crashed in " + where if where else ""),
                 sig="crash|%s|%s" % (r.rc, where or "site not looked up"))
        c.ran("exit-code")
        if not crashed and (r.rc not in DOCUMENTED_EXITS or (r.rc == 1 and real_path != ("status",))):
            fail("exit-code")
        c.ran("internal-error")
        if r.rc == 70:
            fail("internal-error")

        # db-unchanged
        if r.rc == 0:
            self.known = snapshot(self.db)
            if real_path in (("alert", "remove"), ("user", "remove"), ("device", "remove"), ("alert", "import"),
                             ("alert", "add")):
                self.maintain()
        else:
            rejected_run = r.rc == 64 or cmd.config_bad
            only = None
            allowed = False
            if real_path == ("tick",) and not rejected_run:
                only = {"quotes"}  # README tick: every step runs even when fetch failed
            elif real_path == ("fetch",) and r.rc == 75 and not rejected_run:
                allowed = True  # README fetch: 75 when some failed but others were stored
            elif real_path == ("notify",) and r.rc in (75, 78) and not rejected_run:
                allowed = True  # README notify: retries are recorded; other channels still sent
            after = snapshot(self.db)
            if not allowed:
                c.ran("db-unchanged")
                before = self.known
                after_cmp = after
                if only is not None:
                    pick = lambda s: None if s is None else {k: v for k, v in s.items() if k in only}
                    before, after_cmp = pick(before), pick(after)
                if before != after_cmp:
                    fail("db-unchanged", "database: " + diff_snapshots(before, after_cmp),
                         sig=signature(real_path, r.rc, first) + "|db")
            self.known = after

        # error-line
        if r.rc != 0 and not crashed and not (r.rc == 1 and real_path == ("status",)):
            c.ran("error-line")
            problem = self.error_line_problem(cmd, real_path, r, json_on, json_maybe)
            if problem:
                fail("error-line", problem)
            lines = [l for l in r.stderr.split(b"\n") if l.startswith(PREFIX)]
            c.ran("error-line-ctrl")
            bad = [l for l in lines if RAW_CONTROL.search(l)]
            if bad:
                fail("error-line-ctrl", "raw control characters: %r" % sorted(set(
                    m.group() for l in bad for m in RAW_CONTROL.finditer(l))))

        # json-stdout
        if json_on and not help_like and (r.rc == 0 or (r.rc == 1 and real_path == ("status",))):
            c.ran("json-stdout")
            try:
                json.loads(r.stdout.decode("utf-8"))
            except Exception as e:  # noqa: BLE001
                fail("json-stdout", "stdout is not one JSON document (%s): %s" % (
                    e.__class__.__name__, show_line(r.stdout[:200])))

    def crash_site(self, argv, stdin):
        """Runs a crashing command again with Swift's backtracer (slow, so at most 3
        times per shard) and returns the crashed thread's first frame in our sources."""
        self.crash_reruns = getattr(self, "crash_reruns", 0) + 1
        if self.crash_reruns > 3:
            return None
        env = dict(self.env, SWIFT_BACKTRACE="enable=yes,interactive=no,color=no")
        saved = snapshot(self.db)
        r = run(self.binary, argv, env, self.dir, stdin, 120)
        if snapshot(self.db) != saved:
            self.known = snapshot(self.db)
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        part = text.split("crashed:", 1)[-1]
        for line in part.split("\n"):
            m = re.search(r"\] *0x[0-9a-f]+ (.*?) \+? ?\d* ?in stockwatch at .*?/(Sources/[^ ]+)", line) or \
                re.search(r"0x[0-9a-f]+ (.*) in stockwatch at .*?/(Sources/[^ ]+)", line)
            if m:
                return "%s (%s)" % (re.sub(r" \+ \d+$", "", m.group(1).strip()), m.group(2))
        return None

    def error_line_problem(self, cmd, real_path, r, json_on, json_maybe):
        lines = r.stderr.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            if r.stderr:
                return "stderr does not end with a newline"
        json_lines = [l for l in lines if l.startswith(b"{")]
        text = [l for l in lines if not l.startswith(b"{")]
        # fetch, tick and notify report each failed symbol or delivery on a line of its own
        # (README fetch/tick/notify); under --json the stdout document carries them
        run_failure = real_path in (("fetch",), ("tick",), ("notify",)) and r.rc != 64 and not cmd.config_bad \
            and (r.stdout.strip() != b"" or not json_on)
        if run_failure:
            other = [l for l in text if not l.startswith(PREFIX) and not STDOUT_CHANNEL_LINE.match(l)]
            if other:
                return "a stderr line without the prefix: " + show_line(other[0])
            if not json_on and not any(l.startswith(PREFIX) for l in text):
                return "no error line at all"
            if json_lines and not json_on and not json_maybe:
                return "a JSON line without --json"
            return None
        if len(text) != 1:
            return "%d non-JSON stderr lines, expected 1%s" % (
                len(text), (": " + " | ".join(show_line(l, 80) for l in text[:3])) if text else "")
        if not text[0].startswith(PREFIX):
            return "the line does not start with 'stockwatch: error: '"
        if len(text[0]) == len(PREFIX):
            return "empty message"
        if json_on or (json_maybe and json_lines):
            if len(json_lines) != 1:
                return "with --json: %d JSON lines on stderr, expected 1" % len(json_lines)
            if lines.index(json_lines[0]) < lines.index(text[0]):
                return "the JSON line comes before the text line"
            try:
                e = json.loads(json_lines[0])["error"]
                if e.get("exit_status") != r.rc:
                    return "JSON exit_status %r but exit %d" % (e.get("exit_status"), r.rc)
                if e.get("code") not in ERROR_CODES:
                    return "JSON code %r is not documented" % e.get("code")
                if not isinstance(e.get("message"), str) or not e["message"]:
                    return "JSON message missing"
                msg = text[0][len(PREFIX):].decode("utf-8", "replace")
                if e["message"] != msg:
                    return "JSON message differs from the text line"
            except Exception as ex:  # noqa: BLE001
                return "JSON error line does not parse as {\"error\":{...}}: %s" % ex
        elif json_lines and not json_maybe:
            return "a JSON line without --json"
        return None

    # -- the config checks -------------------------------------------------

    def run_config(self, i, text, labels, must_all, must_check, json_on, mode, db_choice):
        path = os.path.join(self.dir, "cfg", "config-%05d.toml" % i)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(path, text, mode)
        c = self.checks
        results = {}
        for which, argv in (("config check", ["config", "check"]), ("alert list", ["alert", "list"])):
            fresh = db_choice[which] == "fresh"
            db = os.path.join(self.dir, "cfgdb", "%05d" % i, "stockwatch.db") if fresh else self.db
            argv = argv + ["--config", path, "--db", db] + (["--json"] if json_on else [])
            before = None if fresh else snapshot(self.db)
            r = run(self.binary, argv, self.env, self.dir, None, self.timeout)
            results[which] = r
            first = (r.stderr.split(b"\n") or [b""])[0]
            head = ("stockwatch %s   # mutations: %s (file kept with --keep)\n      exit %s%s; stderr: %s" % (
                " ".join(shq(a) for a in argv), ", ".join(labels), r.rc, " (timed out)" if r.timed_out else "",
                show_line(first) if r.stderr else "(empty)"))
            sig = lambda tag: "%s|%s|%s|%s" % (which, r.rc, tag, signature((), "", first))
            fail = lambda name, tag, extra="": c.fail(name, i, sig(tag), head + (("\n      " + extra) if extra else ""))
            c.ran("cfg-timeout")
            if r.timed_out:
                fail("cfg-timeout", "timeout")
                continue
            c.ran("cfg-crash")
            crashed = r.rc < 0 or any(m in r.stderr for m in CRASH_MARKERS)
            if crashed:
                fail("cfg-crash", "crash", "killed by signal %d" % -r.rc if r.rc < 0 else "trap message")
            c.ran("cfg-exit-code")
            if not crashed and r.rc not in (0, 78):
                fail("cfg-exit-code", "rc", "expected 0 (valid) or 78 (bad configuration)")
            if r.rc != 0 and not crashed:
                c.ran("cfg-error-line")
                lines = r.stderr.split(b"\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                text_lines = [l for l in lines if not l.startswith(b"{")]
                json_lines = [l for l in lines if l.startswith(b"{")]
                problem = None
                if len(text_lines) != 1:
                    problem = "%d non-JSON stderr lines, expected 1" % len(text_lines)
                elif not text_lines[0].startswith(PREFIX):
                    problem = "the line does not start with 'stockwatch: error: '"
                elif r.rc == 78 and not names_file(text_lines[0], path, text):
                    problem = "the error line names neither the config file nor a file it refers to"
                elif json_on and len(json_lines) != 1:
                    problem = "with --json: %d JSON lines, expected 1" % len(json_lines)
                elif not json_on and json_lines:
                    problem = "a JSON line without --json"
                if problem:
                    fail("cfg-error-line", problem, problem)
            c.ran("cfg-db-unchanged")
            if fresh:
                created = [n for n in ("", "-wal", "-shm") if os.path.exists(db + n)]
                if r.rc != 0 and created:
                    fail("cfg-db-unchanged", "created", "a failing config created the database " + db)
                shutil.rmtree(os.path.dirname(db), ignore_errors=True)
            else:
                after = snapshot(self.db)
                if after != before:
                    fail("cfg-db-unchanged", "changed", "database: " + diff_snapshots(before, after))
            must = must_all or (must_check if which == "config check" else None)
            if must:
                c.ran("cfg-expected-78")
                if r.rc != 78 and not crashed:
                    fail("cfg-expected-78", "expected78|" + "+".join(sorted(set(l.split(":")[0] for l in labels))),
                         "expected exit 78: the mutation makes the config invalid (%s)" % (
                             "for every command" if must == "all" else "config check reads every secret"))
        rc_check, rc_list = results["config check"], results["alert list"]
        if not rc_check.timed_out and not rc_list.timed_out:
            c.ran("cfg-consistency")
            if (rc_check.rc == 0 and rc_list.rc != 0) or (rc_list.rc == 78 and rc_check.rc != 78):
                c.fail("cfg-consistency", i, "consistency|%s|%s|%s" % (rc_check.rc, rc_list.rc, ",".join(
                    sorted(set(l.split(":")[0] for l in labels)))),
                    "%s   # mutations: %s\n      config check exit %s (%s); alert list exit %s (%s)" % (
                        path, ", ".join(labels), rc_check.rc, show_line(rc_check.stderr.split(b"\n")[0]),
                        rc_list.rc, show_line(rc_list.stderr.split(b"\n")[0])))
        return rc_check.rc


def names_file(line, path, text):
    """The error names the config file, or a secret file the config names (README
    "Secrets": the insecure-file error names only the secret file)."""
    if path.encode() in line:
        return True
    # An error line is capped at 1,000 characters (README): a huge path is named by
    # as much of it as fits, ending in "...".
    cut = line[len(PREFIX):-3] if line.endswith(b"...") else None
    folder = os.path.dirname(path).encode()
    for m in re.finditer(rb'"([^"\n]+)"', text):
        v = m.group(1)
        candidates = [v, folder + b"/" + v] if not v.startswith(b"/") else [v]
        if any(c in line or (cut is not None and c.startswith(cut)) for c in candidates):
            if b"/" in v or v.endswith((b".key", b".json", b".secret")) or folder + b"/" + v in candidates:
                return True
    return False


# ---------------------------------------------------------------------------
# Config mutations. Each returns (new text, label, must) where must is None,
# "all" (every command must refuse it) or "check" (config check must).

KEY_LINE = re.compile(rb"^(\s*)([A-Za-z0-9_.-]+)(\s*=\s*)(.*)$")
SECRET_KEYS = (b"service_account_file", b"secret_file", b"api_key_file")
RANGED = [(b"notify", b"concurrency", "1 to 256"), (b"notify", b"max_attempts", "1 to 100"),
          (b"serve", b"max_connections_per_user", "1 to 1000")]
DURATION_KEYS = [(b"notify", b"backoff_base"), (b"notify", b"backoff_cap"), (b"notify", b"lease"),
                 (b"channels.ops-hook", b"timeout"), (b"channels.phone", b"timeout"), (b"channels.pager", b"timeout")]


def lines_of(b):
    return b.split(b"\n")


def table_line(lines, table):
    for n, l in enumerate(lines):
        if l.strip() == b"[" + table + b"]":
            return n
    return None


def set_key(lines, table, key, value):
    """Set (or uncomment, or add) key = value in [table]."""
    start = table_line(lines, table)
    if start is None:
        lines.append(b"[" + table + b"]")
        start = len(lines) - 1
    end = len(lines)
    for n in range(start + 1, len(lines)):
        if lines[n].lstrip().startswith(b"["):
            end = n
            break
    for n in range(start + 1, end):
        m = re.match(rb"^\s*#?\s*" + re.escape(key) + rb"\s*=", lines[n])
        if m:
            lines[n] = key + b" = " + value
            return lines
    lines.insert(start + 1, key + b" = " + value)
    return lines


def mutate(rng, text, ctx):
    """One mutation; ctx has the secrets dir and a counter for new files."""
    for _ in range(20):
        try:
            return mutate_once(rng, text, ctx, rng.randrange(24))
        except (IndexError, StopIteration, ValueError):
            continue  # nothing to mutate of that kind left (after a truncation, say)
    return text + b"\nbogus_key = 1\n", "unknown key bogus_key at the end", "all"


def mutate_once(rng, text, ctx, kind):
    lines = lines_of(text)
    key_idx = [n for n, l in enumerate(lines) if KEY_LINE.match(l) and not l.lstrip().startswith(b"#")]
    if kind == 0:
        n = rng.randrange(len(lines))
        return b"\n".join(lines[:n] + lines[n + 1:]), "delete line %d" % (n + 1), None
    if kind == 1:
        cand = [n for n, l in enumerate(lines) if l.strip() and not l.lstrip().startswith(b"#")]
        n = rng.choice(cand)
        return b"\n".join(lines[:n + 1] + [lines[n]] + lines[n + 1:]), "duplicate line %d" % (n + 1), \
            "all"  # a duplicated key or table is invalid TOML
    if kind == 2:
        n = rng.choice(key_idx)
        m = KEY_LINE.match(lines[n])
        new, must = rng.choice([(b"true", "all"), (b"{ a = 1 }", "all"), (b"1979-05-27T07:32:00Z", "all"),
                                (b"[1, 2]", "all"), (b"42", None), (b"1.5", None), (b'"x"', None)])
        lines[n] = m.group(1) + m.group(2) + m.group(3) + new
        return b"\n".join(lines), "type of %s -> %s" % (m.group(2).decode(), new.decode()), must
    if kind == 3:
        table, key, _ = rng.choice(RANGED)
        value = rng.choice([b"-1", b"0", b"9223372036854775807", b"9223372036854775808", b"1e309", b"nan",
                            b"inf", b"-0", b"1000000", b"0x7fffffff", b"-9223372036854775808"])
        return b"\n".join(set_key(lines, table, key, value)), "%s.%s = %s" % (
            table.decode(), key.decode(), value.decode()), "all"
    if kind == 4:
        table, key = rng.choice(DURATION_KEYS)
        value, must = rng.choice([(b'"-1h"', "all"), (b'"1 h"', "all"), (b'""', "all"), (b'"abc"', "all"),
                                  (b'"99999999d"', "all"), (b'"0s"', None), (b'"15"', "all"), (b'"1h-1m"', "all")])
        return b"\n".join(set_key(lines, table, key, value)), "%s.%s = %s" % (
            table.decode(), key.decode(), value.decode()), must
    if kind == 5:
        cut = rng.randrange(len(text) + 1)
        return text[:cut], "truncate at byte %d" % cut, None
    if kind == 6:
        pos = rng.randrange(len(text) + 1)
        g = bytes(rng.randrange(32, 127) for _ in range(rng.randint(1, 12)))
        return text[:pos] + g + text[pos:], "insert %r at byte %d" % (g.decode(), pos), None
    if kind == 7:
        pos = rng.randrange(len(text) + 1)
        g = bytes(rng.choice([0, 1, 7, 8, 11, 12, 27, 127, 9, 13]) for _ in range(rng.randint(1, 4)))
        # TOML allows no control character but tab (and CR only before LF), not even in a comment
        must = "all" if re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", g) else None
        return text[:pos] + g + text[pos:], "insert control bytes %r at byte %d" % (g, pos), must
    if kind == 8:
        heads = [n for n, l in enumerate(lines) if re.match(rb"^\[[^\]]+\]\s*$", l)]
        n = rng.choice(heads)
        key = rng.choice([b"bogus_key", b"colour", b"Type", b"timeout_s", b"api-key"])
        lines.insert(n + 1, key + b" = 1")
        return b"\n".join(lines), "unknown key %s in %s" % (key.decode(), lines[n].decode()), "all"
    if kind == 9:
        add = rng.choice([b"[bogus]\nx = 1", b"[providers.nosuch]\nbase_url = \"http://x\"",
                          b"[channels.carrier]\ntype = \"pigeon\"", b"[channels.nokind]\ntimeout = \"5s\"",
                          b"[alerts.sub]\nx = 1", b"[[channels]]\nname = \"x\""])
        return text + b"\n" + add + b"\n", "unknown table %s" % add.split(b"\n")[0].decode(), "all"
    if kind == 10:
        pos = rng.randrange(len(text) + 1)
        g = rng.choice(INVALID_UTF8)
        return text[:pos] + g + text[pos:], "invalid UTF-8 %r at byte %d" % (g, pos), "all"
    if kind == 11:
        cand = [n for n in key_idx if KEY_LINE.match(lines[n]).group(2) in SECRET_KEYS]
        n = rng.choice(cand)
        m = KEY_LINE.match(lines[n])
        ctx["n"] += 1
        missing = os.path.join(ctx["secrets"], "missing-%d.key" % ctx["n"]).encode()
        lines[n] = m.group(1) + m.group(2) + m.group(3) + b'"' + missing + b'"'
        return b"\n".join(lines), "%s -> a file that does not exist" % m.group(2).decode(), "check"
    if kind == 12:
        cand = [n for n in key_idx if KEY_LINE.match(lines[n]).group(2) in SECRET_KEYS]
        n = rng.choice(cand)
        m = KEY_LINE.match(lines[n])
        ctx["n"] += 1
        p = os.path.join(ctx["secrets"], "open-%d.key" % ctx["n"])
        src = m.group(4).strip().strip(b'"').decode()
        data = open(src, "rb").read() if os.path.isfile(src) else b"0123456789abcdef\n"
        write(p, data, 0o644)
        lines[n] = m.group(1) + m.group(2) + m.group(3) + b'"' + p.encode() + b'"'
        return b"\n".join(lines), "%s -> a mode 0644 file" % m.group(2).decode(), "check"
    if kind == 13:  # inline secret in a config file that is group/world readable
        ctx["mode"] = 0o644
        lines = set_key(lines, b"channels.ops-hook", b"secret_file", b'"' + os.path.join(
            ctx["secrets"], "ops-hook.secret").encode() + b'"')
        n = next(n for n, l in enumerate(lines) if l.startswith(b"secret_file"))
        lines[n] = b'secret = "whsec_' + base64.b64encode(b"x" * 32) + b'"'
        return b"\n".join(lines), "inline secret, config mode 0644", "check"
    if kind == 14:  # secret and secret_file together
        lines = set_key(lines, b"channels.ops-hook", b"secret_file", b'"' + os.path.join(
            ctx["secrets"], "ops-hook.secret").encode() + b'"')
        lines = set_key(lines, b"channels.ops-hook", b"secret", b'"whsec_' + base64.b64encode(b"y" * 32) + b'"')
        return b"\n".join(lines), "secret and secret_file together", "check"
    if kind == 15:
        depth = rng.choice([1000, 100000])
        return text + b"\ndeep = " + b"[" * depth + b"]" * depth + b"\n", "nested array depth %d" % depth, "all"
    if kind == 16:
        n = rng.choice(key_idx)
        m = KEY_LINE.match(lines[n])
        lines[n] = m.group(1) + m.group(2) + m.group(3) + b'"' + b"x" * (1 << 20) + b'"'
        return b"\n".join(lines), "1 MiB string for %s" % m.group(2).decode(), None
    if kind == 17:
        return text.replace(b"\n", b"\r\n"), "CRLF line endings", None
    if kind == 18:
        return b"\xef\xbb\xbf" + text, "UTF-8 byte order mark", None
    if kind == 19:
        name = rng.choice([b"a" * 65, b"has space", b"\xc3\xa9t\xc3\xa9", b"x/y"])
        return text + b'\n[channels."' + name + b'"]\ntype = "stdout"\n', \
            "channel name %r" % name[:20], "all"
    if kind == 20:
        return text + b'\n[channels.stdout]\ntype = "webhook"\nurl = "http://127.0.0.1:9"\n', \
            "[channels.stdout] of type webhook", "all"
    if kind == 21:
        return b"\n".join(set_key(lines, b"alerts", b"default_notify", rng.choice(
            [b'["nosuch"]', b'"nosuch"', b"[]", b'["stdout", 5]']))), "default_notify naming no channel", "all"
    if kind == 22:
        which = rng.choice([(b"lease", b'"20s"', "lease not 10 s longer than 4 x fcm timeout"),
                            (b"backoff_cap", b'"10s"', "backoff_cap shorter than backoff_base")])
        lines = set_key(lines, b"notify", which[0], which[1])
        return b"\n".join(lines), which[2], "all"
    value, label = rng.choice([(b'"no-port"', "serve.listen without port"),
                               (b'"127.0.0.1:99999"', "serve.listen port 99999"),
                               (b'"[::1"', "serve.listen broken IPv6")])
    return b"\n".join(set_key(lines, b"serve", b"listen", value)), label, "all"


DESTRUCTIVE = ("delete line", "truncate", "insert '", "type of", "1 MiB")


def make_config(rng, base, secrets, i):
    ctx = {"secrets": secrets, "n": i * 10, "mode": 0o600}
    text, labels, musts = base, [], []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        text, label, must = mutate(rng, text, ctx)
        if any(label.startswith(d) for d in DESTRUCTIVE):
            musts = []  # an earlier invalid part may be gone now
        labels.append(label)
        if must:
            musts.append(must)
    must_all = "all" if "all" in musts else None
    must_check = "check" if "check" in musts else None
    return text, labels, must_all, must_check, ctx["mode"]


def base_config(example, secrets):
    text = open(example, "rb").read()
    text = text.replace(b"/etc/stockwatch/", secrets.encode() + b"/")
    text = text.replace(b"/usr/local/bin/page-oncall", secrets.encode() + b"/page-oncall")
    text = text.replace(b"[providers.finnhub]\n",
                        b"[providers.finnhub]\napi_key_file = \"" + secrets.encode() + b"/finnhub.key\"\n")
    return text


# ---------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("STOCKWATCH_BIN", os.path.join(repo, ".build/release/stockwatch")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--commands", type=int, default=10000)
    ap.add_argument("--configs", type=int, default=1000)
    ap.add_argument("--shards", type=int, default=4, help="independent databases (part of the deterministic input)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="shards run at once")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--example-config", default=os.path.join(repo, "config.example.toml"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--stats", action="store_true", help="print the exit statuses per command")
    a = ap.parse_args()

    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        print("bad-input: no executable binary at %s" % binary, file=sys.stderr)
        return 2
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="stockwatch-reliability-")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    checks = Checks()
    rng = random.Random(a.seed)
    commands = [generate_command(rng, i) for i in range(a.commands)]
    shards = [Shard(k, root, binary, a.timeout, checks, now) for k in range(a.shards)]
    done = [0]
    lock = threading.Lock()
    total = a.commands + a.configs

    def progress(n=1):
        if a.quiet:
            return
        with lock:
            before = done[0]
            done[0] += n
            step = max(1, total // 10)
            if before // step != done[0] // step or done[0] == total:
                print("bad-input: %d/%d runs, %.0f s" % (done[0], total, time.monotonic() - started),
                      file=sys.stderr, flush=True)

    def work(shard):
        shard.seed()
        shard.known = snapshot(shard.db)
        for idx in range(shard.k, len(commands), len(shards)):
            cmd, real = commands[idx]
            shard.run_command(cmd, real)
            progress()
        base = base_config(a.example_config, shard.secrets)
        if shard.k == 0:
            # the example config itself, with its secrets in place, must pass
            p = os.path.join(shard.dir, "config-baseline.toml")
            write(p, base, 0o600)
            for argv in (["config", "check"], ["alert", "list"]):
                r = run(binary, argv + ["--config", p], shard.env, shard.dir, None, a.timeout)
                checks.ran("cfg-baseline")
                if r.rc != 0:
                    checks.fail("cfg-baseline", -1, "baseline|%s" % argv[0],
                                "stockwatch %s --config %s\n      exit %s; stderr: %s" % (
                                    " ".join(argv), p, r.rc, show_line(r.stderr.split(b"\n")[0])))
        for i in range(shard.k, a.configs, len(shards)):
            r = random.Random("%d/config/%d" % (a.seed, i))
            text, labels, must_all, must_check, mode = make_config(r, base, shard.secrets, i)
            json_on = r.random() < 0.3
            db_choice = {"config check": r.choice(["fresh", "seeded"]), "alert list": r.choice(["fresh", "seeded"])}
            shard.run_config(i, text, labels, must_all, must_check, json_on, mode, db_choice)
            progress()

    try:
        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            for f in [ex.submit(work, s) for s in shards]:
                f.result()
    except BaseException:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
        raise

    # setup problems are a check of their own
    setup_errors = [e for s in shards for e in s.setup_errors]
    checks.ran("setup", sum(1 for _ in shards))
    for e in setup_errors:
        checks.fail("setup", 0, e.split("->")[0], e)

    sizes = []
    for s in shards:
        try:
            con = sqlite3.connect("file:%s?mode=ro" % s.db, uri=True)
            sizes.append((con.execute("SELECT count(*) FROM alerts").fetchone()[0],
                          con.execute("SELECT count(*) FROM quotes").fetchone()[0],
                          os.path.getsize(s.db)))
            con.close()
        except Exception:  # noqa: BLE001
            pass

    order = ["setup", "crash", "exit-code", "internal-error", "db-unchanged", "error-line", "error-line-ctrl",
             "json-stdout", "timeout", "cfg-baseline", "cfg-crash", "cfg-exit-code", "cfg-error-line",
             "cfg-db-unchanged", "cfg-expected-78", "cfg-consistency", "cfg-timeout"]
    goal = {"setup": "all exit 0", "cfg-baseline": "exit 0"}
    passed = failed = 0
    print()
    print("bad-input: seed %d, %d commands, %d configs, %d shards; binary %s" % (
        a.seed, a.commands, a.configs, a.shards, binary))
    print()
    print("%-18s %8s %8s %9s  %s" % ("CHECK", "CHECKED", "FAILED", "DISTINCT", "RESULT"))
    for name in order:
        n = checks.runs.get(name, 0)
        f = checks.nfail.get(name, 0)
        distinct = len(set(sig for _, sig, _ in checks.fails.get(name, [])))
        ok = f == 0
        passed += ok
        failed += not ok
        print("%-18s %8d %8d %9s  %s" % (name, n, f, distinct if f else "-", "pass" if ok else "FAIL"))
    for name in order:
        fl = sorted(checks.fails.get(name, []))
        if not fl:
            continue
        seen, picked = set(), []
        for item in fl:  # distinct signatures first
            if item[1] not in seen:
                seen.add(item[1])
                picked.append(item)
        for item in fl:
            if len(picked) >= a.examples:
                break
            if item not in picked:
                picked.append(item)
        print()
        print("FAIL %s: %d failures, %d distinct; examples:" % (name, len(fl), len(seen)))
        for _, _, text in picked[:a.examples]:
            print("  $ " + text)
    if a.stats:
        print()
        print("exit statuses per command (coverage):")
        for p in sorted(set(k[0] for k in checks.exits)):
            row = sorted(((str(k[1]), n) for k, n in checks.exits.items() if k[0] == p))
            print("  %-16s %s" % (p, "  ".join("%s:%d" % x for x in row)))
    print()
    if sizes:
        print("databases at the end (alerts, quotes, bytes): %s" % ", ".join("(%d, %d, %d)" % s for s in sizes))
    print("environment: HOME, STOCKWATCH_DB, XDG_CONFIG_HOME, XDG_STATE_HOME, TMPDIR under %s/shard-K%s" % (
        root, "" if a.keep else " (removed; --keep keeps it)"))
    print("bad-input: %.0f s wall" % (time.monotonic() - started))
    print("bad-input: %d passed, %d failed" % (passed, failed))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
