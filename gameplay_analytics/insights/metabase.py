"""Provision Metabase from `dashboards/metabase/*.json`: the hot store's database connection
(if asked), each dashboard's questions (cards) and the dashboards with their filters.

The payloads are pure functions of a definition file and the ids Metabase answered with; the
client is a few bounded HTTP calls of Metabase's REST API (v0.47 or later: `PUT
/api/dashboard/:id` with `dashcards`, API keys). Idempotent: a database, card or dashboard is
found by its name first and updated in place, so a second run changes nothing but the
definitions that changed; a dashboard's cards are replaced as a whole (Metabase deletes the
dashcards a `PUT` leaves out, and reuses the ids it is given).
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Final

from gameplay_analytics.insights.stores import InsightsError

__all__ = [
    "DATABASE_PLACEHOLDER",
    "DEFAULT_DATABASE_NAME",
    "Metabase",
    "Provisioned",
    "card_payload",
    "dashcards_payload",
    "database_payload",
    "load_dashboards",
    "provision",
]

DATABASE_PLACEHOLDER: Final = "{{analytics_database_id}}"
"""Where a definition's card names its database; replaced by the Metabase id."""
DEFAULT_DATABASE_NAME: Final = "gameplay-analytics hot store"
TIMEOUT_S: Final = 30.0
"""Bound on one Metabase API call."""


@dataclasses.dataclass(frozen=True, slots=True)
class Provisioned:
    """What a run did: the database id, and per dashboard its id and its cards' ids."""

    database_id: int
    database_created: bool
    dashboards: dict[str, int]
    cards: dict[str, int]
    created: list[str]
    updated: list[str]


def load_dashboards(folder: Path) -> list[dict[str, Any]]:
    """The dashboard definitions in `folder`, by file name; refused if none or malformed."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InsightsError(f"no dashboard definitions (*.json) in {folder}")
    boards = []
    for path in files:
        try:
            board = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InsightsError(f"{path}: not a dashboard definition ({err})") from None
        if not isinstance(board, dict) or not board.get("name") or "cards" not in board:
            raise InsightsError(f"{path}: a dashboard needs a name and cards")
        boards.append(board)
    return boards


def database_payload(name: str, dsn: str) -> dict[str, Any]:
    """`POST /api/database` for the hot store at `dsn` (postgresql://user:pw@host:port/db)."""
    url = urllib.parse.urlsplit(dsn)
    if url.scheme not in ("postgres", "postgresql") or not url.hostname:
        raise InsightsError(f"--dsn must be postgresql://user:password@host:port/db, not {dsn!r}")
    details = {
        "host": url.hostname,
        "port": url.port or 5432,
        "dbname": url.path.lstrip("/") or "postgres",
        "user": urllib.parse.unquote(url.username or ""),
        "password": urllib.parse.unquote(url.password or ""),
        "ssl": "sslmode=require" in url.query,
        "schema-filters-type": "inclusion",
        "schema-filters-patterns": "analytics_mart",
    }
    return {"engine": "postgres", "name": name, "details": details, "is_full_sync": True}


def card_payload(
    card: dict[str, Any], *, database_id: int, collection_id: int | None
) -> dict[str, Any]:
    """`POST /api/card` (or `PUT /api/card/:id`) of one definition's question."""
    query = json.loads(json.dumps(card["dataset_query"]))
    if query.get("database") == DATABASE_PLACEHOLDER:
        query["database"] = database_id
    return {
        "name": card["name"],
        "display": card.get("display", "table"),
        "visualization_settings": card.get("visualization_settings", {}),
        "dataset_query": query,
        "description": card.get("description"),
        "collection_id": collection_id,
    }


def dashcards_payload(
    board: dict[str, Any], card_ids: dict[str, int], existing: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The `dashcards` of `PUT /api/dashboard/:id`: each definition card at its place, with
    its filters mapped. An existing dashcard of the same card keeps its id; new ones get
    negative ids (Metabase's convention for "create")."""
    reuse = {d.get("card_id"): d["id"] for d in existing if isinstance(d.get("id"), int)}
    out = []
    for n, item in enumerate(board["cards"], 1):
        card_id = card_ids[item["card"]["name"]]
        mappings = [{**m, "card_id": card_id} for m in item.get("parameter_mappings", [])]
        out.append(
            {
                "id": reuse.get(card_id, -n),
                "card_id": card_id,
                "row": item.get("row", 0),
                "col": item.get("col", 0),
                "size_x": item.get("size_x", 12),
                "size_y": item.get("size_y", 6),
                "parameter_mappings": mappings,
                "series": [],
                "visualization_settings": {},
            }
        )
    return out


class Metabase:
    """Metabase's REST API: an API key (`x-api-key`) or a session from user and password."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key
        elif user and password is not None:
            session = self.call("POST", "/api/session", {"username": user, "password": password})
            self._headers["X-Metabase-Session"] = str(session["id"])
        else:
            raise InsightsError("give --api-key, or --user and --password")

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                text = response.read().decode() or "null"
        except urllib.error.HTTPError as err:
            detail = " ".join(err.read().decode(errors="replace").split())[:300]
            raise InsightsError(f"Metabase {method} {path}: HTTP {err.code} {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            raise InsightsError(f"Metabase unreachable at {self.url} ({err})") from None
        return json.loads(text)

    def listed(self, path: str) -> list[dict[str, Any]]:
        """A list endpoint's items (newer versions wrap them in `{"data": [...]}`)."""
        found = self.call("GET", path)
        items = found.get("data", []) if isinstance(found, dict) else found
        return [i for i in items if isinstance(i, dict) and not i.get("archived")]


def _by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get("name") == name), None)


def provision(
    api: Metabase,
    boards: list[dict[str, Any]],
    *,
    database_name: str = DEFAULT_DATABASE_NAME,
    dsn: str | None = None,
    collection_id: int | None = None,
) -> Provisioned:
    """Create or update the database (only with `dsn`), the cards and the dashboards."""
    created: list[str] = []
    updated: list[str] = []
    database = _by_name(api.listed("/api/database"), database_name)
    database_created = False
    if database is None:
        if dsn is None:
            raise InsightsError(
                f"no Metabase database named {database_name!r}: pass --dsn to create it"
            )
        database = api.call("POST", "/api/database", database_payload(database_name, dsn))
        database_created = True
        created.append(f"database {database_name}")
    database_id = int(database["id"])

    existing_cards = api.listed("/api/card?f=all")
    card_ids: dict[str, int] = {}
    for board in boards:
        for item in board["cards"]:
            payload = card_payload(item["card"], database_id=database_id,
                                   collection_id=collection_id)  # fmt: skip
            found = _by_name(existing_cards, payload["name"])
            if found is None:
                card = api.call("POST", "/api/card", payload)
                existing_cards.append(card)
                created.append(f"card {payload['name']}")
            else:
                card = api.call("PUT", f"/api/card/{found['id']}", payload)
                updated.append(f"card {payload['name']}")
            card_ids[payload["name"]] = int(card["id"])

    existing_boards = api.listed("/api/dashboard")
    dashboards: dict[str, int] = {}
    for board in boards:
        found = _by_name(existing_boards, board["name"])
        if found is None:
            found = api.call("POST", "/api/dashboard", {
                "name": board["name"], "description": board.get("description"),
                "parameters": board.get("parameters", []), "collection_id": collection_id,
            })  # fmt: skip
            created.append(f"dashboard {board['name']}")
        else:
            updated.append(f"dashboard {board['name']}")
        current = api.call("GET", f"/api/dashboard/{found['id']}")
        api.call("PUT", f"/api/dashboard/{found['id']}", {
            "description": board.get("description"),
            "parameters": board.get("parameters", []),
            "dashcards": dashcards_payload(board, card_ids, current.get("dashcards", [])),
        })  # fmt: skip
        dashboards[board["name"]] = int(found["id"])
    return Provisioned(database_id, database_created, dashboards, card_ids, created, updated)
