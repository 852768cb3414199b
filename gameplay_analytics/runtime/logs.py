"""Structured logs for every process: one JSON object per line on stderr (Loki-friendly).

Each line carries `ts`, `level`, `component` (gateway, aggregator, operator, up), `pipeline`
when the process serves one, `logger`, `msg`, any `extra={...}` fields and `exc` for a
traceback. Text and extra fields pass `privacy.redact.redact_identifiers`: no UUID and no
client IP reaches a line, whatever a caller formats into it. `configure` is called once per
process by the CLI; everything else just uses `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from gameplay_analytics.contract.natsnames import ENV_PREFIX
from gameplay_analytics.privacy.redact import redact_identifiers

__all__ = ["JsonFormatter", "LogSettings", "configure"]

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class LogSettings(BaseSettings):
    """How a process logs (`GAMEPLAY_ANALYTICS_LOG_LEVEL`, `…_LOG_FORMAT`, `…_PIPELINE`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    pipeline: str = ""
    """The pipeline this process serves (the operator renders it; `up` says `local`)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, identifiers redacted."""

    def __init__(self, component: str, pipeline: str = "") -> None:
        super().__init__()
        self._fixed = {"component": component, **({"pipeline": pipeline} if pipeline else {})}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            **self._fixed,
            "logger": record.name,
            "msg": redact_identifiers(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in doc:
                doc[key] = _redacted(value)
        if record.exc_info:
            doc["exc"] = redact_identifiers(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_identifiers(super().format(record))


def configure(
    component: str, *, settings: LogSettings | None = None, stream: IO[str] | None = None
) -> None:
    """Route every logger of this process to one handler on `stream` (stderr), replacing
    whatever was configured before (safe to call twice)."""
    settings = settings if settings is not None else LogSettings()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(component, settings.pipeline))
    else:
        where = f"{component}/{settings.pipeline}" if settings.pipeline else component
        handler.setFormatter(
            _TextFormatter(f"%(asctime)s {where} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_identifiers(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return redact_identifiers(str(value))
