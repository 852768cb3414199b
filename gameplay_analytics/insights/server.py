"""`insights serve`: the page over the same metrics core, live, with slice pickers and dates.

One route, `GET /?from=…&to=…&by=class&by=region&window=7`: each request computes every
metric off the event loop (the stores are blocking) and renders `page.render_page` with
inline SVG charts. A bad parameter is a 400 with one line; an unreachable store a 503.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from aiohttp import web

from gameplay_analytics.insights import core, page, plot
from gameplay_analytics.insights.stores import InsightsError, Store

__all__ = ["build_app", "compute_page"]


def compute_page(store: Store, params: core.Params, *, live: bool) -> str:
    """Every metric of the page on `store`, rendered (charts inline as SVG when live)."""
    results = [core.compute(metric, store, params) for metric in page.PAGE_METRICS]
    charts = {r.metric: plot.svg_of(r) for r in results}
    return page.render_page(results, params=params, charts=charts, live=live)


def build_app(open_store: Callable[[], Store], *, store_name: str) -> web.Application:
    """The aiohttp application; `open_store` gives a fresh store per request."""

    async def index(request: web.Request) -> web.Response:
        try:
            params = _params(request, store_name)
        except (InsightsError, ValueError) as err:
            return web.Response(status=400, text=f"bad request: {err}\n")

        def run() -> str:
            store = open_store()
            try:
                return compute_page(store, params, live=True)
            finally:
                store.close()

        try:
            text = await asyncio.to_thread(run)
        except InsightsError as err:
            return web.Response(status=503, text=f"{err}\n")
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    return app


def _params(request: web.Request, store_name: str) -> core.Params:
    query = request.query
    by = tuple(d for value in query.getall("by", []) for d in value.split(",") if d)

    def day(name: str) -> dt.date | None:
        text = query.get(name, "")
        return dt.date.fromisoformat(text) if text else None

    window = query.get("window", "")
    return core.Params(
        store=store_name,
        date_from=day("from"),
        date_to=day("to"),
        by=by,
        window=int(window) if window else core.DEFAULT_WINDOW_DAYS,
    )
