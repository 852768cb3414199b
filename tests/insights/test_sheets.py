"""The feed in Google Sheets (insights/sheets.py): the real gspread and google-auth, a real
signed service-account token request, against a local stand-in of the token, Sheets v4 and
Drive v3 endpoints (tests/insights/sheets_standin.py; gspread's HTTP client class is the one
seam: it sends Google's URLs to the stand-in). Google itself is not called."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gameplay_analytics.insights import core, feed, sheets
from gameplay_analytics.insights.stores import InsightsError, WarmStore
from gameplay_analytics.runtime.storage.objectstore import open_root
from tests.insights.support import cli

gspread = pytest.importorskip("gspread", reason="the sheets extra (gspread) is not installed")

SPREADSHEET = "1FeedSpreadsheetId"
GOOGLE = ("https://sheets.googleapis.com", "https://www.googleapis.com")


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def standin(key_pair: tuple[str, str]) -> Iterator[Any]:
    from tests.insights.sheets_standin import SheetsStandIn

    with SheetsStandIn(key_pair[1], SPREADSHEET) as server:
        yield server


@pytest.fixture
def account(tmp_path: Path, key_pair: tuple[str, str], standin: Any) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "feed", "private_key_id": "k1",
        "private_key": key_pair[0], "client_email": "feed@feed.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{standin.url}/token",
    }))  # fmt: skip
    return path


def _client_for(standin: Any) -> type:
    class ToStandIn(gspread.HTTPClient):  # type: ignore[misc]
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            for google in GOOGLE:
                endpoint = endpoint.replace(google, standin.url)
            return super().request(method, endpoint, *args, **kwargs)

    return ToStandIn


def _feed_tables(warm_root: Path, tmp_path: Path) -> dict[str, Any]:
    where = open_root(str(tmp_path / "feed"))
    store = WarmStore(str(warm_root))
    try:
        manifest = feed.export(store, core.Params(store="warm", by=("class",)), where)
    finally:
        store.close()
    return sheets.tables_from_feed(manifest, lambda n: (tmp_path / "feed" / n).read_bytes())


def test_the_feed_lands_in_the_sheet_read_only_shared(
    warm_root: Path, tmp_path: Path, standin: Any, account: Path
) -> None:
    tables = _feed_tables(warm_root, tmp_path)
    standin.add_sheet("combat", rows=2, cols=2)  # too small: it is resized, then rewritten
    standin.sheets["combat"]["values"] = [["stale"]]
    written = sheets.sync(
        SPREADSHEET, tables, service_account_file=str(account),
        share_with=["designer@example.com"], http_client=_client_for(standin),
    )  # fmt: skip
    assert written == list(tables) and set(standin.sheets) == set(tables)
    for metric, rows in tables.items():
        csv_text = (tmp_path / "feed" / f"{metric}.csv").read_text()
        assert standin.sheets[metric]["values"] == rows == sheets.csv_values(csv_text)
        assert rows[0] == csv_text.splitlines()[0].split(",")  # the header as is
        assert standin.sheets[metric]["rows"] == len(rows)
    assert standin.permissions == [
        {"type": "user", "role": "reader", "withLink": False,
         "emailAddress": "designer@example.com", "notify": "False"}
    ]  # fmt: skip

    # Again: the same sheets rewritten, nothing added.
    before = {t: s["id"] for t, s in standin.sheets.items()}
    sheets.sync(SPREADSHEET, tables, service_account_file=str(account),
                http_client=_client_for(standin))  # fmt: skip
    assert {t: s["id"] for t, s in standin.sheets.items()} == before


def test_cells_are_numbers_or_text_never_formulas() -> None:
    rows = sheets.csv_values('class,players,rate\n"=IMPORTXML(1)",12,0.5\nwarrior,,nan\n')
    assert rows == [
        ["class", "players", "rate"],
        ["=IMPORTXML(1)", 12, 0.5],
        ["warrior", "", "nan"],
    ]
    assert sheets.grid_requests({"a": rows}, {}) == [
        {"addSheet": {"properties": {"title": "a",
                                     "gridProperties": {"rowCount": 3, "columnCount": 3}}}}
    ]  # fmt: skip


def test_refusals(standin: Any, account: Path, tmp_path: Path, warm_root: Path) -> None:
    with pytest.raises(InsightsError, match="Sheets sync failed"):
        sheets.sync("another-id", {"a": [["x"]]}, service_account_file=str(account),
                    http_client=_client_for(standin))  # fmt: skip
    with pytest.raises(InsightsError, match="Sheets sync failed"):
        sheets.sync(SPREADSHEET, {"a": [["x"]]}, service_account_file=str(tmp_path / "none"))
    done = cli("insights", "export", "--store", "warm", "--root", str(warm_root),
               "--to-sheet", SPREADSHEET)  # fmt: skip
    assert done.returncode == 2 and "--service-account" in done.stderr
    done = cli("insights", "export", "--store", "warm", "--root", str(warm_root))
    assert done.returncode == 2 and "--to-sheet" in done.stderr
