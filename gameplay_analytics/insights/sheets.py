"""The stakeholder feed in Google Sheets: each metric's curated CSV (insights/feed.py) as one
worksheet of a spreadsheet, written by a service account, shared read-only.

Optional (`pip install 'gameplay-analytics[sheets]'`: gspread and google-auth). The worksheet
is the CSV exactly: its header, then its rows, numbers as numbers and everything else as
text, written with `valueInputOption=RAW` so that no cell is ever parsed as a formula (a slice
value comes from a game client). The spreadsheet must exist and be shared with the service
account as an editor; the sync adds the worksheets it lacks, resizes and rewrites the others,
and shares the spreadsheet as `reader` with each `--share-with` address.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from gameplay_analytics.insights.stores import InsightsError

__all__ = ["TIMEOUT_S", "Cell", "csv_values", "grid_requests", "sync", "tables_from_feed"]

TIMEOUT_S: Final = 60.0
"""Bound on one Sheets or Drive API call."""

Cell = str | int | float


def csv_values(text: str) -> list[list[Cell]]:
    """A feed CSV as worksheet rows: the header and text as they are, numbers as numbers."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header: list[Cell] = list(rows[0])
    return [header, *([_cell(v) for v in row] for row in rows[1:])]


def _cell(value: str) -> Cell:
    try:
        number = int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            return value
        return as_float if math.isfinite(as_float) else value
    return number


def tables_from_feed(manifest: Mapping[str, Any], read: Callable[[str], bytes]) -> dict[str, Any]:
    """{worksheet title: rows} of every metric in a feed's manifest (`read` a file by name)."""
    return {
        entry["metric"]: csv_values(read(entry["files"]["csv"]["path"]).decode("utf-8"))
        for entry in manifest["metrics"]
    }


def grid_requests(
    tables: Mapping[str, Sequence[Sequence[Cell]]], existing: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The one `batchUpdate` that makes every worksheet exactly big enough: `addSheet` for a
    title the spreadsheet lacks, `updateSheetProperties` for one it has (`existing`: title ->
    sheetId). Pure."""
    out: list[dict[str, Any]] = []
    for title, rows in tables.items():
        grid = {"rowCount": max(len(rows), 1), "columnCount": max(map(len, rows), default=1)}
        if title in existing:
            out.append({"updateSheetProperties": {
                "properties": {"sheetId": existing[title], "gridProperties": grid},
                "fields": "gridProperties(rowCount,columnCount)",
            }})  # fmt: skip
        else:
            out.append({"addSheet": {"properties": {"title": title, "gridProperties": grid}}})
    return out


def sync(
    spreadsheet_id: str,
    tables: Mapping[str, Sequence[Sequence[Cell]]],
    *,
    service_account_file: str,
    share_with: Sequence[str] = (),
    http_client: Any = None,
) -> list[str]:
    """Write `tables` into the spreadsheet; returns the worksheet titles written.

    `http_client` is gspread's HTTP client class (its default, or a test's stand-in)."""
    try:
        import gspread
    except ImportError:
        raise InsightsError(
            "the Sheets sync needs the sheets extra: pip install 'gameplay-analytics[sheets]'"
        ) from None
    try:
        client = gspread.service_account(
            filename=service_account_file, http_client=http_client or gspread.HTTPClient
        )
        client.set_timeout(TIMEOUT_S)
        sheet = client.open_by_key(spreadsheet_id)
        existing = {w.title: w.id for w in sheet.worksheets()}
        sheet.batch_update({"requests": grid_requests(tables, existing)})
        for title, rows in tables.items():
            target = "'" + title.replace("'", "''") + "'"
            sheet.values_clear(target)
            sheet.values_update(
                f"{target}!A1", params={"valueInputOption": "RAW"}, body={"values": rows}
            )
        for email in share_with:
            sheet.share(email, perm_type="user", role="reader", notify=False)
    except (OSError, ValueError) as err:  # an unreadable key file, a refused connection
        raise InsightsError(f"Sheets sync failed: {_one_line(err)}") from None
    except gspread.exceptions.GSpreadException as err:
        raise InsightsError(f"Sheets sync failed: {_one_line(err)}") from None
    except Exception as err:  # google-auth's RefreshError and requests' errors
        if type(err).__module__.split(".")[0] not in ("google", "requests", "urllib3"):
            raise
        raise InsightsError(f"Sheets sync failed: {_one_line(err)}") from None
    return list(tables)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]
