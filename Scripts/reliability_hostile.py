#!/usr/bin/env python3
"""The hostile section of Scripts/reliability (issue 14).

One `stockwatch serve` (release build, port 0, a fresh database) with
`[serve] request_head_timeout` short (--head-timeout, 5 s) and
`max_connections_per_address` 128 (or real clients + 16). Real app clients
(--clients, 100: 5 streams per user, each subscribed to 4 of 40 symbols)
connect from 127.0.0.1 with the `websockets` library and get their current
quotes. Then --waves (3) hostile loads, one after another (the next once
serve's open file descriptors are back at the baseline), each from other
loopback addresses (127.0.0.2 and up, at most 3/4 of the cap on any one;
docs/api.md "Limits"):

  --hostile N   connections that never send a complete request head (1,000):
                idle (connect, send nothing), slowloris (a request line, then
                a header line every second) and drip (a WebSocket upgrade
                head, then header lines, one byte every half second), 2:2:1
  --malformed M requests that cannot be parsed (200), spread over the wave's
                first head-timeout - 1 s: a NUL, a control byte (0x01, ESC,
                DEL) in a header, a garbage request line, binary garbage, a
                control byte in the path
  cap probe     cap + 1 idle connections from one more address: exactly one
                is over the cap

From the first wave on, rounds of new quotes (one per symbol, every half
second, each observed a second after the last) are stored with `stockwatch
fetch --from`, until the last wave is over; one more round after that.

Checks, one row each (CHECKED counts what was checked):
  setup            users, config, serve listening, every real client
                   subscribed and holding its current quotes
  load-reached     every hostile connection connected, and serve's open file
                   descriptors peaked at >= baseline + 90% of the held and
                   cap probe ones (the load reached serve, not just the
                   kernel's accept queue); per wave
  hostile-closed   every held hostile connection (idle, slowloris, drip, cap
                   probe) closed by serve (EOF or reset) no sooner than
                   head-timeout - 0.25 s after its connect began, and within
                   head-timeout + --margin (3 s) after it connected
  malformed-400    every malformed request answered `HTTP/1.1 400` with
                   `bad_request`, then closed, within --margin
  address-cap      of cap + 1 connections from one address, exactly one closed
                   at once (before half the head timeout) without an answer,
                   per wave
  fd-baseline      serve's open fds (/proc/PID/fd) once every hostile
                   connection is closed: back to the count before the load
                   (real clients connected in both), at most +5, after
                   every wave
  quotes-stored    every `fetch --from` round exited 0, and in every wave at
                   least one round was stored while >= 90% of its held
                   connections were open
  real-no-miss     every real client received every quote of its symbols
                   (by price) of every round, and stayed connected until serve
                   was stopped
  real-no-dup      no real client received one quote twice
  health           `GET /healthz` 200 `ok` during each wave (from 127.0.0.1
                   and from a hostile address) and after the last
  serve-alive      serve still running after the load
  serve-stderr     nothing on serve's stderr (it logs warnings and errors
                   only; a crash, a trap or one line per hostile connection
                   would show there)
  clean-exit       SIGTERM: serve exits 0 within 15 s and every real client
                   gets close code 1000

Runs under Scripts/test-python (the `websockets` package). --seed picks the
symbols each client watches and the order of the hostile kinds.
"""

import argparse
import asyncio
import json
import math
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

SYMBOLS = ["HX%02d" % i for i in range(40)]
PER_USER = 5             # streams per user (default max_connections_per_user: 8)
PER_CLIENT = 4           # symbols each real client watches
ROUND_EVERY = 0.5        # seconds between quote rounds
MAX_ROUNDS = 300
FD_TOLERANCE = 5
CONNECT_AT_ONCE = 64     # connects in flight (serve's accept backlog is 256)

MALFORMED = [
    ("nul-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n"),
    ("ctl-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n"),
    ("esc-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: \x1b[31mred\r\n\r\n"),
    ("del-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x7fb\r\n\r\n"),
    ("garbage-line", b"NOT A REQUEST LINE\r\n\r\n"),
    ("binary", b"\x00\x01garbage\r\n\r\n"),
    ("ctl-path", b"GET /hea\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n"),
]
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\n"
DRIP_HEAD = (b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


def progress(a, text):
    if not a.quiet:
        print("hostile: " + text, file=sys.stderr, flush=True)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def price(rnd, s):
    """Unique per round and symbol, exact in binary: what a client must receive."""
    return 10000 + 100 * rnd + s + 0.25


def count_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


class Checks:
    def __init__(self):
        self.runs, self.fails = {}, {}

    def check(self, name, ok, text="", n=1):
        self.runs[name] = self.runs.get(name, 0) + n
        if not ok:
            self.fails.setdefault(name, []).append(text)
        return ok


class Conn:
    """One hostile connection and what became of it (times: time.monotonic())."""
    __slots__ = ("kind", "addr", "attempt", "opened", "closed", "how", "data", "error", "sent")

    def __init__(self, kind, addr):
        self.kind, self.addr = kind, addr
        self.attempt = self.opened = self.closed = self.error = None
        self.how, self.data, self.sent = "", b"", 0

    def describe(self, t0):
        when = "connected %+.2f s" % (self.opened - t0) if self.opened else "never connected (%s)" % self.error
        if self.closed:
            end = "closed (%s) %.2f s after connecting" % (self.how, self.closed - self.opened)
        else:
            end = "still open" if self.opened else ""
        return "%s from %s: %s, %s; sent %d bytes, got %r" % (self.kind, self.addr, when, end, self.sent, self.data[:80])


class Real:
    """One real app client: the quotes it received, by (symbol, price)."""

    def __init__(self, n, user, token, symbols):
        self.n, self.user, self.token, self.symbols = n, user, token, symbols
        self.got = {}            # (symbol, price) -> [monotonic receipt times]
        self.ready = asyncio.Event()
        self.subscribed = None
        self.closed_at = None
        self.close_code = None
        self.close_reason = ""
        self.error = None
        self.errors = []         # server `error` messages


async def real_client(rc, port, initial):
    url = "ws://127.0.0.1:%d/v1/stream" % port
    try:
        async with ws_connect(url, additional_headers={"Authorization": "Bearer " + rc.token}, proxy=None,
                              compression=None, open_timeout=30, max_queue=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "symbols": rc.symbols}))
            try:
                async for text in ws:
                    m = json.loads(text)
                    if m.get("type") == "subscribed":
                        rc.subscribed = m.get("symbols")
                    elif m.get("type") == "quote":
                        rc.got.setdefault((m["symbol"], m["price"]), []).append(time.monotonic())
                    elif m.get("type") == "error":
                        rc.errors.append(m)
                    if not rc.ready.is_set() and rc.subscribed and all((s, initial[s]) in rc.got for s in rc.symbols):
                        rc.ready.set()
            except ConnectionClosed:
                pass
            rc.closed_at = time.monotonic()
            rc.close_code, rc.close_reason = ws.close_code, ws.close_reason or ""
    except Exception as e:  # the connect failed or the stream broke
        rc.error = "%s: %s" % (type(e).__name__, e)
        rc.closed_at = time.monotonic()


async def read_until_closed(reader, deadline):
    """(data, how): how is 'eof', 'reset' or '' (still open at the deadline)."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, ""
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            return data, ""
        except (ConnectionResetError, BrokenPipeError):
            return data, "reset"
        except OSError as e:
            return data, "error %s" % e.errno
        if not chunk:
            return data, "eof"
        data += chunk


async def open_conn(c, port, sem, wait_for):
    async with sem:
        c.attempt = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(c.addr, 0)), wait_for)
        except (OSError, asyncio.TimeoutError) as e:
            c.error = "%s: %s" % (type(e).__name__, e)
            return None
    c.opened = time.monotonic()
    return reader, writer


async def sender(c, writer, kind):
    """Writes the slowloris or drip bytes until serve closes the connection."""
    try:
        if kind == "slowloris":
            writer.write(SLOW_HEAD)
            c.sent += len(SLOW_HEAD)
            n = 0
            while True:
                await writer.drain()
                await asyncio.sleep(1.0)
                line = b"X-Slow-%d: %d\r\n" % (n, n)
                n += 1
                writer.write(line)
                c.sent += len(line)
        elif kind == "drip":
            def stream():
                yield from DRIP_HEAD
                while True:  # header lines for ever, never the empty line that ends a head
                    yield from b"X-Drip: x\r\n"
            for byte in stream():
                writer.write(bytes([byte]))
                c.sent += 1
                await writer.drain()
                await asyncio.sleep(0.5)
    except (OSError, ConnectionError):
        pass  # closed by serve: the reader sees it


async def held_conn(c, port, sem, a, counter):
    rw = await open_conn(c, port, sem, 30)
    if rw is None:
        return
    reader, writer = rw
    counter[0] += 1
    task = asyncio.create_task(sender(c, writer, c.kind)) if c.kind in ("slowloris", "drip") else None
    c.data, c.how = await read_until_closed(reader, c.opened + a.head_timeout + a.margin + 5)
    if c.how:
        c.closed = time.monotonic()
    counter[0] -= 1
    if task:
        task.cancel()
    writer.close()


async def malformed_conn(c, payload, port, sem, a):
    rw = await open_conn(c, port, sem, 30)
    if rw is None:
        return
    reader, writer = rw
    try:
        writer.write(payload)
        c.sent = len(payload)
        await writer.drain()
    except (OSError, ConnectionError):
        pass
    c.data, c.how = await read_until_closed(reader, c.opened + a.margin)
    if c.how:
        c.closed = time.monotonic()
    writer.close()


async def http_get(port, path, src="127.0.0.1", timeout=10):
    """(status line, body, seconds) of a one-shot GET with Connection: close."""
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), timeout)
        writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        await writer.drain()
        data, how = await read_until_closed(reader, t0 + timeout)
        writer.close()
    except (OSError, asyncio.TimeoutError) as e:
        return "%s: %s" % (type(e).__name__, e), b"", time.monotonic() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode("latin-1"), body, time.monotonic() - t0


async def run_fetch(binary, env, path):
    t0 = time.monotonic()
    p = await asyncio.create_subprocess_exec(binary, "fetch", "--from", path, env=env, stdin=asyncio.subprocess.DEVNULL,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(p.communicate(), 30)
    except asyncio.TimeoutError:
        p.kill()
        out, err = await p.communicate()
        err += b" (killed after 30 s)"
    return p.returncode, (out + err).decode("utf-8", "replace").strip(), t0


def write_round(root, rnd, observed):
    path = os.path.join(root, "round%03d.csv" % rnd)
    with open(path, "w") as f:
        for s, sym in enumerate(SYMBOLS):
            f.write("%s,%r,%s\n" % (sym, price(rnd, s), iso(observed)))
    return path


def raise_nofile(want):
    """For serve: a soft RLIMIT_NOFILE of at least `want` (as LimitNOFILE does under systemd)."""
    def pre():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    return pre


async def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


async def main_async(a, checks, facts):
    binary = a.binary
    rng = random.Random(a.seed)
    root = facts["root"]
    env = dict(os.environ, HOME=root, XDG_CONFIG_HOME=os.path.join(root, "xdg-config"),
               XDG_STATE_HOME=os.path.join(root, "xdg-state"), TMPDIR=root,
               STOCKWATCH_DB=os.path.join(root, "serve.db"), STOCKWATCH_CONFIG=os.path.join(root, "config.toml"))
    for k in ("STOCKWATCH_FIXER_API_KEY", "STOCKWATCH_CURRENCYLAYER_API_KEY", "STOCKWATCH_FINNHUB_API_KEY"):
        env.pop(k, None)
    cap = max(128, a.clients + 16)
    per_addr = cap * 3 // 4
    n_addr = max(1, math.ceil(a.hostile / per_addr))
    if n_addr + 3 > 254:
        raise SystemExit("hostile: too many connections for 127.0.0.2..254 at %d per address" % per_addr)
    addrs = ["127.0.0.%d" % (2 + i) for i in range(n_addr)]
    probe_addr = "127.0.0.%d" % (2 + n_addr)
    facts.update(cap=cap, addrs=addrs, probe_addr=probe_addr)
    with open(env["STOCKWATCH_CONFIG"], "w") as f:
        f.write('[serve]\nrequest_head_timeout = "%ds"\nmax_connections_per_address = %d\n' % (a.head_timeout, cap))

    # users and their tokens
    n_users = math.ceil(a.clients / PER_USER)
    tokens = []
    for u in range(n_users):
        p = await asyncio.create_subprocess_exec(binary, "user", "add", "user%03d" % u, "--json", env=env,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        if p.returncode != 0:
            checks.check("setup", False, "stockwatch user add user%03d: exit %d: %s" % (u, p.returncode, err.decode()[:300]))
            return
        tokens.append(json.loads(out)["token"])

    # round 0, before serve starts: what each subscribe brings
    base = int(time.time()) - 600
    rc, out, _ = await run_fetch(binary, env, write_round(root, 0, base))
    if rc != 0:
        checks.check("setup", False, "stockwatch fetch --from round000.csv: exit %d: %s" % (rc, out[:300]))
        return
    initial = {sym: price(0, s) for s, sym in enumerate(SYMBOLS)}

    # serve
    want_fds = 2 * (a.hostile + a.malformed + cap + a.clients) + 256
    serr = open(os.path.join(root, "serve.err"), "wb")
    serve = await asyncio.create_subprocess_exec(binary, "serve", "--listen", "127.0.0.1:0", env=env, cwd=root,
                                                 stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                 stderr=serr, preexec_fn=raise_nofile(want_fds), start_new_session=True)
    facts["serve"] = serve
    try:
        line = await asyncio.wait_for(serve.stdout.readline(), 20)
    except asyncio.TimeoutError:
        line = b""
    line = line.decode().strip()
    if not line.startswith("listening on 127.0.0.1:"):
        checks.check("setup", False, "serve did not print 'listening on 127.0.0.1:PORT' within 20 s: %r" % line)
        return
    port = int(line.rsplit(":", 1)[1])
    pid = serve.pid
    with open("/proc/%d/limits" % pid) as f:
        facts["serve_nofile"] = next((l.split()[3] for l in f if l.startswith("Max open files")), "?")
    progress(a, "serve pid %d on port %d (open files limit %s); %d users" % (pid, port, facts["serve_nofile"], n_users))

    # real clients
    reals = []
    for n in range(a.clients):
        reals.append(Real(n, "user%03d" % (n // PER_USER), tokens[n // PER_USER], sorted(rng.sample(SYMBOLS, PER_CLIENT))))
    t_connect = time.monotonic()
    real_tasks = []
    for i in range(0, len(reals), 20):  # in batches, so the accept backlog never overflows
        real_tasks += [asyncio.create_task(real_client(r, port, initial)) for r in reals[i:i + 20]]
        await asyncio.sleep(0.05)
    ok = await wait_until(lambda: all(r.ready.is_set() or r.closed_at for r in reals), 60)
    not_ready = [r for r in reals if not r.ready.is_set()]
    facts["connect_s"] = time.monotonic() - t_connect
    if not checks.check("setup", ok and not not_ready, "%d of %d real clients not ready after 60 s: %s" % (
            len(not_ready), len(reals), "; ".join("client %d (%s): %s" % (r.n, r.user, r.error or "no current quotes")
                                                   for r in not_ready[:3]))):
        return
    progress(a, "%d real clients subscribed in %.1f s" % (len(reals), facts["connect_s"]))

    # fd baseline: real clients connected, serve settled (the same count over 1 s)
    samples = []

    def stable():
        samples.append(count_fds(pid))
        return len(samples) >= 5 and len(set(samples[-5:])) == 1
    await wait_until(stable, 10, 0.2)
    baseline = samples[-1]
    facts["fd_before"] = baseline

    # the hostile load, in waves: each wave starts once serve is back at its baseline
    sem = asyncio.Semaphore(CONNECT_AT_ONCE)
    open_count = [0]   # held connections of the current wave open now (the cap probe's not counted)
    load_over = asyncio.Event()
    rounds = []        # (round, rc, output, fetch start, held connections open at the start)
    waves = []
    t_load = time.monotonic()

    async def quote_rounds():
        rnd = 1
        while rnd < MAX_ROUNDS and not load_over.is_set():
            t = time.monotonic()
            opened_now = open_count[0]
            rc, out, t0 = await run_fetch(binary, env, write_round(root, rnd, base + rnd))
            rounds.append((rnd, rc, out, t0, opened_now))
            rnd += 1
            await asyncio.sleep(max(0.0, t + ROUND_EVERY - time.monotonic()))
        # one round after the load
        rc, out, t0 = await run_fetch(binary, env, write_round(root, rnd, base + rnd))
        rounds.append((rnd, rc, out, t0, open_count[0]))

    rounds_task = asyncio.create_task(quote_rounds())
    for w in range(a.waves):
        kinds = (["idle", "idle", "slowloris", "slowloris", "drip"] * (a.hostile // 5 + 1))[:a.hostile]
        rng.shuffle(kinds)
        wave = {"n": w + 1, "t0": time.monotonic(), "health": [], "peak": baseline,
                "held": [Conn(k, addrs[i % n_addr]) for i, k in enumerate(kinds)],
                "probe": [Conn("cap-probe", probe_addr) for _ in range(cap + 1)],
                "bad": [(Conn("malformed/" + MALFORMED[i % len(MALFORMED)][0], addrs[(i * 7 + w) % n_addr]),
                         MALFORMED[i % len(MALFORMED)][1]) for i in range(a.malformed)]}
        waves.append(wave)
        held, probe, bad = wave["held"], wave["probe"], wave["bad"]
        wave_over = asyncio.Event()
        probe_count = [0]

        async def sample_fds():
            while not wave_over.is_set():
                wave["peak"] = max(wave["peak"], count_fds(pid))
                await asyncio.sleep(0.1)

        async def malformed_spread():
            span = max(1.0, a.head_timeout - 1.0)
            tasks = []
            for i, (c, payload) in enumerate(bad):
                await asyncio.sleep(max(0.0, wave["t0"] + span * i / max(1, len(bad)) - time.monotonic()))
                tasks.append(asyncio.create_task(malformed_conn(c, payload, port, sem, a)))
            await asyncio.gather(*tasks)

        async def health_under_load():
            # once every held connection is connected (or failed)
            await wait_until(lambda: all(c.opened or c.error for c in held + probe), 60)
            wave["ramp_s"] = time.monotonic() - wave["t0"]
            wave["open_at_ramp"] = open_count[0]
            for src in ("127.0.0.1", addrs[w % n_addr]):
                wave["health"].append((src,) + await http_get(port, "/healthz", src))

        async def probe_all():
            await asyncio.gather(*[held_conn(c, port, sem, a, probe_count) for c in probe])

        progress(a, "wave %d: fd baseline %d; %d held hostile connections over %s..%s, %d malformed, cap probe %d on %s" % (
            w + 1, baseline, len(held), addrs[0], addrs[-1], len(bad), len(probe), probe_addr))
        sampler = asyncio.create_task(sample_fds())
        health_task = asyncio.create_task(health_under_load())
        hostile_tasks = [asyncio.create_task(held_conn(c, port, sem, a, open_count)) for c in held]
        hostile_tasks += [asyncio.create_task(malformed_spread()), asyncio.create_task(probe_all())]
        await asyncio.gather(*hostile_tasks)
        await health_task
        wave["load_s"] = time.monotonic() - wave["t0"]

        # back to the baseline?
        after = [count_fds(pid)]

        def back():
            after.append(count_fds(pid))
            return after[-1] <= baseline + FD_TOLERANCE
        await wait_until(back, 10, 0.1)
        wave_over.set()
        await sampler
        wave["after"] = after[-1]
        progress(a, "wave %d: connected in %.1f s (%d open then), every hostile connection ended after %.1f s; "
                 "fds %d before, %d peak, %d after" % (w + 1, wave.get("ramp_s", -1), wave.get("open_at_ramp", -1),
                                                       wave["load_s"], baseline, wave["peak"], wave["after"]))
    load_over.set()
    await rounds_task
    facts["rounds"] = rounds
    facts["waves"] = waves
    facts["load_s"] = time.monotonic() - t_load

    # every quote of every round delivered?
    expected = {r.n: [(sym, price(rnd, SYMBOLS.index(sym))) for rnd, rc, _, _, _ in rounds if rc == 0 for sym in r.symbols]
                for r in reals}
    await wait_until(lambda: all(all(k in r.got for k in expected[r.n]) for r in reals), 15, 0.1)
    health_after = await http_get(port, "/healthz")
    alive = serve.returncode is None

    # stop serve: every stream closed with 1000, exit 0 within 15 s
    t_term = time.monotonic()
    serve.send_signal(signal.SIGTERM)
    try:
        exit_code = await asyncio.wait_for(serve.wait(), 20)
    except asyncio.TimeoutError:
        exit_code = None
    facts["term_s"] = time.monotonic() - t_term
    await wait_until(lambda: all(r.closed_at for r in reals), 10)
    for t in real_tasks:
        t.cancel()
    serr.close()
    with open(os.path.join(root, "serve.err"), "rb") as f:
        stderr = f.read()

    # ---- the checks
    lo, hi = a.head_timeout - 0.25, a.head_timeout + a.margin
    closes = []
    for wave in waves:
        held, probe, bad, t0, w = wave["held"], wave["probe"], wave["bad"], wave["t0"], wave["n"]
        failed = [c for c in held + probe if not c.opened] + [c for c, _ in bad if not c.opened]
        checks.check("load-reached", not failed, "wave %d: %s" % (w, "; ".join(c.describe(t0) for c in failed[:5])),
                     n=len(held) + len(probe) + len(bad))
        checks.check("load-reached", wave["peak"] >= baseline + 0.9 * (len(held) + cap),
                     "wave %d: serve's fd count peaked at %d, baseline %d: fewer than 90%% of the %d held and cap "
                     "probe connections reached it" % (w, wave["peak"], baseline, len(held) + cap))

        over = sorted((c for c in probe if c.closed and c.closed - c.opened < a.head_timeout / 2),
                      key=lambda c: c.closed - c.opened)
        for c in held + [c for c in probe if c not in over[:1]]:
            if not c.opened:
                continue
            # serve's deadline starts when it accepts: after our connect began, perhaps after it returned
            d = c.closed - c.opened if c.closed else None
            if d is not None:
                closes.append(d)
            checks.check("hostile-closed", d is not None and c.closed - c.attempt >= lo and d <= hi,
                         "wave %d: %s (expected closed %.2f..%.1f s after connecting)" % (w, c.describe(t0), lo, hi))

        for c, payload in bad:
            if not c.opened:
                continue
            okm = c.data.startswith(b"HTTP/1.1 400 ") and b'"bad_request"' in c.data and c.closed is not None
            checks.check("malformed-400", okm, "wave %d: %r: %s" % (w, payload[:60], c.describe(t0)))

        extra = " ".join("%s closed after %.2f s" % (c.how, c.closed - c.opened) for c in over[:3])
        checks.check("address-cap", len(over) == 1 and not over[0].data,
                     "wave %d: %d of %d connections from %s closed before %.1f s (expected exactly 1, without an "
                     "answer): %s" % (w, len(over), len(probe), probe_addr, a.head_timeout / 2, extra or "none"),
                     n=len(probe))

        checks.check("fd-baseline", wave["after"] <= baseline + FD_TOLERANCE,
                     "wave %d: serve's open fds: %d before the load, %d peak, %d ten seconds after every hostile "
                     "connection ended (tolerance +%d); ls -l /proc/PID/fd" % (
                         w, baseline, wave["peak"], wave["after"], FD_TOLERANCE))
        for src, status, body, secs in wave["health"]:
            checks.check("health", status.startswith("HTTP/1.1 200") and body.strip() == b"ok",
                         "wave %d: GET /healthz from %s during the load: %r %r after %.1f s" % (
                             w, src, status, body[:80], secs))
    closes.sort()
    if closes:
        facts["close_s"] = (closes[0], closes[len(closes) // 2], closes[-1])

    bad_rounds = [(rnd, rc, out) for rnd, rc, out, _, _ in rounds if rc != 0]
    n_held = a.hostile
    loaded = [rnd for rnd, rc, _, _, n in rounds if rc == 0 and n >= 0.9 * n_held]
    facts["loaded_rounds"] = loaded
    checks.check("quotes-stored", not bad_rounds, "; ".join("round %d: exit %d: %s" % b for b in bad_rounds[:3]),
                 n=len(rounds))
    for wave in waves:
        mine = [rnd for rnd, rc, _, t, n in rounds if rc == 0 and n >= 0.9 * n_held and wave["t0"] <= t <= wave["t0"] + wave["load_s"]]
        checks.check("quotes-stored", len(mine) >= 1, "wave %d: no round stored while >= 90%% of its %d held connections "
                     "were open (raise --head-timeout)" % (wave["n"], n_held))

    lat = []
    fetch_start = {(sym, price(rnd, SYMBOLS.index(sym))): t for rnd, rc, _, t, _ in rounds for sym in SYMBOLS}
    for r in reals:
        missed = [k for k in expected[r.n] if k not in r.got]
        early = r.closed_at is not None and r.closed_at < t_term
        checks.check("real-no-miss", not missed and not early and not r.error,
                      "client %d (%s, %s): missed %d of %d quotes %s%s%s" % (
                          r.n, r.user, ",".join(r.symbols), len(missed), len(expected[r.n]), missed[:4],
                          "; closed %.1f s before serve was stopped (code %s %r)" % (t_term - r.closed_at, r.close_code, r.close_reason) if early else "",
                          "; " + r.error if r.error else ""))
        dups = [(k, len(v)) for k, v in r.got.items() if len(v) > 1]
        checks.check("real-no-dup", not dups, "client %d (%s): received twice or more: %s" % (r.n, r.user, dups[:4]))
        for k in expected[r.n]:
            if k in r.got:
                lat.append(r.got[k][0] - fetch_start[k])
    lat.sort()
    if lat:
        facts["latency_ms"] = (1000 * lat[len(lat) // 2], 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1000 * lat[-1])
    facts["quotes_expected"] = sum(len(v) for v in expected.values())
    facts["quotes_received"] = sum(1 for r in reals for k in expected[r.n] if k in r.got)

    checks.check("health", health_after[0].startswith("HTTP/1.1 200") and health_after[1].strip() == b"ok",
                 "GET /healthz after the load: %r %r after %.1f s" % health_after)
    checks.check("serve-alive", alive, "serve exited %s during the load" % serve.returncode)
    lines = stderr.decode("utf-8", "replace").splitlines()
    checks.check("serve-stderr", not lines, "%d lines on serve's stderr, e.g.: %s" % (len(lines), " | ".join(lines[:3])))
    bad_close = [r for r in reals if r.close_code != 1000 and not (r.closed_at and r.closed_at < t_term)]
    checks.check("clean-exit", exit_code == 0 and facts["term_s"] <= 15 and not bad_close,
                 "SIGTERM: exit %s after %.1f s; %d clients without close 1000, e.g. %s" % (
                     exit_code, facts["term_s"], len(bad_close),
                     ["client %d: %s %r %s" % (r.n, r.close_code, r.close_reason, r.error or "") for r in bad_close[:3]]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("STOCKWATCH_BIN", os.path.join(repo, ".build/release/stockwatch")))
    ap.add_argument("--seed", type=int, default=1, help="picks the clients' symbols and the order of the hostile kinds")
    ap.add_argument("--hostile", type=int, default=1000, help="held hostile connections: idle, slowloris, drip")
    ap.add_argument("--malformed", type=int, default=200, help="malformed requests during the load")
    ap.add_argument("--clients", type=int, default=100, help="real stream clients (5 per user)")
    ap.add_argument("--waves", type=int, default=3, help="hostile loads one after another, each back to the baseline")
    ap.add_argument("--head-timeout", type=int, default=5, help="[serve] request_head_timeout, seconds")
    ap.add_argument("--margin", type=float, default=3.0, help="seconds past the head timeout a close may take")
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    if not os.access(a.binary, os.X_OK):
        print("hostile: no executable binary at %s" % a.binary, file=sys.stderr)
        return 2
    if a.hostile < 5 or a.clients < 1 or a.malformed < 0 or a.waves < 1 or not 1 <= a.head_timeout <= 300:
        print("hostile: need --hostile >= 5, --clients >= 1, --malformed >= 0, --waves >= 1, --head-timeout 1..300",
              file=sys.stderr)
        return 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="stockwatch-hostile-")
    checks = Checks()
    facts = {"root": root}
    try:
        asyncio.run(main_async(a, checks, facts))
    finally:
        serve = facts.get("serve")
        if serve is not None and serve.returncode is None:
            try:
                os.kill(serve.pid, signal.SIGKILL)
            except OSError:
                pass
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)

    names = ["setup", "load-reached", "hostile-closed", "malformed-400", "address-cap", "fd-baseline", "quotes-stored",
             "real-no-miss", "real-no-dup", "health", "serve-alive", "serve-stderr", "clean-exit"]
    waves = facts.get("waves", [])
    kinds = {}
    for c in (waves[0]["held"] if waves else []):
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    addrs = facts.get("addrs") or ["-"]
    print()
    print("hostile: %d waves of %d held connections (%s) over %d addresses %s..%s, %d malformed requests and a cap "
          "probe of %s+1 on %s (max_connections_per_address %s); %d real clients from 127.0.0.1; request_head_timeout "
          "%d s; binary %s" % (
              a.waves, a.hostile, ", ".join("%d %s" % (v, k) for k, v in sorted(kinds.items())), len(addrs), addrs[0],
              addrs[-1], a.malformed, facts.get("cap", "-"), facts.get("probe_addr", "-"), facts.get("cap", "-"),
              a.clients, a.head_timeout, a.binary))
    for wave in waves:
        if "after" not in wave:
            continue
        h = ", ".join("%s %s in %.0f ms" % (src, status.split(" ", 1)[-1], secs * 1000) for src, status, _, secs in wave["health"])
        print("  wave %d: connected in %.1f s, all ended after %.1f s; serve's fds %d before, %d peak, %d after; "
              "GET /healthz under the load: %s" % (wave["n"], wave.get("ramp_s", -1), wave["load_s"],
                                                   facts["fd_before"], wave["peak"], wave["after"], h or "-"))
    cs = facts.get("close_s")
    if cs:
        print("  held connections closed %.2f / %.2f / %.2f s (min / median / max) after connecting; serve's open files "
              "limit %s" % (cs + (facts.get("serve_nofile"),)))
    if "quotes_expected" in facts:
        lm = facts.get("latency_ms")
        print("  quotes: %d rounds of %d symbols (%d under a full wave), %d of %d received by the real clients; "
              "latency from fetch start %s" % (
                  len(facts["rounds"]), len(SYMBOLS), len(facts.get("loaded_rounds", [])), facts["quotes_received"],
                  facts["quotes_expected"], "p50 %.0f ms, p99 %.0f ms, max %.0f ms" % lm if lm else "-"))
    print()
    print("%-16s %8s %8s  %s" % ("CHECK", "CHECKED", "FAILED", "RESULT"))
    passed = failed = 0
    for name in names:
        n, fl = checks.runs.get(name, 0), checks.fails.get(name, [])
        ok = not fl and n > 0  # a check that never ran proves nothing
        passed += ok
        failed += not ok
        print("%-16s %8d %8d  %s" % (name, n, len(fl), "pass" if ok else "FAIL"))
    for name in names:
        fl = checks.fails.get(name, [])
        if fl:
            print()
            print("FAIL %s: %d failures; examples:" % (name, len(fl)))
            for text in fl[: a.examples]:
                print("  " + text)
    print()
    print("environment: STOCKWATCH_DB, STOCKWATCH_CONFIG, HOME under %s%s" % (root, "" if a.keep else " (removed; --keep keeps it)"))
    print("hostile: %.0f s wall" % (time.monotonic() - started))
    print("hostile: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
