"""The shared vocabulary: frames, events, taxonomy, schema registry and compatibility rules.

Pure: no I/O beyond reading the shipped schema files. Every other layer imports from here.
"""

from gameplay_analytics.contract import errors, frames, limits, messages, taxonomy
from gameplay_analytics.contract.errors import (
    CloseCode,
    DropReason,
    ErrorCode,
    ProtocolError,
    RejectCode,
)
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.contract.semver import SemVer
from gameplay_analytics.contract.taxonomy import EVENTS, Category, EventSpec, Priority
from gameplay_analytics.contract.validator import EventValidator, ValidationResult

__all__ = [
    "EVENTS",
    "Category",
    "CloseCode",
    "DropReason",
    "ErrorCode",
    "EventSpec",
    "EventValidator",
    "Priority",
    "ProtocolError",
    "RejectCode",
    "SchemaRegistry",
    "SemVer",
    "ValidationResult",
    "errors",
    "frames",
    "limits",
    "messages",
    "taxonomy",
]
