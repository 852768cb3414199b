"""A small stand-in for Metabase's REST API (v0.47+), for the provisioning tests: it keeps
databases, cards and dashboards in memory, records every request, and refuses what Metabase
would refuse (no session or key, a card on an unknown database, a dashcard of an unknown card,
a filter mapping to a parameter the dashboard lacks). It is not Metabase: it checks the shape
of the calls, not what Metabase renders."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from tests.insights.standin import JsonStandIn, Refused, need

__all__ = ["MetabaseStandIn"]

USER, PASSWORD, API_KEY = "admin@example.com", "s3cret", "mb_test_key"


class MetabaseStandIn(JsonStandIn):
    def __init__(self) -> None:
        super().__init__()
        self.databases: dict[int, dict[str, Any]] = {}
        self.cards: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._sessions: set[str] = set()

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]

    # -- the API -------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: Any, raw: bytes
    ) -> Any:
        body = json.loads(raw) if raw else None
        if (method, path) == ("POST", "/api/session"):
            if body != {"username": USER, "password": PASSWORD}:
                raise Refused(401, "Password did not match stored password.")
            token = f"session-{next(self._ids)}"
            self._sessions.add(token)
            return {"id": token}
        if headers.get("x-api-key") != API_KEY and (
            headers.get("X-Metabase-Session") not in self._sessions
        ):
            raise Refused(401, "Unauthenticated")
        route = re.fullmatch(r"/api/(\w+)(?:/(\d+))?", path)
        need(route, f"no route {path}")
        assert route is not None
        kind, ident = route.group(1), int(route.group(2)) if route.group(2) else None
        table = {"database": self.databases, "card": self.cards, "dashboard": self.dashboards}
        need(kind in table, f"no route {path}")
        items = table[kind]
        if method == "GET" and ident is None:
            listed = list(items.values())
            return {"data": listed, "total": len(listed)} if kind == "database" else listed
        if method == "GET":
            return self._get(items, ident)
        if method == "POST" and ident is None:
            getattr(self, f"_check_{kind}")(body)
            item = {**body, "id": next(self._ids), "archived": False}
            if kind == "dashboard":
                item["dashcards"] = []
            items[item["id"]] = item
            return item
        if method == "PUT" and ident is not None:
            item = self._get(items, ident)
            if kind == "card":
                self._check_card(body)
                item.update(body)
            else:
                self._put_dashboard(item, body)
            return item
        raise Refused(405, f"{method} {path}")

    def _get(self, items: dict[int, dict[str, Any]], ident: int | None) -> dict[str, Any]:
        if ident not in items:
            raise Refused(404, "Not found.")
        return items[ident]

    def _check_database(self, body: Any) -> None:
        need(body.get("engine") == "postgres", "engine")
        need(isinstance(body.get("name"), str) and body["name"], "name")
        details = body.get("details")
        need(isinstance(details, dict), "details")
        for key in ("host", "port", "dbname", "user"):
            need(details.get(key), f"details.{key}")

    def _check_card(self, body: Any) -> None:
        need(isinstance(body.get("name"), str) and body["name"], "name")
        need(isinstance(body.get("display"), str), "display")
        need(isinstance(body.get("visualization_settings"), dict), "visualization_settings")
        query = body.get("dataset_query")
        need(isinstance(query, dict) and query.get("type") == "native", "dataset_query")
        need(query["database"] in self.databases, f"unknown database {query['database']!r}")
        native = query.get("native", {})
        need(isinstance(native.get("query"), str), "native.query")
        for tag, spec in native.get("template-tags", {}).items():
            need(spec.get("name") == tag and spec.get("type") and spec.get("id"), "template tag")

    def _check_dashboard(self, body: Any) -> None:
        need(isinstance(body.get("name"), str) and body["name"], "name")
        self._check_parameters(body.get("parameters", []))

    def _check_parameters(self, parameters: Any) -> None:
        need(isinstance(parameters, list), "parameters")
        for p in parameters:
            need(p.get("id") and p.get("slug") and p.get("type"), "parameter")

    def _put_dashboard(self, board: dict[str, Any], body: Any) -> None:
        if "parameters" in body:
            self._check_parameters(body["parameters"])
            board["parameters"] = body["parameters"]
        if "description" in body:
            board["description"] = body["description"]
        if "dashcards" not in body:
            return
        ids = {p["id"] for p in board["parameters"]}
        mine = {d["id"] for d in board["dashcards"]}
        kept = []
        for dashcard in body["dashcards"]:
            need(isinstance(dashcard.get("id"), int), "dashcard id")
            need(dashcard["id"] < 0 or dashcard["id"] in mine, "dashcard of another dashboard")
            need(dashcard.get("card_id") in self.cards, "dashcard of an unknown card")
            for key in ("row", "col", "size_x", "size_y"):
                need(isinstance(dashcard.get(key), int), f"dashcard {key}")
            for m in dashcard.get("parameter_mappings", []):
                need(m.get("parameter_id") in ids, f"mapping to unknown {m.get('parameter_id')}")
                need(m.get("card_id") == dashcard["card_id"], "mapping of another card")
                need(isinstance(m.get("target"), list), "mapping target")
            new = dict(dashcard)
            if new["id"] < 0:
                new["id"] = next(self._ids)
            kept.append(new)
        board["dashcards"] = kept  # the ones left out are deleted, as Metabase does
