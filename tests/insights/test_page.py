"""The designer's page in a real headless Chromium: `insights serve` with a slice picked, and
`insights report`'s static page; the numbers shown equal the CLI's JSON; screenshots kept."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("GAMEPLAY_ANALYTICS_")}


class _Cells(HTMLParser):
    """The `data-value` of every cell, per metric table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self._metric: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-metric"):
            self._metric = a["data-metric"]
            self.tables[self._metric] = []
        elif tag == "tr" and self._metric is not None:
            self.tables[self._metric].append({})
        elif tag == "td" and self._metric is not None and a.get("data-key"):
            row = self.tables[self._metric][-1]
            row[str(a["data-key"])] = json.loads(a.get("data-value") or "null")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._metric = None


def _cells(html: str) -> dict[str, list[dict[str, Any]]]:
    parser = _Cells()
    parser.feed(html)
    return {m: [r for r in rows if r] for m, rows in parser.tables.items()}


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _cli_json(root: Path, metric: str, *extra: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", metric, "--store", "warm",
         "--root", str(root), "--format", "json", *extra],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)["rows"]
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_chromium
def test_serve_in_chromium_with_a_slice_matches_the_cli(warm_root: Path, tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", "serve", "--store", "warm",
         "--root", str(warm_root), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("serving http://")
        url = f"http://127.0.0.1:{port}/?by=class&window=10"  # the form's GET, a slice picked
        deadline = time.monotonic() + 60
        while True:
            dom = _chromium("--dump-dom", url, profile=tmp_path / "chrome")
            if "data-metric" in dom.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        shown = _cells(dom.stdout)
        assert "id='by-class' checked" in dom.stdout or 'id="by-class" checked' in dom.stdout
        assert shown["funnel"] == _cli_json(warm_root, "funnel", "--by", "class",
                                            "--window", "10")  # fmt: skip
        assert shown["combat"] == _cli_json(warm_root, "combat", "--by", "class")
        assert shown["xp"] == _cli_json(warm_root, "xp", "--by", "class")
        shot = tmp_path / "insights-serve.png"
        done = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", url,
                         profile=tmp_path / "chrome")  # fmt: skip
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr
        done = _chromium("--dump-dom", f"http://127.0.0.1:{port}/?by=guild",
                         profile=tmp_path / "chrome")  # fmt: skip
        assert "unknown dimension 'guild'" in done.stdout
    finally:
        server.terminate()
        server.wait(20)


@needs_chromium
def test_report_is_a_static_page_with_charts(warm_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", "report", "--store", "warm",
         "--root", str(warm_root), "--out", str(out)],
        capture_output=True, text=True, timeout=180, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for metric in ("funnel", "retention", "sessions", "combat", "xp", "economy"):
        assert (out / f"{metric}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{metric}.svg").read_text().lstrip().startswith("<?xml")
    dom = _chromium("--dump-dom", (out / "index.html").as_uri(), profile=tmp_path / "chrome")
    shown = _cells(dom.stdout)
    assert shown["retention"] == _cli_json(warm_root, "retention")
    assert shown["economy"] == json.loads((out / "economy.json").read_text())["rows"]
    shot = tmp_path / "insights-report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2400", (out / "index.html").as_uri(),
              profile=tmp_path / "chrome")  # fmt: skip
    assert shot.stat().st_size > 10_000
