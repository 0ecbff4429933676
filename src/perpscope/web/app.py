"""The FastAPI app of ``perpscope serve``: HTML pages and their JSON twins under ``/api/``.

Errors: a :class:`~perpscope.errors.PerpscopeError` (bad parameter, refused or failed query,
missing data) answers 400 with ``{"error": "..."}`` (408 for a query time limit); a malformed
request answers 422 with the same shape. An unexpected failure answers 500 with a fixed message,
never a traceback. Results are cached for a few seconds per URL, so many clients share one
computation while ``perpscope watch`` keeps the store fresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from perpscope.errors import PerpscopeError, QueryError, UsageError
from perpscope.web import html, pages
from perpscope.web.brief_html import brief_html
from perpscope.web.forms import calc_routes
from perpscope.web.values import json_value

if TYPE_CHECKING:
    from perpscope.config import Config
    from perpscope.store.lake import Lake

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
REFRESH_S = 60
CACHE_TTL_S = 15.0


class _Cache:
    """Results per key for ``ttl`` seconds. A stale result is served while one thread computes
    the fresh one, so clients never queue behind a refresh; only a first request waits."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.items: dict[str, tuple[float, Any]] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.refreshing: set[str] = set()
        self.guard = threading.Lock()

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        with self.guard:
            lock = self.locks.setdefault(key, threading.Lock())
            hit = self.items.get(key)
            if hit is not None and time.monotonic() - hit[0] >= self.ttl:
                if key not in self.refreshing:
                    self.refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
                return hit[1]
        if hit is not None:
            return hit[1]
        with lock:
            hit = self.items.get(key)
            if hit is not None:
                return hit[1]
            value = compute()
            self.items[key] = (time.monotonic(), value)
            return value

    def _refresh(self, key: str, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
            with self.guard:
                self.items[key] = (time.monotonic(), value)
        except Exception:  # the next request computes again and reports the error
            with self.guard:
                self.items.pop(key, None)
        finally:
            with self.guard:
                self.refreshing.discard(key)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(lake: Lake, config: Config) -> FastAPI:
    """The dashboard over ``lake``; ``config`` gives the SQL workbench its limits."""
    app = FastAPI(title="perpscope", docs_url=None, redoc_url=None, openapi_url=None)
    cache = _Cache(CACHE_TTL_S)

    @app.exception_handler(PerpscopeError)
    async def _perpscope_error(request: Request, exc: PerpscopeError) -> Response:
        status = 408 if isinstance(exc, QueryError) and "time limit" in str(exc) else 400
        if request.url.path.startswith("/api/"):
            return _error(status, str(exc))
        body = f'<p class="error">{escape(str(exc))}</p>'
        return HTMLResponse(_wrap(lake, "Error", body, request.url.path), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        parts = [
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x not in ('query', 'body'))}: "
            f"{e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return _error(422, "bad request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    def page(key: str, build: Callable[[], pages.Page]) -> pages.Page:
        return cache.get(key, build)  # type: ignore[no-any-return]

    def api(p: pages.Page) -> JSONResponse:
        return JSONResponse(
            {
                "page": p.key,
                "simulated": pages.simulated(lake),
                "notes": p.notes,
                "data": json_value(p.data),
            }
        )

    def render(p: pages.Page, path: str, extra: str = "") -> HTMLResponse:
        return HTMLResponse(_wrap(lake, p.title, html.page_html(p, extra), path, REFRESH_S))

    routes: dict[str, Callable[..., pages.Page]] = {
        "funding": lambda asset=None: page(
            f"funding:{asset}", lambda: pages.funding_page(lake, asset)
        ),
        "oi": lambda asset=None: page(f"oi:{asset}", lambda: pages.oi_page(lake, asset)),
        "cvd": lambda asset=None: page(f"cvd:{asset}", lambda: pages.cvd_page(lake, asset)),
        "basis": lambda asset=None: page(f"basis:{asset}", lambda: pages.basis_page(lake, asset)),
    }
    for name, build in routes.items():
        _register_asset_page(app, name, build, api, render)

    @app.get("/api/liquidations")
    def api_liquidations(venue: str | None = None, instrument: str | None = None) -> Response:
        return api(page(f"liq:{venue}:{instrument}", _liq(lake, venue, instrument)))

    @app.get("/liquidations", response_class=HTMLResponse)
    def liquidations(venue: str | None = None, instrument: str | None = None) -> Response:
        return render(
            page(f"liq:{venue}:{instrument}", _liq(lake, venue, instrument)), "/liquidations"
        )

    @app.get("/api/options")
    def api_options(
        venue: str | None = None, underlying: str = "BTC", expiry: date | None = None
    ) -> Response:
        key = f"opt:{venue}:{underlying}:{expiry}"
        return api(page(key, _opt(lake, venue, underlying, expiry)))

    @app.get("/options", response_class=HTMLResponse)
    def options(
        venue: str | None = None, underlying: str = "BTC", expiry: date | None = None
    ) -> Response:
        key = f"opt:{venue}:{underlying}:{expiry}"
        return render(page(key, _opt(lake, venue, underlying, expiry)), "/options")

    @app.get("/api/signals")
    def api_signals() -> Response:
        return api(page("signals", lambda: pages.signals_page(lake)))

    @app.get("/signals", response_class=HTMLResponse)
    def signals() -> Response:
        return render(page("signals", lambda: pages.signals_page(lake)), "/signals")

    @app.get("/api/brief")
    def api_brief(assets: str | None = None) -> Response:
        wanted = _assets(assets)
        p = page(f"brief:{wanted}", lambda: pages.overview_page(lake, wanted))
        return JSONResponse({"command": "brief", **p.data})  # as `perpscope brief --format json`

    @app.get("/", response_class=HTMLResponse)
    def overview(assets: str | None = None) -> Response:
        wanted = _assets(assets)
        p = page(f"brief:{wanted}", lambda: pages.overview_page(lake, wanted))
        return HTMLResponse(_wrap(lake, "Overview", brief_html(p), "/", REFRESH_S))

    calc_routes(app, lake, lambda title, body, path: _wrap(lake, title, body, path))
    _sql_routes(app, lake, config)

    @app.get("/static/plotly.min.js")
    def plotly_js() -> Response:
        return FileResponse(_plotly_js(), media_type="application/javascript")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        files = {"app.css": "text/css", "app.js": "application/javascript"}
        if name not in files:
            return _error(404, f"no static file {name!r}")
        return FileResponse(STATIC / name, media_type=files[name])

    return app


def _assets(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    names = [a.strip().upper() for a in text.split(",") if a.strip()]
    for a in names:
        if not a.isalnum() or len(a) > 20:
            raise UsageError(f"bad asset {a!r}: use assets like BTC,ETH")
    return names


def _liq(lake: Lake, venue: str | None, instrument: str | None) -> Callable[[], pages.Page]:
    return lambda: pages.liquidations_page(lake, venue, instrument)


def _opt(
    lake: Lake, venue: str | None, underlying: str, expiry: date | None
) -> Callable[[], pages.Page]:
    if not underlying.isalnum() or (venue is not None and not venue.isalnum()):
        raise UsageError(f"bad options venue or underlying {venue!r} {underlying!r}")
    wanted = venue.lower() if venue else None
    return lambda: pages.options_page(lake, wanted, underlying.upper(), expiry)


def _wrap(lake: Lake, title: str, body: str, path: str, refresh: int | None = None) -> str:
    return html.layout(title, body, simulated=pages.simulated(lake), active=path, refresh_s=refresh)


def _register_asset_page(
    app: FastAPI,
    name: str,
    build: Callable[..., pages.Page],
    api: Callable[[pages.Page], JSONResponse],
    render: Callable[..., HTMLResponse],
) -> None:
    def api_view(asset: str | None = None) -> Response:
        return api(build(_one_asset(asset)))

    def html_view(asset: str | None = None) -> Response:
        return render(build(_one_asset(asset)), f"/{name}")

    app.add_api_route(f"/api/{name}", api_view, methods=["GET"])
    app.add_api_route(f"/{name}", html_view, methods=["GET"], response_class=HTMLResponse)


def _one_asset(asset: str | None) -> str | None:
    names = _assets(asset)
    if names is not None and len(names) != 1:
        raise UsageError("give one asset, like asset=BTC")
    return names[0] if names else None


def _sql_routes(app: FastAPI, lake: Lake, config: Config) -> None:
    from perpscope.web.forms import sql_html, sql_result

    @app.get("/api/sql")
    def api_sql(q: str) -> Response:
        return JSONResponse(sql_result(lake, config, q))

    @app.get("/sql", response_class=HTMLResponse)
    def sql_page(q: str | None = None) -> Response:
        body, status = sql_html(lake, config, q)
        return HTMLResponse(
            html.layout(
                "SQL workbench",
                body,
                simulated=pages.simulated(lake),
                active="/sql",
                refresh_s=None,
            ),
            status_code=status,
        )
