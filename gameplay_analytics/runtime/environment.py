"""Refusing `GAMEPLAY_ANALYTICS_*` environment variables that no settings field reads.

A variable nobody reads is a silent bug (a typo, or an operator rendering a setting the process
ignores), so a process refuses to start with one and says which, with the closest known name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from pydantic_settings import BaseSettings

from gameplay_analytics.contract.natsnames import ENV_PREFIX

__all__ = ["UnknownSettings", "check_environment", "variables_of"]

# The operator's own settings (`GAMEPLAY_ANALYTICS_OPERATOR_*`, operator/runner.py) may share
# a shell with the runtime's.
_OTHER_PREFIXES = (f"{ENV_PREFIX}OPERATOR_",)


class UnknownSettings(ValueError):
    """Environment variables with the settings prefix that no field reads."""


def variables_of(model: type[BaseSettings]) -> frozenset[str]:
    """The environment variables a settings model reads (prefix + field name, upper case)."""
    prefix = str(model.model_config.get("env_prefix", ""))
    return frozenset(f"{prefix}{name}".upper() for name in model.model_fields)


def check_environment(environ: Mapping[str, str], *, models: Iterable[type[BaseSettings]]) -> None:
    """Raise UnknownSettings naming every `GAMEPLAY_ANALYTICS_*` variable in `environ` that
    none of `models` reads. The caller passes every runtime model: the local stack hands one
    environment to gateway and aggregator alike, so a variable only the other reads is fine;
    the per-process contract (what the operator renders for each) is checked by tests."""
    known: set[str] = set()
    for model in models:
        known |= variables_of(model)
    unknown = sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(_OTHER_PREFIXES)
    )
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise UnknownSettings(
        "unknown settings in the environment, refusing to start: "
        + ", ".join(hints)
        + ". Every GAMEPLAY_ANALYTICS_* variable must name a settings field (docs/operations.md)."
    )
