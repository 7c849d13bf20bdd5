#!/usr/bin/env python3
"""The provider-faults section of Scripts/reliability (issue 7).

Fake fixer.io, currencylayer, Finnhub and Stooq servers (one threaded HTTP
server on 127.0.0.1 in this process, speaking the formats of
shared/REFERENCE.md) answer `stockwatch fetch` with one fault at a time:
every documented error code, HTTP 500/503, 429 with and without Retry-After
(also a huge one, 1e300 or a date in the year 9999, which is clamped to a
day; issue 20), a 302 to another address (never followed), malformed JSON or CSV, an empty body, an HTML page, a hang past the
timeout (no answer; or the headers and half a body, then nothing or a byte
every 0.5 s), a dropped connection, a zero, negative, NaN, infinite, huge or
textual price, a time in the future or older than max_age, and (beyond the
brief) a fixer answer in another base than asked. Each (provider, fault)
runs twice, each in a fresh folder and database: `alone` (only the faulty provider in the route) and
`failover` (the faulty provider first, a healthy one second: fixer <->
currencylayer for EUR/USD GBP/USD, finnhub <-> stooq for AAPL MSFT).

Beyond fetch, the same numbers from outside reach `stockwatch notify` (issue
20): cases notify/* send one notification through an fcm or webhook channel
whose fakes (on the same server) answer an OAuth grant with
`expires_in: 1e300`, or a send with 503 and `Retry-After: 1e300`, or a 302.

Checks (README "fetch", "Exit codes"):
  setup            every case got its folder, config and fake
  baseline         each provider healthy: exit 0, the exact prices and times
                   stored (proves the fakes speak the formats; Stooq in
                   Europe/Warsaw time); with two healthy providers the second
                   is never asked
  request-format   every request the fakes got is the documented one (path,
                   key, base, symbols; the Finnhub token in a header only)
  invalid-stored   no stored quote is invalid: price <= 0 or >= 1e15, time
                   > 5 min ahead or older than max_age, or a value only the
                   faulty provider served (goal 0)
  failover         with a second provider, every faulted symbol got that
                   provider's price in the same run (goal 0 misses)
  exit-code        the exit status is README's: failover 0 (78 for a
                   rejected key or plan, README: "Errors 101/102/105 are
                   config errors (exit 78)"); alone 69 nothing fetched, 75
                   partial, 78 config; 0 for a run skipped by its budget
  error-line       a failing run prints only lines "stockwatch: error: ..."
                   that name the provider, no raw control characters, no
                   duplicates
  stdout-quiet     nothing on stdout (no -v, no --json)
  quiet-success    exit 0 prints nothing on stderr either (cron mails it)
  no-secret        no API key appears in the output (beyond the brief)
  no-redirect      a 302 from a provider is not followed: the address it
                   names is never asked (it would get the key)
  notify-clamped   notify/*: notify neither crashes nor hangs; the token's
                   expiry and the retry's due time are at most a day ahead
                   (expires_in and Retry-After clamped), the delivery is
                   sent (huge expires_in) or retry (huge Retry-After, a
                   redirect, never followed), and a second notify does not
                   crash either
  budget-honoured  after 429 (Retry-After 120, an HTTP date, or none: 60 s;
                   1e300 or a date in the year 9999: 1 day),
                   104 (until quota_reset) and 5xx or timeouts (30 s), the
                   backoff is recorded and an immediate second fetch does
                   not ask that provider, and still fails over
  timeout          every run ends within --timeout seconds (the faulty
                   provider's timeout is 1 s), hangs included

Python 3 standard library only. There is no randomness in the faults;
--seed only shuffles the order the cases run in (results must not depend
on it). Reproduce one case with --only NAME --keep.
"""

import argparse
import base64
import email.utils
import fnmatch
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

PREFIX = b"stockwatch: error: "
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
FX, STOCKS = ["EUR/USD", "GBP/USD"], ["AAPL", "MSFT"]
PARTNER = {"fixer": "currencylayer", "currencylayer": "fixer", "finnhub": "stooq", "stooq": "finnhub"}
MAX_AGE = 86400  # README: [fetch] max_age defaults to 1 day
WARSAW = ZoneInfo("Europe/Warsaw")
HANG = 12  # seconds a hanging fake holds the connection: far past the 1 s timeout

# Healthy answers; each provider's prices differ so a stored row shows who served it.
FIXER_RATES = {"USD": 1.0812, "GBP": 0.8507}          # base EUR
CL_QUOTES = {"USDEUR": 0.9191, "USDGBP": 0.7813}      # source USD
FINNHUB = {"AAPL": 182.63, "MSFT": 411.22}
STOOQ = {"AAPL": 182.71, "MSFT": 411.05}


def healthy_price(provider, symbol):
    if provider == "fixer":
        return FIXER_RATES["USD"] / (1.0 if symbol == "EUR/USD" else FIXER_RATES["GBP"])
    if provider == "currencylayer":
        return 1.0 / CL_QUOTES["USD" + symbol[:3]]
    return (FINNHUB if provider == "finnhub" else STOOQ)[symbol]


# ---------------------------------------------------------------------------
# Faults: name -> (kind, faulted symbols or None for all, budget).
# kind: "config" (an admin must act: exit 78), "partial" (only the faulted
# symbols fail), "unavailable" (everything else). budget: seconds of backoff
# README promises, "reset" for 104, None when README promises none.

COMMON = {
    "http-500": ("unavailable", None, 30), "http-503": ("unavailable", None, 30),
    "429-retry-after": ("unavailable", None, 120), "429-http-date": ("unavailable", None, 120),
    "429-bare": ("unavailable", None, 60),
    # issue 20: a huge Retry-After trapped converting to milliseconds (exit 132); clamped to a day
    "429-retry-after-huge": ("unavailable", None, 86400), "429-date-9999": ("unavailable", None, 86400),
    "redirect": ("unavailable", None, None),  # 302 to another address: never followed
    "malformed": ("unavailable", None, None), "empty-body": ("unavailable", None, None),
    "html-200": ("unavailable", None, None), "drop": ("unavailable", None, None),
    "hang": ("unavailable", None, 30), "hang-body": ("unavailable", None, 30),
    "hang-drip": ("unavailable", None, 30),  # one body byte every 0.5 s: only a total deadline ends it
    "price-zero": ("unavailable", None, None), "price-negative": ("unavailable", None, None),
    "price-nan": ("unavailable", None, None), "price-inf": ("unavailable", None, None),
    "price-huge": ("unavailable", None, None), "price-text": ("unavailable", None, None),
    "time-future": ("unavailable", None, None), "time-past": ("unavailable", None, None),
}
APILAYER = dict(COMMON, **{
    "err-101-missing": ("config", None, None), "err-101-invalid": ("config", None, None),
    "err-101-control-chars": ("config", None, None), "err-102": ("config", None, None),
    "err-103": ("unavailable", None, None), "err-104": ("unavailable", None, "reset"),
    "err-105-https": ("config", None, None), "err-105-base": ("config", None, None),
    "err-106": ("unavailable", None, None), "err-201": ("config", None, None),  # the base setting is wrong
    "err-202": ("unavailable", None, None), "err-404": ("unavailable", None, None),
    "err-no-code": ("unavailable", None, None), "no-success-flag": ("unavailable", None, None),
    "http-401-apilayer": ("config", None, None),       # the api.apilayer.com host's bad key
    "wrong-base": ("unavailable", None, None),          # beyond the brief: base not as asked
    "missing-rate": ("partial", ["GBP/USD"], None),
})
FAULTS = {
    "fixer": APILAYER,
    "currencylayer": APILAYER,
    "finnhub": dict(COMMON, **{
        "http-401": ("config", None, None), "http-403": ("config", None, None),
        "all-zero": ("unavailable", None, None), "all-zero-one": ("partial", ["MSFT"], None),
        "429-second": ("partial", ["MSFT"], 120), "time-millis": ("unavailable", None, None),
    }),
    "stooq": dict(COMMON, **{
        "nd-all": ("unavailable", None, None), "nd-one": ("partial", ["MSFT"], None),
        "csv-no-header": ("unavailable", None, None), "csv-short-rows": ("unavailable", None, None),
        "csv-invalid-utf8": ("unavailable", None, None), "csv-semicolons": ("unavailable", None, None),
    }),
}
APILAYER_ERRORS = {  # fault -> (code, type, info), each in the 200 {"success":false} envelope
    "err-101-missing": (101, "missing_access_key", "You have not supplied an API Access Key."),
    "err-101-invalid": (101, "invalid_access_key", "You have not supplied a valid API Access Key."),
    "err-101-control-chars": (101, "invalid_access_key", "bad key\n\x1b[31mred\x1b[0m\rover"),
    "err-102": (102, "inactive_user", "The account this API request is coming from is inactive."),
    "err-103": (103, "invalid_api_function", "The requested API endpoint does not exist."),
    "err-104": (104, "usage_limit_reached", "Your monthly API request volume has been reached."),
    "err-105-https": (105, "https_access_restricted", "Access Restricted - Your plan does not support HTTPS."),
    "err-105-base": (105, "base_currency_access_restricted", None),
    "err-106": (106, "no_rates_available", "The current request did not return any results."),
    "err-201": (201, "invalid_base_currency", None), "err-202": (202, "invalid_currency_codes", None),
    "err-404": (404, "404_not_found", "The requested resource does not exist."),
    "err-no-code": (None, None, None),
}
POISON = {"price-zero": "0", "price-negative": "-1.0812", "price-nan": "NaN", "price-inf": "1e400",
          "price-huge": "1e16", "price-text": '"1.0812"'}
HTML = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>"


def answer(provider, fault, asked, now):
    """The fake's answer: ("http", status, headers, body), ("hang", body or None) or ("drop",).

    asked: the symbols of the request in stockwatch's notation."""
    json_type = {"Content-Type": "application/json"}
    if fault == "http-500":
        return ("http", 500, {}, b"Internal Server Error")
    if fault == "http-503":
        return ("http", 503, {}, b"Service Unavailable")
    if fault.startswith("429") and fault != "429-second":
        headers = dict(json_type)
        if fault == "429-retry-after":
            headers["Retry-After"] = "120"
        elif fault == "429-http-date":
            headers["Retry-After"] = email.utils.formatdate(now + 120, usegmt=True)
        elif fault == "429-retry-after-huge":
            headers["Retry-After"] = "1e300"
        elif fault == "429-date-9999":
            headers["Retry-After"] = "Fri, 31 Dec 9999 23:59:59 GMT"
        return ("http", 429, headers, b'{"error":"API limit reached. Please try again later."}')
    if fault == "empty-body":
        return ("http", 200, json_type, b"")
    if fault == "html-200":
        return ("http", 200, {"Content-Type": "text/html"}, HTML)
    if fault == "drop":
        return ("drop",)
    if fault == "redirect":
        return ("redirect",)
    if fault == "hang":
        return ("hang", None)
    ts = int(now) - 60
    if fault == "time-future":
        ts = int(now) + 3600
    elif fault == "time-past":
        ts = int(now) - 3 * 86400
    poison = POISON.get(fault)
    if provider in ("fixer", "currencylayer"):
        if fault in APILAYER_ERRORS:
            code, typ, info = APILAYER_ERRORS[fault]
            err = {k: v for k, v in (("code", code), ("type", typ), ("info", info)) if v is not None}
            body = json.dumps({"success": False, "error": err}).encode()
        elif fault == "no-success-flag":
            body = b'{"timestamp":%d}' % ts
        elif fault == "http-401-apilayer":
            return ("http", 401, json_type, b'{"message":"Invalid authentication credentials"}')
        elif provider == "fixer":
            codes = sorted({c for s in asked for c in s.split("/")} - {"EUR"})
            rates = {c: FIXER_RATES[c] for c in codes}
            if fault == "missing-rate":
                rates.pop("GBP", None)
            base = "EUR"
            if fault == "wrong-base":  # a USD-based answer without the EUR rate
                base, rates = "USD", {c: (1.0 if c == "USD" else FIXER_RATES[c] / FIXER_RATES["USD"]) for c in codes}
            text = json.dumps({"success": True, "timestamp": ts, "base": base,
                               "date": time.strftime("%Y-%m-%d", time.gmtime(ts)), "rates": rates})
            if poison:  # the USD rate poisons both pairs
                text = text.replace('"USD": %r' % FIXER_RATES["USD"], '"USD": ' + poison)
            body = text.encode()
        else:
            wanted = sorted({c for s in asked for c in s.split("/")} - {"USD"})
            quotes = {"USD" + c: CL_QUOTES["USD" + c] for c in wanted}
            if fault == "missing-rate":
                quotes.pop("USDGBP", None)
            source = "USD"
            if fault == "wrong-base":  # EUR-sourced keys
                source, quotes = "EUR", {"EURUSD": FIXER_RATES["USD"], "EURGBP": FIXER_RATES["GBP"]}
            text = json.dumps({"success": True, "terms": "https://currencylayer.com/terms",
                               "privacy": "https://currencylayer.com/privacy", "timestamp": ts,
                               "source": source, "quotes": quotes})
            if poison:  # the pair is 1/quote: a huge pair needs a tiny quote
                p = {"price-huge": "1e-16", "price-negative": "-0.9191"}.get(fault, poison)
                for k, v in quotes.items():
                    text = text.replace('"%s": %r' % (k, v), '"%s": %s' % (k, p))
            body = text.encode()
        if fault == "malformed":
            body = body[: len(body) // 2]
        if fault in ("hang-body", "hang-drip"):
            return ("hang", body)
        return ("http", 200, json_type, body)
    if provider == "finnhub":
        sym = asked[0]
        if fault in ("http-401", "http-403"):
            return ("http", int(fault[5:]), json_type, b'{"error":"Invalid API key"}')
        if fault == "429-second" and sym == "MSFT":
            return ("http", 429, {"Retry-After": "120"}, b'{"error":"API limit reached. Please try again later."}')
        if fault == "all-zero" or (fault == "all-zero-one" and sym == "MSFT"):
            return ("http", 200, json_type, b'{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}')
        if fault == "time-millis":
            ts = int(now * 1000)
        c = FINNHUB[sym]
        text = '{"c":%s,"d":1.85,"dp":1.0239,"h":%s,"l":%s,"o":%s,"pc":%s,"t":%d}' % (
            poison or repr(c), c + 0.5, c - 1.7, c - 1.4, c - 1.8, ts)
        body = text.encode()[:40] if fault == "malformed" else text.encode()
        return ("hang", body) if fault in ("hang-body", "hang-drip") else ("http", 200, json_type, body)
    # stooq: times in Warsaw local time (StooqProvider.timeZone)
    local = datetime.fromtimestamp(ts, WARSAW)
    rows = ["Symbol,Date,Time,Open,High,Low,Close,Volume"]
    for sym in asked:
        close = {"price-text": "abc", "price-inf": "inf"}.get(fault, poison) or repr(STOOQ[sym])
        if fault == "nd-all" or (fault == "nd-one" and sym == "MSFT"):
            rows.append("%s.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D" % sym)
        elif fault == "csv-short-rows":
            rows.append("%s.US,%s,%s" % (sym, local.strftime("%Y-%m-%d"), close))
        else:
            rows.append("%s.US,%s,%s,%.2f,%.2f,%.2f,%s,%d" % (sym, local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S"),
                                                            STOOQ[sym] - 1, STOOQ[sym] + 1, STOOQ[sym] - 2, close, 51234567))
    if fault == "csv-no-header":
        rows.pop(0)
    text = "\r\n".join(rows) + "\r\n"
    if fault == "csv-semicolons":
        text = text.replace(",", ";")
    body = text.encode()
    if fault == "csv-invalid-utf8":
        body = b"\xff\xfe" + body.replace(b".", b"\xe9")
    if fault == "malformed":
        body = body[: len(rows[0]) + 12]
    csv_type = {"Content-Type": "text/csv"}
    return ("hang", body) if fault in ("hang-body", "hang-drip") else ("http", 200, csv_type, body)


# ---------------------------------------------------------------------------
# The fake server: one for all cases; the path /cN/PROVIDER/... picks the case.

class Fakes:
    def __init__(self):
        self.cases = {}
        self.stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.fakes = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def base_url(self, case, provider):
        return "http://127.0.0.1:%d/c%d/%s" % (self.server.server_address[1], case.n, provider)

    def close(self):
        self.stop.set()  # releases the hanging handlers
        self.server.shutdown()
        self.server.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        fakes = self.server.fakes
        e = re.match(r"^/c(\d+)/elsewhere/", self.path)
        if e and fakes.cases.get(int(e.group(1))):  # where a redirect points: must never be asked
            case = fakes.cases[int(e.group(1))]
            with case.lock:
                case.followed.append(self.path)
            self.reply(200, {"Content-Type": "application/json"}, b"{}")
            return
        m = re.match(r"^/c(\d+)/(fixer|currencylayer|finnhub|stooq)(/[^?]*)", self.path)
        case = m and fakes.cases.get(int(m.group(1)))
        if not case:
            self.send_error(404)
            return
        provider, path = m.group(2), m.group(3)
        asked, problem = parse_request(case, provider, path, urlsplit(self.path).query, self.headers)
        now = time.time()
        with case.lock:
            case.requests[provider] = case.requests.get(provider, 0) + 1
            if problem:
                case.bad_requests.append("%s: %s (%s)" % (provider, problem, self.path))
        fault = case.behaviour.get(provider, "healthy")
        res = answer(provider, fault, asked or case.symbols, now)
        if provider == case.provider:
            case.last_answer = res
        if res[0] == "drop":
            self.close_connection = True
            return
        if res[0] == "redirect":
            self.reply(302, {"Location": "http://127.0.0.1:%d/c%d/elsewhere/%s/quote?stolen=1" % (
                self.server.server_address[1], case.n, provider)}, b"")
            return
        if res[0] == "hang":
            deadline = time.monotonic() + HANG
            if res[1] is not None:  # the headers and half the body, then nothing (or a byte at a time)
                self.send_response(200)
                self.send_header("Content-Length", str(len(res[1])))
                self.end_headers()
                self.wfile.write(res[1][: len(res[1]) // 2])
                self.wfile.flush()
                for i in range(len(res[1]) // 2, len(res[1]) - 1):
                    if fault != "hang-drip" or fakes.stop.wait(0.5) or time.monotonic() > deadline:
                        break
                    self.wfile.write(res[1][i:i + 1])
                    self.wfile.flush()
            fakes.stop.wait(max(0, deadline - time.monotonic()))
            self.close_connection = True
            return
        _, status, headers, body = res
        self.reply(status, headers, body)

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        """notify/* cases: the OAuth token endpoint, FCM's send and a webhook receiver."""
        fakes = self.server.fakes
        m = re.match(r"^/c(\d+)/(token|fcm|hook)", self.path)
        case = m and fakes.cases.get(int(m.group(1)))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if not isinstance(case, NotifyCase):
            self.send_error(404)
            return
        what = m.group(2)
        with case.lock:
            case.requests[what] = case.requests.get(what, 0) + 1
        json_type = {"Content-Type": "application/json"}
        if what == "token":
            expires = "1e300" if case.fault == "fcm-expires-in-huge" else "3599"
            self.reply(200, json_type, b'{"access_token":"ya29.fake","expires_in":%s,"token_type":"Bearer"}' % expires.encode())
        elif case.fault.endswith("retry-after-huge"):
            body = b'{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}'
            self.reply(503, dict(json_type, **{"Retry-After": "1e300"}), body if what == "fcm" else b"")
        elif case.fault.endswith("redirect"):
            self.reply(302, {"Location": "http://127.0.0.1:%d/c%d/elsewhere/%s" % (self.server.server_address[1], case.n, what)}, b"")
        else:
            self.reply(200, json_type, b'{"name":"projects/p/messages/1"}' if what == "fcm" else b"")


def parse_request(case, provider, path, query, headers):
    """The symbols asked, in stockwatch's notation, and what is wrong with the request."""
    q = parse_qs(query, keep_blank_values=True)
    one = lambda k: (q.get(k) or [None])[0]
    if provider in ("fixer", "currencylayer"):
        fixer = provider == "fixer"
        base, list_key = ("EUR", "symbols") if fixer else ("USD", "currencies")
        codes = set((one(list_key) or "").split(","))
        asked = [s for s in case.symbols if set(s.split("/")) - {base} <= codes]
        if path != ("/latest" if fixer else "/live"):
            return asked, "path %s" % path
        if one("access_key") != case.keys.get(provider):
            return asked, "access_key is not the configured key"
        if one("base" if fixer else "source") != base:
            return asked, "base/source is not %s" % base
        if not codes or not codes <= {"USD", "GBP", "EUR"} - {base}:
            return asked, "%s=%s" % (list_key, one(list_key))
        return asked, None
    if provider == "finnhub":
        sym = one("symbol")
        if path != "/quote" or sym not in case.symbols:
            return None, "path %s symbol %s" % (path, sym)
        if "token" in q or case.keys["finnhub"] in query:
            return [sym], "the token is in the URL"
        if headers.get("X-Finnhub-Token") != case.keys["finnhub"]:
            return [sym], "X-Finnhub-Token is not the configured key"
        return [sym], None
    raw = dict(p.split("=", 1) if "=" in p else (p, None) for p in query.split("&"))
    names = [unquote(s) for s in (raw.get("s") or "").split("+")]
    asked = [s for s in case.symbols if s.lower() + ".us" in names]
    if path != "/q/l/" or raw.get("f") != "sd2t2ohlcv" or "h" not in raw or raw.get("e") != "csv" or len(asked) != len(names):
        return asked, "not the documented /q/l/?s=..&f=sd2t2ohlcv&h&e=csv"
    return asked, None


# ---------------------------------------------------------------------------
# One case: a provider, a fault, a mode, in a fresh folder and database.

def place_case(case, root, n):
    """A case's own folder, database, config path and environment: nothing is shared."""
    case.dir = os.path.join(root, "%03d-%s" % (n, case.name.replace("/", "-")))
    case.db = os.path.join(case.dir, "state", "stockwatch.db")
    case.config = os.path.join(case.dir, "config", "stockwatch", "config.toml")
    case.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                "HOME": os.path.join(case.dir, "home"), "XDG_CONFIG_HOME": os.path.join(case.dir, "config"),
                "XDG_STATE_HOME": os.path.join(case.dir, "state"), "STOCKWATCH_DB": case.db,
                "TMPDIR": os.path.join(case.dir, "tmp"), "SWIFT_BACKTRACE": "enable=no"}


class Case:
    def __init__(self, n, provider, fault, mode, root, fakes):
        self.n, self.provider, self.fault, self.mode = n, provider, fault, mode
        self.name = "%s/%s/%s" % (provider, fault, mode)
        self.partner = PARTNER[provider]
        self.symbols = FX if provider in ("fixer", "currencylayer") else STOCKS
        if fault == "healthy":
            self.kind, faulted, self.budget = "healthy", [], None
        else:
            self.kind, faulted, self.budget = FAULTS[provider][fault]
        self.faulted = self.symbols if faulted is None else faulted
        self.behaviour = {provider: fault, self.partner: "healthy"}
        self.lock = threading.Lock()
        self.requests, self.bad_requests, self.keys, self.last_answer = {}, [], {}, None
        self.followed = []
        place_case(self, root, n)
        fakes.cases[n] = self
        self.fakes = fakes

    def names(self):
        return [self.provider] + ([self.partner] if self.mode == "failover" else [])

    def setup(self):
        for d in ("home", "config/stockwatch", "state", "tmp", "keys"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        lines = []
        for i, name in enumerate(self.names()):
            lines += ["[providers.%s]" % name, 'base_url = "%s"' % self.fakes.base_url(self, name),
                      # a short timeout for the faulty one keeps hangs short; the healthy one has room
                      'timeout = "%s"' % ("1s" if name == self.provider else "10s"), 'connect_timeout = "2s"']
            if name != "stooq":
                self.keys[name] = key = "%s-key-%03d-%s" % (name, self.n, "9f3ac1e07b")
                if (self.n + i) % 2:  # both ways of giving a key, each mode 0600
                    lines.append('api_key = "%s"' % key)
                else:
                    path = os.path.join(self.dir, "keys", name + ".key")
                    write(path, key + "\n", 0o600)
                    lines.append('api_key_file = "%s"' % path)
            lines.append("")
        route = "fx" if self.symbols is FX else "stocks"
        lines += ["[routing]", "%s = [%s]" % (route, ", ".join('"%s"' % n for n in self.names()))]
        write(self.config, "\n".join(lines) + "\n", 0o600)

    def sql(self, query, args=()):
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def shown_answer(self):
        a = self.last_answer
        if a is None:
            return "the fake %s was not asked" % self.provider
        if a[0] == "redirect":
            return "the fake %s answered HTTP 302 to another address" % self.provider
        if a[0] != "http":
            if a[0] == "drop":
                return "the fake %s closed the connection without an answer" % self.provider
            if a[1] is None:
                return "the fake %s did not answer (hung %d s, then closed)" % (self.provider, HANG)
            return "the fake %s sent HTTP 200, Content-Length %d and %d bytes of the body, then %s for %d s: %r" % (
                self.provider, len(a[1]), len(a[1]) // 2, "one byte every 0.5 s" if self.fault == "hang-drip"
                else "nothing", HANG, a[1][: len(a[1]) // 2][:80])
        hdr = "".join(" %s: %s;" % kv for kv in a[2].items() if kv[0] != "Content-Type")
        return "the fake %s answered HTTP %d;%s %r" % (self.provider, a[1], hdr, a[3][:160])


# ---------------------------------------------------------------------------
# notify/* cases (issue 20): numbers from an OAuth grant and from receivers

NOTIFY_FAULTS = {  # fault -> (channel type, delivery status after the first notify, its exit, seconds clamped to)
    "fcm-expires-in-huge": ("fcm", "sent", 0, 86400),
    "fcm-retry-after-huge": ("fcm", "retry", 75, 86400),
    "webhook-retry-after-huge": ("webhook", "retry", 75, 86400),
    "fcm-redirect": ("fcm", "retry", 75, None),
    "webhook-redirect": ("webhook", "retry", 75, None),
}


class NotifyCase:
    provider = "notify"

    def __init__(self, n, fault, root, fakes, key_pem):
        self.n, self.fault, self.name = n, fault, "notify/%s" % fault
        self.channel, self.status, self.exit, self.clamp = NOTIFY_FAULTS[fault]
        self.lock = threading.Lock()
        self.requests, self.followed = {}, []
        self.key_pem = key_pem
        place_case(self, root, n)
        fakes.cases[n] = self
        self.base = "http://127.0.0.1:%d/c%d" % (fakes.server.server_address[1], n)

    def setup(self, binary, timeout):
        for d in ("home", "config/stockwatch", "state", "tmp", "keys"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        lines = ["[alerts]", 'default_notify = ["ch"]', "[channels.ch]", 'type = "%s"' % self.channel, 'timeout = "2s"']
        if self.channel == "fcm":
            sa = os.path.join(self.dir, "keys", "service-account.json")
            write(sa, json.dumps({"type": "service_account", "project_id": "demo-project", "private_key_id": "k1",
                                  "private_key": self.key_pem, "client_email": "sw@demo-project.iam.gserviceaccount.com",
                                  "token_uri": self.base + "/token"}), 0o600)
            lines += ['service_account_file = "%s"' % sa, 'api_base_url = "%s/fcm"' % self.base]
        else:
            secret = os.path.join(self.dir, "keys", "hook.secret")
            write(secret, "whsec_" + base64.b64encode(os.urandom(32)).decode(), 0o600)
            lines += ['url = "%s/hook"' % self.base, 'secret_file = "%s"' % secret]
        write(self.config, "\n".join(lines) + "\n", 0o600)
        feed = os.path.join(self.dir, "quotes.csv")
        write(feed, "AAPL,2,%d\n" % (int(time.time()) - 5), 0o600)
        for argv in (["user", "add", "alice"], ["device", "add", "--user", "alice", "--fcm-token", "tok-%d" % self.n],
                     ["alert", "add", "AAPL", "--above", "1", "--user", "alice"], ["fetch", "--from", feed], ["evaluate"]):
            r = run(binary, argv, self.env, self.dir, timeout * 6)
            if r.rc != 0:
                raise OSError("%s: exit %s: %s" % (" ".join(argv), r.rc, first_line(r.stderr)))

    def sql(self, query, args=()):
        return Case.sql(self, query, args)


def run_notify_case(case, binary, checks, a):
    o = (case.fault, case.n * 2)
    try:
        case.setup(binary, a.timeout)
    except OSError as e:
        checks.check("setup", False, o, "%s: %s" % (case.name, e))
        return
    checks.check("setup", True, o, "")
    r = run(binary, ["notify"], case.env, case.dir, a.timeout * 6)
    r2 = run(binary, ["notify"], case.env, case.dir, a.timeout * 6)
    head = "python3 Scripts/reliability_faults.py --only '%s' --keep   # stockwatch notify, twice\n      exit %s then %s; stderr: %s" % (
        case.name, r.rc, r2.rc, first_line(r.stderr))
    probs = []
    # a retry after a redirect may be due again at once (jittered backoff): 75 is fine then
    if r.rc != case.exit or r2.rc not in ((0,) if case.clamp else (0, 75)):
        probs.append("expected exit %d, then 0" % case.exit)
    rows = case.sql("SELECT status, next_attempt_at FROM deliveries")
    if [row[0] for row in rows] != [case.status]:
        probs.append("deliveries %r, expected one %s" % (rows, case.status))
    if case.clamp:
        if case.fault == "fcm-expires-in-huge":
            row = case.sql("SELECT expires_at FROM access_tokens")
            when = row[0][0] / 1000 if row else None
        else:
            when = rows[0][1] / 1000 if rows else None
        if when is None or not (r.started + case.clamp - 2 <= when <= r.started + r.seconds + case.clamp + 2):
            probs.append("stored time %r, expected about %d s after the run" % (when, case.clamp))
    if case.followed:
        probs.append("the redirect was followed: %s" % "; ".join(case.followed[:3]))
    if r.timed_out or r2.timed_out:
        probs.append("notify was killed after %.0f s" % r.seconds)
    checks.check("notify-clamped", not probs, o, head + "\n      " + "; ".join(probs))


def write(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Result:
    __slots__ = ("rc", "stdout", "stderr", "timed_out", "seconds", "started")


def run(binary, argv, env, cwd, timeout):
    res = Result()
    res.started = time.time()
    p = subprocess.Popen([binary] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    try:
        res.stdout, res.stderr = p.communicate(timeout=timeout)
        res.timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        res.stdout, res.stderr = p.communicate()
        res.timed_out = True
    res.rc = p.returncode
    res.seconds = time.time() - res.started
    return res


class Checks:
    """Counts per check, and the failures with their reproduction text."""

    def __init__(self):
        self.lock = threading.Lock()
        self.runs, self.fails = {}, {}

    def check(self, name, ok, order, text):
        with self.lock:
            self.runs[name] = self.runs.get(name, 0) + 1
            if not ok:
                self.fails.setdefault(name, []).append((order, text))
        return ok


def next_reset(now):
    """README: quota_reset default 1: the 1st of the next month, 00:00 UTC."""
    d = datetime.fromtimestamp(now, timezone.utc)
    first = datetime(d.year, d.month, 1, tzinfo=timezone.utc)
    if first <= d:
        first = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=timezone.utc)
    return first.timestamp()


def first_line(b):
    line = (b.strip().split(b"\n") or [b""])[0].decode("utf-8", "replace")
    line = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in line)
    return line[:300] or "(empty)"


# ---------------------------------------------------------------------------
# The checks of one case

def expected_exit(case, second):
    if second:
        return 0  # README: "... or was skipped by its budget"
    if case.kind == "config":
        return 78
    if case.mode == "failover" or case.kind == "healthy":
        return 0
    return 75 if case.kind == "partial" else 69


def check_run(case, r, second, checks, a):
    c, o = checks, (case.fault, case.n * 2 + second)  # examples: one per fault first
    cmd = "stockwatch fetch %s" % " ".join(case.symbols)
    head = "python3 Scripts/reliability_faults.py --only '%s' --keep   # %s%s\n      %s\n      exit %s%s; stderr: %s" % (
        case.name, cmd, " (the second, immediate run)" if second else "", case.shown_answer(), r.rc,
        " (killed after %.0f s)" % r.seconds if r.timed_out else "", first_line(r.stderr))
    run_ms = r.started * 1000
    rows = case.sql("SELECT symbol, price, provider, observed_at, fetched_at FROM quotes ORDER BY id")

    # invalid-stored: README's rules, plus anything the faulty provider served for a faulted symbol
    bad = []
    for sym, price, prov, obs, fetched in rows:
        why = None
        if price is None or not (0 < price < 1e15) or math.isnan(price):
            why = "price %r" % price
        elif obs > fetched + 300_000:
            why = "observed %d s after it was fetched" % ((obs - fetched) // 1000)
        elif obs < fetched - MAX_AGE * 1000:
            why = "older than max_age"
        elif prov == case.provider and sym in case.faulted:
            why = "served by the faulty %s" % prov
        elif abs(price / healthy_price(prov, sym) - 1) > 1e-9:
            why = "not the price %s served (%r)" % (prov, healthy_price(prov, sym))
        if why:
            bad.append("%s %r from %s at %s: %s" % (sym, price, prov, time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(obs / 1000)), why))
    c.check("invalid-stored", not bad, o, head + "\n      stored: " + "; ".join(bad))

    if case.kind == "healthy":
        # the exact values and times, and a healthy first provider is enough
        fresh = {s: (p, prov, obs) for s, p, prov, obs, f in rows}
        probs = [s for s in case.symbols if s not in fresh or fresh[s][1] != case.provider
                 or not (run_ms - 70_000 <= fresh[s][2] <= run_ms + 1000)]
        if case.requests.get(case.partner):
            probs.append("the second provider %s was asked" % case.partner)
        c.check("baseline", not probs and r.rc == 0, o, head + "\n      wrong: %s; rows %r" % (probs, rows))
    elif case.mode == "failover":
        newest = {}
        for sym, price, prov, obs, fetched in rows:
            newest[sym] = (prov, price)
        missed = [s for s in case.faulted if newest.get(s, (None,))[0] != case.partner]
        missed += [s for s in case.symbols if s not in newest]
        c.check("failover", not missed, o, head + "\n      not served by %s: %s" % (case.partner, ", ".join(missed)))

    want = expected_exit(case, second)
    c.check("exit-code", r.rc == want, o, head + "\n      expected exit %d (README \"fetch\")" % want)
    c.check("stdout-quiet", r.stdout == b"", o, head + "\n      stdout: %r" % r.stdout[:200])
    if r.rc == 0:
        c.check("quiet-success", r.stderr == b"", o, head)
    else:
        lines = r.stderr.rstrip(b"\n").split(b"\n")
        probs = []
        for line in lines:
            if not line.startswith(PREFIX):
                probs.append("not an error line: %r" % line[:120])
            elif RAW_CONTROL.search(line):
                probs.append("raw control characters: %r" % line[:160])
            elif case.provider.encode() not in line and case.partner.encode() not in line:
                probs.append("names no provider: %r" % line[:160])
        if len(set(lines)) != len(lines):
            probs.append("duplicate lines")
        c.check("error-line", not probs, o, head + "\n      " + "; ".join(probs))
    leaked = [k for k in case.keys.values() if k.encode() in r.stdout + r.stderr]
    c.check("no-secret", not leaked, o, head + "\n      the key %s is printed" % ", ".join(leaked))
    c.check("timeout", not r.timed_out and r.seconds <= a.timeout, o,
            head + "\n      took %.1f s (limit %.0f s; the faulty provider's timeout is 1 s)" % (r.seconds, a.timeout))
    return head


def run_case(case, binary, checks, a):
    try:
        case.setup()
    except OSError as e:
        checks.check("setup", False, (case.fault, case.n), "%s: %s" % (case.name, e))
        return
    checks.check("setup", True, (case.fault, case.n), "")
    argv = ["fetch"] + case.symbols
    r = run(binary, argv, case.env, case.dir, a.timeout * 6)
    head = check_run(case, r, False, checks, a)
    if case.budget is not None:
        before = dict(case.requests)
        row = case.sql("SELECT blocked_until FROM provider_state WHERE provider = ?", (case.provider,))
        until = row[0][0] / 1000 if row and row[0][0] is not None else None
        want = next_reset(r.started) if case.budget == "reset" else r.started + case.budget
        ok = until is not None and want - 2 <= until <= want + r.seconds + 2
        r2 = run(binary, argv, case.env, case.dir, a.timeout * 6)
        asked = case.requests.get(case.provider, 0) - before.get(case.provider, 0)
        checks.check("budget-honoured", ok and asked == 0, (case.fault, case.n * 2 + 1), head + "\n      blocked_until %s, expected %s (README \"Budgets\"); the second fetch asked %s %d times" % (
            until and time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(want)), case.provider, asked))
        check_run(case, r2, True, checks, a)
    checks.check("request-format", not case.bad_requests, (case.fault, case.n * 2), head + "\n      " + "; ".join(case.bad_requests[:3]))
    if case.fault == "redirect":
        checks.check("no-redirect", not case.followed, (case.fault, case.n * 2), head + "\n      the redirect was followed: " + "; ".join(case.followed[:3]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("STOCKWATCH_BIN", os.path.join(repo, ".build/release/stockwatch")))
    ap.add_argument("--seed", type=int, default=1, help="shuffles the order the cases run in")
    ap.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 2), help="cases run at once (hangs mostly wait)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds a fetch may take")
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--only", help="run only the cases whose name (PROVIDER/FAULT/MODE) matches this glob")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args()

    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        print("provider-faults: no executable binary at %s" % binary, file=sys.stderr)
        return 2
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="stockwatch-faults-")
    fakes = Fakes()
    checks = Checks()
    cases = []
    for provider in ("fixer", "currencylayer", "finnhub", "stooq"):
        for fault in ["healthy"] + sorted(FAULTS[provider]):
            for mode in ("alone", "failover"):
                name = "%s/%s/%s" % (provider, fault, mode)
                if not a.only or fnmatch.fnmatchcase(name, a.only):
                    cases.append(Case(len(cases), provider, fault, mode, root, fakes))
    notify = [f for f in sorted(NOTIFY_FAULTS) if not a.only or fnmatch.fnmatchcase("notify/" + f, a.only)]
    if notify:
        # one RSA key for every fcm case's service account (nothing checks it but our own JWT signing)
        pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                             check=True, capture_output=True).stdout.decode()
        for f in notify:
            cases.append(NotifyCase(len(cases), f, root, fakes, pem))
    order = list(cases)
    random.Random(a.seed).shuffle(order)
    # the slow hangs first, so they overlap with the rest
    order.sort(key=lambda k: not k.fault.startswith("hang"))
    done = [0]
    lock = threading.Lock()

    def work(case):
        if isinstance(case, NotifyCase):
            run_notify_case(case, binary, checks, a)
        else:
            run_case(case, binary, checks, a)
        if not a.quiet:
            with lock:
                done[0] += 1
                if done[0] % 50 == 0 or done[0] == len(cases):
                    print("provider-faults: %d/%d cases, %.0f s" % (done[0], len(cases), time.monotonic() - started),
                          file=sys.stderr, flush=True)

    try:
        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            for f in [ex.submit(work, k) for k in order]:
                f.result()
    finally:
        fakes.close()
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)

    names = ["setup", "baseline", "request-format", "invalid-stored", "failover", "exit-code", "error-line",
             "stdout-quiet", "quiet-success", "no-secret", "budget-honoured", "timeout", "no-redirect", "notify-clamped"]
    passed = failed = 0
    nprov = {k.provider for k in cases if not isinstance(k, NotifyCase)}
    print()
    print("provider-faults: %d cases (%d faults over %s, alone and with failover); binary %s" % (
        len(cases), len({(k.provider, k.fault) for k in cases if k.fault != "healthy" and not isinstance(k, NotifyCase)}),
        ", ".join(sorted(nprov)), binary))
    if notify:
        print("  and %d notify cases (%s)" % (len(notify), ", ".join(notify)))
    print()
    print("%-16s %8s %8s  %s" % ("CHECK", "CHECKED", "FAILED", "RESULT"))
    for name in names:
        n, fl = checks.runs.get(name, 0), checks.fails.get(name, [])
        ok = not fl and n > 0  # a check that never ran proves nothing
        passed += ok
        failed += not ok
        print("%-16s %8d %8d  %s" % (name, n, len(fl), "pass" if ok else "FAIL"))
    for name in names:
        fl = sorted(checks.fails.get(name, []))
        if fl:
            print()
            faults = {o[0] for o, _ in fl}
            seen, picked = set(), []
            for o, text in fl:  # distinct faults first
                if o[0] not in seen:
                    seen.add(o[0])
                    picked.append(text)
            picked += [t for _, t in fl if t not in picked]
            print("FAIL %s: %d failures, %d distinct faults (%s); examples:" % (
                name, len(fl), len(faults), ", ".join(sorted(faults))))
            for text in picked[: a.examples]:
                print("  $ " + text)
    print()
    print("environment: HOME, STOCKWATCH_DB, XDG_CONFIG_HOME, XDG_STATE_HOME, TMPDIR under %s/NNN-CASE%s" % (
        root, "" if a.keep else " (removed; --keep keeps it, but the fakes stop with this script)"))
    print("provider-faults: %.0f s wall" % (time.monotonic() - started))
    print("provider-faults: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
