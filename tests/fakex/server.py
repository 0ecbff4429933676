"""A fake Binance (USDⓈ-M + spot klines), Bybit (v5 linear, :mod:`tests.fakex.bybit`), OKX (v5
swaps, :mod:`tests.fakex.okx`) and Deribit (API v2, :mod:`tests.fakex.deribit`) on 127.0.0.1, for
the real ccxt client. Paths under ``/v5/`` are Bybit's, with Bybit's IP limit (600 requests / 5 s,
overrun = HTTP 403 and a 10-minute ban); paths under ``/api/v5/`` are OKX's, with OKX's
per-endpoint limits (requests per 2 s, overrun = HTTP 429 ``50011``); paths under
``/api/v2/public/`` are Deribit's, with its credit pool (500 credits a request, 50,000 refilled at
10,000/s, overrun = HTTP 429 with JSON-RPC error 10028); the rest are Binance's.

The server answers every endpoint perpscope's Binance module and ccxt's ``load_markets`` call,
with Binance's pagination semantics (``startTime``/``endTime`` inclusive, ascending rows, at most
``limit`` rows, documented defaults and maxima; an over-limit request is refused with Binance's
``-1130``). Static payloads (``exchangeInfo``, ``fundingInfo``) come from
``tests/fixtures/binance/``; history comes from :class:`fakex.market.FakeMarket`.

Rate limits are kept as Binance keeps them (``research/anchors.md`` D.1, ccxt's Binance cost
table): every USDⓈ-M request draws its documented weight from the IP's request-weight budget
(2,400 a rolling minute; klines by ``limit``: under 100 rows 1, under 500 rows 2, up to 1,000 rows
5, more 10; ``exchangeInfo``, ``premiumIndex``, ``openInterest``, ``time`` 1; ``fundingRate`` and
``fundingInfo`` 0 but 500 requests per 5 minutes between them; each ``futures/data/*`` endpoint 0
but 1,000 requests per 5 minutes); spot requests draw from the spot budget (6,000 a minute;
``klines`` 2, ``exchangeInfo`` 20). Every answer carries ``X-MBX-USED-WEIGHT-1m``. A request that
would overrun a budget gets HTTP 429 (``-1003``) with ``Retry-After`` (whole seconds until enough
weight has left the window) and weighs nothing; a request that arrives while a 429's
``Retry-After`` is still running is a repeated overrun and gets HTTP 418, an IP ban of
``ban_s`` seconds, with ``Retry-After``; every request during a ban gets 418 too. Tests shrink a
budget (:meth:`FakeBinance.set_budget`) so that overrunning it takes a handful of requests.

Binance's errors for bad requests are kept too: an unknown symbol gets HTTP 400 ``-1121 Invalid
symbol.``, and a ``futures/data/*`` request whose ``startTime`` is older than the 30 days those
endpoints keep gets HTTP 400 ``-1130`` naming ``startTime`` (instead of a silently clamped page).

Faults are injected on demand (:meth:`FakeBinance.inject`): ``429`` and ``418`` with
``Retry-After``, ``5xx``, ``timeout`` (the answer comes after the client gave up), ``truncated``
JSON, ``rename`` (a field renamed in every row), ``missing_page`` (the page's rows are replaced
by the following page: a hole in the history), ``enum`` (a field of the first row, or of
``symbols[0]``, set to an unknown value), and ``hang`` (the answer waits until
:meth:`FakeBinance.release`). Every request is logged in arrival order, with its status and
whether it arrived while an earlier 429/418's ``Retry-After`` was still running (``early``), so
tests judge the client's waiting by the fake's log rather than by their own clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.fakex import bybit, deribit, okx
from tests.fakex.market import END_MS, LISTING_MS, STATS_START_MS, FakeMarket

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"

_KLINES = {
    "/fapi/v1/klines": ("trade", 500, 1500),
    "/fapi/v1/markPriceKlines": ("mark", 500, 1500),
    "/fapi/v1/indexPriceKlines": ("index", 500, 1500),
    "/fapi/v1/premiumIndexKlines": ("premium", 500, 1500),
    "/api/v3/klines": ("trade", 500, 1000),
}
_STATS = (
    "openInterestHist",
    "globalLongShortAccountRatio",
    "topLongShortAccountRatio",
    "topLongShortPositionRatio",
    "takerlongshortRatio",
)
_STATIC = {
    "/fapi/v1/exchangeInfo": "fapi_v1_exchangeInfo.json",
    "/api/v3/exchangeInfo": "api_v3_exchangeInfo.json",
    "/fapi/v1/fundingInfo": "fapi_v1_fundingInfo.json",
}


_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
BINANCE_SECRET = "fake-secret"
"""The secret the fake checks ``/fapi/v1/leverageBracket`` signatures with (HMAC-SHA256)."""
BRACKETS = (  # bracket, initialLeverage, notionalFloor, notionalCap, maintMarginRatio, cum
    (1, 125, 0, 50_000, 0.004, 0.0),
    (2, 100, 50_000, 600_000, 0.005, 50.0),
    (3, 75, 600_000, 3_000_000, 0.0065, 950.0),
)
"""cum = previous cum + floor x the rise in rate: 50,000 x 0.001 = 50; 50 + 600,000 x 0.0015."""
_TOO_OLD = {"code": -1130, "msg": "Data sent for paramter 'startTime' is not valid."}
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1m"


@dataclass
class Budget:
    """A rolling-window budget: at most ``limit`` weight in any ``window_s`` seconds."""

    limit: float
    window_s: float
    spent: deque[tuple[float, float]] = field(default_factory=deque)

    def used(self, now: float) -> float:
        """Weight spent in the window ending at ``now``."""
        while self.spent and self.spent[0][0] <= now - self.window_s:
            self.spent.popleft()
        return sum(w for _, w in self.spent)

    def wait_s(self, now: float, weight: float) -> float:
        """Seconds from ``now`` until ``weight`` more fits in the window."""
        total, wait = self.used(now), 0.0
        for t, w in self.spent:  # oldest first: the order in which weight leaves the window
            if total + weight <= self.limit:
                break
            total -= w
            wait = t + self.window_s - now
        return wait if total + weight <= self.limit else self.window_s


def request_weight(path: str, q: dict[str, str]) -> list[tuple[str, float]]:
    """The budgets a request draws from and its weight in each, as Binance documents them."""
    if path.startswith("/api/"):
        if path == "/api/v3/klines":
            return [("spot_weight", 2.0)]
        return [("spot_weight", 20.0 if path.endswith("exchangeInfo") else 1.0)]
    if path in _KLINES:
        limit = int(q.get("limit", "500"))
        return [("weight", 1.0 if limit < 100 else 2.0 if limit < 500 else 5.0 if limit <= 1000
                 else 10.0)]  # fmt: skip
    if path in ("/fapi/v1/fundingRate", "/fapi/v1/fundingInfo"):
        return [("weight", 0.0), ("funding", 1.0)]
    if path.startswith("/futures/data/"):
        return [("weight", 0.0), (f"futures_data:{path.rsplit('/', 1)[-1]}", 1.0)]
    return [("weight", 1.0)]


def _default_budgets() -> dict[str, Budget]:
    return {
        "bybit_ip": Budget(bybit.LIMIT, bybit.WINDOW_S),
        "weight": Budget(2400, 60.0),
        "spot_weight": Budget(6000, 60.0),
        "funding": Budget(500, 300.0),
    }


@dataclass
class Fault:
    """A fault to inject on requests whose path ends with ``path``.

    Attributes:
        path: request path suffix (``fundingRate``, ``/fapi/v1/klines``).
        kind: ``429 | 418 | 500 | 502 | 503 | timeout | truncated | rename | missing_page | enum |
            hang``, Bybit's ``10006`` (per-endpoint limit: HTTP 200, ``retCode`` 10006), OKX's
            ``50011`` (per-endpoint limit: HTTP 429, ``code`` 50011, no ``Retry-After``) and
            Deribit's ``10028`` (credits exhausted: HTTP 429, JSON-RPC error 10028).
        times: how many matching requests get the fault.
        skip: matching requests to let through first.
        retry_after_s: ``Retry-After`` of 429/418 (negative: no header).
        delay_s: how long ``timeout`` waits before answering.
        field: ``(old, new)`` for ``rename``; ``(name, value)`` for ``enum``.
        symbol: only requests for this ``symbol`` (any when empty).
    """

    path: str
    kind: str
    times: int = 1
    skip: int = 0
    retry_after_s: float = 1.0
    delay_s: float = 3.0
    field: tuple[str, str] = ("", "")
    symbol: str = ""


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    at: float  # time.monotonic() on arrival
    path: str
    params: dict[str, str]
    status: int = 200
    early: bool = False  # arrived while an earlier 429/418's Retry-After was still running


@dataclass
class FakeBinance:
    """The fake exchange: market, faults, overrides and request log."""

    market: FakeMarket = field(default_factory=FakeMarket)
    faults: list[Fault] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    budgets: dict[str, Budget] = field(default_factory=_default_budgets)
    ban_s: float = 120.0
    bybit_ban_s: float = bybit.BAN_S
    bybit_banned_until: float = 0.0
    deribit_credits: deribit.Credits = field(default_factory=deribit.Credits)
    backoff_until: dict[str, float] = field(default_factory=dict)
    banned_until: float = 0.0
    retry_after_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    hung: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def inject(self, fault: Fault) -> None:
        """Add a fault."""
        with self.lock:
            self.faults.append(fault)

    def serve(self, path: str, payload: Any) -> None:
        """Answer ``path`` with ``payload`` verbatim (a fixture), whatever the parameters."""
        self.overrides[path] = payload

    def set_budget(self, name: str, limit: float, window_s: float) -> None:
        """Replace budget ``name`` (``weight``, ``spot_weight``, ``funding``,
        ``futures_data:<endpoint>``) by ``limit`` weight per rolling ``window_s`` seconds."""
        with self.lock:
            self.budgets[name] = Budget(limit, window_s)

    def spend(self, name: str, weight: float) -> None:
        """Spend ``weight`` of budget ``name`` now, as another client on the same IP would."""
        with self.lock:
            self._budget(name).spent.append((time.monotonic(), weight))

    def used_weight(self, name: str = "weight") -> float:
        """Weight of budget ``name`` spent in its current window."""
        with self.lock:
            return self._budget(name).used(time.monotonic())

    def _budget(self, name: str) -> Budget:
        if name not in self.budgets:  # futures/data endpoints: 1,000 requests / 5 min each
            self.budgets[name] = Budget(1000, 300.0)
        return self.budgets[name]

    def admit(self, path: str, q: dict[str, str], now: float) -> tuple[int, float, float]:
        """Charge a request to its budgets: ``(status, retry_after_s, used weight)``.

        ``status`` is 200 when it fits, 429 when it would overrun a budget (it is then charged
        nothing), 418 when the IP is banned or the request repeats an overrun while a 429's
        ``Retry-After`` is still running.
        """
        if path.startswith("/v5/"):
            return self._admit_bybit(now)
        if path.startswith(deribit.PREFIX):  # Deribit's credits: 429 + JSON-RPC 10028
            return (200 if self.deribit_credits.take(now) else 429), 0.0, 0.0
        if path.startswith("/api/v5/"):
            return self._admit_okx(path, now)
        draws = request_weight(path, q)
        header = draws[0][0]  # the IP weight budget the used-weight header reports
        with self.lock:
            if now < self.banned_until:
                return 418, self.banned_until - now, self._budget(header).used(now)
            for name, _ in draws:
                if now < self.backoff_until.get(name, 0.0):
                    self.banned_until = now + self.ban_s
                    return 418, self.ban_s, self._budget(header).used(now)
            for name, w in draws:
                budget = self._budget(name)
                if w and budget.used(now) + w > budget.limit:
                    wait = max(1.0, math.ceil(budget.wait_s(now, w)))
                    self.backoff_until[name] = now + wait
                    return 429, wait, self._budget(header).used(now)
            for name, w in draws:
                if w:
                    self._budget(name).spent.append((now, w))
            return 200, 0.0, self._budget(header).used(now)

    def _admit_bybit(self, now: float) -> tuple[int, float, float]:
        """Bybit's IP limit: an overrun, and every request during the ban after it, gets 403."""
        with self.lock:
            budget = self._budget("bybit_ip")
            if now < self.bybit_banned_until:
                return 403, self.bybit_banned_until - now, budget.used(now)
            if budget.used(now) + 1 > budget.limit:
                self.bybit_banned_until = now + self.bybit_ban_s
                return 403, self.bybit_ban_s, budget.used(now)
            budget.spent.append((now, 1.0))
            return 200, 0.0, budget.used(now)

    def _admit_okx(self, path: str, now: float) -> tuple[int, float, float]:
        """OKX's per-endpoint limit: an overrun gets 429 (not counted); no ban follows."""
        with self.lock:
            name = f"okx:{path}"
            if name not in self.budgets:
                self.budgets[name] = Budget(okx.LIMITS.get(path, 20), okx.WINDOW_S)
            budget = self.budgets[name]
            if budget.used(now) + 1 > budget.limit:
                return 429, -1.0, budget.used(now)
            budget.spent.append((now, 1.0))
            return 200, 0.0, budget.used(now)

    def release(self) -> None:
        """Let ``hang`` faults answer."""
        self.released.set()

    def requests(self, suffix: str = "") -> list[Request]:
        """Logged requests whose path ends with ``suffix``."""
        with self.lock:
            return [r for r in self.log if r.path.endswith(suffix)]

    def _take_fault(self, path: str, symbol: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and path.endswith(f.path) and f.symbol in ("", symbol):
                    if f.skip > 0:
                        f.skip -= 1
                        return None
                    f.times -= 1
                    return f
        return None

    # ------------------------------------------------------------------ routing

    def answer(self, path: str, q: dict[str, str], shift: bool = False) -> tuple[int, Any]:
        """The status and JSON body Binance would send (``shift``: serve the page after)."""
        if path in self.overrides:
            return 200, self.overrides[path]
        if path.startswith("/v5/"):
            return bybit.answer(self.market, path, q)
        if path.startswith(deribit.PREFIX):
            return deribit.answer(path, q)
        if path.startswith("/api/v5/"):
            return okx.answer(self.market, path, q)
        if path in _STATIC:
            return 200, json.loads((FIXTURES / _STATIC[path]).read_text())
        if path in ("/fapi/v1/time", "/api/v3/time"):
            return 200, {"serverTime": END_MS}

        def num(key: str) -> int | None:
            return int(q[key]) if key in q else None

        for key in ("symbol", "pair"):  # Binance refuses symbols it does not list
            if key in q and q[key] not in LISTING_MS:
                return 400, dict(_INVALID_SYMBOL)
        if path == "/fapi/v1/leverageBracket":
            return leverage_bracket(q)
        if path == "/fapi/v1/fundingRate":
            limit = num("limit") or (100 if "startTime" in q else 200)
            if limit > 1000:
                return 400, {"code": -1130, "msg": "Data sent for paramter 'limit' is not valid."}
            rows = self.market.funding_page(q.get("symbol", ""), num("startTime"), num("endTime"),
                                            limit)  # fmt: skip
            if shift and rows:
                rows = self.market.funding_page(
                    q.get("symbol", ""), rows[-1]["fundingTime"] + 1, num("endTime"), limit
                )
            return 200, rows
        if path in _KLINES:
            kind, default, most = _KLINES[path]
            limit = num("limit") or default
            if limit > most:
                return 400, {"code": -1130, "msg": "Data sent for paramter 'limit' is not valid."}
            sym = q.get("pair" if kind == "index" and "fapi" in path else "symbol", "")
            if not sym or "interval" not in q:
                return 400, {"code": -1102, "msg": "Mandatory parameter was not sent."}
            start = num("startTime")
            rows = self.market.kline_page(sym, kind, q["interval"], start, num("endTime"), limit)
            if shift and rows:
                rows = self.market.kline_page(
                    sym, kind, q["interval"], rows[-1][0] + 1, num("endTime"), limit
                )
            return 200, rows
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/futures/data/") and name in _STATS:
            limit = num("limit") or 30
            if limit > 500:
                return 400, {"code": -1130, "msg": "Data sent for paramter 'limit' is not valid."}
            if "period" not in q or ("symbol" not in q):
                return 400, {"code": -1102, "msg": "Mandatory parameter was not sent."}
            if (num("startTime") or STATS_START_MS) < STATS_START_MS:  # older than 30 days
                return 400, dict(_TOO_OLD)
            rows = self.market.stats_page(q["symbol"], name, q["period"], num("startTime"),
                                          num("endTime"), limit)  # fmt: skip
            if shift and rows:
                rows = self.market.stats_page(q["symbol"], name, q["period"],
                                              rows[-1]["timestamp"] + 1, None, limit)  # fmt: skip
            return 200, rows
        if path == "/fapi/v1/premiumIndex":
            rows = self.market.premium_index()
            if "symbol" in q:
                return 200, next(r for r in rows if r["symbol"] == q["symbol"])
            return 200, rows
        if path == "/fapi/v1/openInterest":
            return 200, self.market.open_interest(q.get("symbol", ""))
        return 404, {"code": -1, "msg": f"fake exchange: no route {path}"}


def _rows_of(body: Any) -> list[Any]:
    """The rows of an answer: a Binance list, ``symbols``, or a Bybit envelope's ``result.list``."""
    if isinstance(body, list):
        return body
    if isinstance(body.get("data"), list):  # an OKX envelope
        return list(body["data"])
    result = body.get("result")
    if isinstance(result, dict) and isinstance(result.get("list"), list):
        return list(result["list"])
    if isinstance(result, list):  # Deribit's JSON-RPC result array (and its trades)
        return result
    if isinstance(result, dict) and isinstance(result.get("trades"), list):
        return list(result["trades"])
    return list(body.get("symbols", [body]))


def _apply(fault: Fault, body: Any) -> Any:
    old, new = fault.field
    if fault.kind == "rename":
        rows = _rows_of(body)
        for r in rows:
            if isinstance(r, dict) and old in r:
                r[new] = r.pop(old)
    elif fault.kind == "enum":
        rows = _rows_of(body)
        if rows and isinstance(rows[0], dict):
            rows[0][old] = new
    return body


def _handler(fake: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # silence the default stderr log
            return

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeouts)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            arrived = time.monotonic()
            parts = urlsplit(self.path)
            q = dict(parse_qsl(parts.query))

            early = arrived < fake.retry_after_until

            def log(status: int, retry_after_s: float = -1.0) -> None:
                with fake.lock:
                    fake.log.append(Request(arrived, parts.path, q, status, early))
                    if retry_after_s >= 0:
                        until = arrived + retry_after_s
                        fake.retry_after_until = max(fake.retry_after_until, until)

            admitted, wait, used = fake.admit(parts.path, q, arrived)
            weight = {WEIGHT_HEADER: f"{used:g}"}
            if admitted == 403:  # Bybit's IP ban: plain 403, no Retry-After
                log(admitted, math.ceil(wait))
                body = b"403 Forbidden: access too frequent"
                self._send(403, body, {"Content-Type": "text/plain"})
                return
            deribit_path = parts.path.startswith(deribit.PREFIX)
            if admitted == 429 and deribit_path:  # Deribit: out of credits, no Retry-After
                log(admitted)
                self._send(429, json.dumps(deribit.too_many_requests()).encode())
                return
            if admitted == 429 and parts.path.startswith("/api/v5/"):  # OKX: 50011, no header
                log(admitted)
                self._send(429, json.dumps(okx.RATE_LIMITED).encode())
                return
            if admitted != 200:  # the venue's own rate limiting, before any injected fault
                log(admitted, math.ceil(wait))
                msg = "Too many requests." if admitted == 429 else "IP banned until later."
                payload = json.dumps({"code": -1003, "msg": msg}).encode()
                self._send(admitted, payload, {"Retry-After": f"{math.ceil(wait)}", **weight})
                return
            fault = fake._take_fault(parts.path, q.get("symbol", ""))
            status, body = 200, None
            kind = fault.kind if fault else ""
            if kind in ("429", "418"):
                status = int(kind)
                msg = "Too many requests." if kind == "429" else "IP banned until later."
                payload = json.dumps({"code": -1003, "msg": msg}).encode()
                ra = fault.retry_after_s  # type: ignore[union-attr]
                log(status, ra)
                self._send(status, payload, {"Retry-After": f"{ra:g}", **weight} if ra >= 0
                           else weight)  # fmt: skip
                return
            if kind == "10028":  # Deribit's credit overrun: HTTP 429, JSON-RPC error 10028
                log(429)
                self._send(429, json.dumps(deribit.too_many_requests()).encode())
                return
            if kind == "10006":  # Bybit's per-endpoint limit: HTTP 200, retCode 10006
                log(200)
                body10006 = bybit.envelope({}, 10006, "Too many visits!")
                self._send(200, json.dumps(body10006).encode())
                return
            if kind == "50011":  # OKX's per-endpoint limit as OKX answers it (no Retry-After)
                log(429)
                self._send(429, json.dumps(okx.RATE_LIMITED).encode())
                return
            if kind in ("500", "502", "503"):
                status = int(kind)
                log(status)
                self._send(status, b"<html><body>Service Unavailable</body></html>",
                           {"Content-Type": "text/html"})  # fmt: skip
                return
            status, body = fake.answer(parts.path, q, shift=kind == "missing_page")
            log(status)
            if kind in ("rename", "enum"):
                body = _apply(fault, body)  # type: ignore[arg-type]
            raw = json.dumps(body).encode()
            if kind == "truncated":
                raw = raw[: max(1, len(raw) // 2)]
            if kind == "timeout":
                time.sleep(fault.delay_s)  # type: ignore[union-attr]
            if kind == "hang":
                fake.hung.set()
                fake.released.wait(60)
            self._send(status, raw, weight)

    return Handler


class FakeServer:
    """Runs a :class:`FakeBinance` on 127.0.0.1 in a background thread."""

    def __init__(self, fake: FakeBinance | None = None) -> None:
        self.fake = fake or FakeBinance()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:<port>``)."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeBinance:
        self.thread.start()
        self.fake.url = self.url
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.fake.release()
        self.httpd.shutdown()
        self.httpd.server_close()


def leverage_bracket(q: dict[str, str]) -> tuple[int, Any]:
    """Signed ``/fapi/v1/leverageBracket``: HTTP 400 -1022 unless ``signature`` is the
    HMAC-SHA256 (key :data:`BINANCE_SECRET`) of the query before it, as Binance checks."""
    given = q.get("signature")
    signed = urlencode([(k, v) for k, v in q.items() if k != "signature"])
    want = hmac.new(BINANCE_SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    if given is None or "timestamp" not in q:
        return 400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
    if not hmac.compare_digest(given, want):
        return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
    syms = [q["symbol"]] if "symbol" in q else list(LISTING_MS)
    brackets = [
        {"bracket": b, "initialLeverage": lev, "notionalCap": hi, "notionalFloor": lo,
         "maintMarginRatio": mmr, "cum": cum}
        for b, lev, lo, hi, mmr, cum in BRACKETS
    ]  # fmt: skip
    return 200, [{"symbol": sym, "brackets": brackets} for sym in syms]
