"""A small stand-in for the Google APIs the Sheets sync calls (OAuth token, Sheets v4, Drive v3
permissions), for tests/insights/test_sheets.py. It verifies the service account's signed JWT
with the public key, keeps spreadsheets in memory, and refuses what Google would: no bearer
token, an unknown spreadsheet, a duplicate sheet title, values beyond a sheet's grid, a value
input option other than RAW (the sync's promise). It checks the calls' shapes, not Google."""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from typing import Any

import jwt

from tests.insights.standin import JsonStandIn, Refused

__all__ = ["SheetsStandIn"]

TOKEN = "ya29.standin"


def _title(a1: str) -> str:
    sheet = a1.split("!", 1)[0]
    if sheet.startswith("'") and sheet.endswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    return sheet


class SheetsStandIn(JsonStandIn):
    def __init__(self, public_key: str, spreadsheet_id: str) -> None:
        super().__init__()
        self.public_key = public_key
        self.sheets: dict[str, dict[str, Any]] = {}  # title -> {id, rows, cols, values}
        self.permissions: list[dict[str, Any]] = []
        self.spreadsheet_id = spreadsheet_id
        self._ids = itertools.count(100)

    def add_sheet(self, title: str, rows: int = 1000, cols: int = 26) -> None:
        self.sheets[title] = {"id": next(self._ids), "rows": rows, "cols": cols, "values": []}

    # -- the API -------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], headers: Any,
               body: bytes) -> Any:  # fmt: skip
        if (method, path) == ("POST", "/token"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                raise Refused(400, "unsupported_grant_type")
            claims = jwt.decode(form["assertion"], self.public_key, algorithms=["RS256"],
                                options={"verify_aud": False})  # fmt: skip
            if claims.get("aud") != "https://oauth2.googleapis.com/token":  # google-auth's
                raise Refused(400, f"invalid_grant: audience {claims.get('aud')!r}")
            if "https://www.googleapis.com/auth/spreadsheets" not in claims["scope"].split():
                raise Refused(400, "invalid_scope")
            return {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            raise Refused(401, "Request had invalid authentication credentials.")
        data = json.loads(body) if body else None
        sheet_route = re.fullmatch(r"/v4/spreadsheets/([^/:]+)(.*)", path)
        drive_route = re.fullmatch(r"/drive/v3/files/([^/]+)/permissions", path)
        ident = (sheet_route or drive_route or re.match("()", "")).group(1)
        if ident != self.spreadsheet_id:
            raise Refused(404, "Requested entity was not found.")
        if drive_route and method == "POST":
            if data.get("type") != "user" or not data.get("emailAddress"):
                raise Refused(400, "bad permission")
            self.permissions.append({**data, "notify": query.get("sendNotificationEmail")})
            return {"id": f"perm-{len(self.permissions)}", **data}
        assert sheet_route is not None
        rest = urllib.parse.unquote(sheet_route.group(2))
        if method == "GET" and rest == "":
            return self._metadata()
        if method == "POST" and rest == ":batchUpdate":
            return {"replies": [self._one_request(r) for r in data["requests"]]}
        if method == "POST" and rest.startswith("/values/") and rest.endswith(":clear"):
            self._sheet(_title(rest[len("/values/") : -len(":clear")]))["values"] = []
            return {"clearedRange": rest}
        if method == "PUT" and rest.startswith("/values/"):
            if query.get("valueInputOption") != "RAW":
                raise Refused(400, "the sync writes RAW values only")
            sheet = self._sheet(_title(rest[len("/values/") :]))
            values = data["values"]
            if len(values) > sheet["rows"] or max(map(len, values), default=0) > sheet["cols"]:
                raise Refused(400, "Range exceeds grid limits.")
            sheet["values"] = values
            return {"updatedRows": len(values)}
        raise Refused(404, f"no route {method} {path}")

    def _sheet(self, title: str) -> dict[str, Any]:
        if title not in self.sheets:
            raise Refused(400, f"Unable to parse range: {title}")
        return self.sheets[title]

    def _metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {"title": "Stakeholder feed"},
            "sheets": [
                {"properties": {"sheetId": s["id"], "title": t, "index": n, "sheetType": "GRID",
                                "gridProperties": {"rowCount": s["rows"],
                                                   "columnCount": s["cols"]}}}
                for n, (t, s) in enumerate(self.sheets.items())
            ],
        }  # fmt: skip

    def _one_request(self, request: dict[str, Any]) -> dict[str, Any]:
        if "addSheet" in request:
            props = request["addSheet"]["properties"]
            if props["title"] in self.sheets:
                raise Refused(400, f"A sheet with the name {props['title']} already exists.")
            grid = props["gridProperties"]
            self.add_sheet(props["title"], grid["rowCount"], grid["columnCount"])
            return {
                "addSheet": {"properties": {**props, "sheetId": self.sheets[props["title"]]["id"]}}
            }
        if "updateSheetProperties" in request:
            update = request["updateSheetProperties"]
            props = update["properties"]
            found = [s for s in self.sheets.values() if s["id"] == props["sheetId"]]
            if not found or update["fields"] != "gridProperties(rowCount,columnCount)":
                raise Refused(400, "bad updateSheetProperties")
            found[0]["rows"] = props["gridProperties"]["rowCount"]
            found[0]["cols"] = props["gridProperties"]["columnCount"]
            return {}
        raise Refused(400, f"unsupported request {sorted(request)}")

    def error_body(self, err: Refused) -> Any:
        return {"error": {"code": err.status, "message": str(err)}}
