"""Validators compiled from the event JSON Schema: a msgspec fast path, a reference slow path.

The JSON Schema is the source of truth. Each event's `props` schema is compiled into a msgspec
struct so that a whole `analytics` frame of valid events is checked in one C pass; only a frame
holding an invalid event falls back to per-event checks, where fastjsonschema (the reference
validator) words the detail. A props schema using a keyword the compiler does not translate is
checked by fastjsonschema alone, so the fast path never accepts what the schema refuses.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

import fastjsonschema
import msgspec

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError, RejectCode
from gameplay_analytics.contract.frames import Rejection, decode_detail

__all__ = ["EventValidator", "ValidationResult", "compile_reference"]

# Keywords the compiler translates; any other keyword in a props schema sends that event to
# the reference validator.
_TRANSLATED = {
    "type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "description", "title", "default", "examples",
}  # fmt: skip


class _Unsupported(Exception):
    """A schema construct the fast path does not compile."""


class ValidationResult(msgspec.Struct):
    """Events that passed (msgspec structs with `event_name`, `seq`, `ts`, `props`) and the
    rejections, in frame order. (A struct: one per frame, cheaper to make than a dataclass.)"""

    accepted: list[Any] = msgspec.field(default_factory=list)
    rejected: list[Rejection] = msgspec.field(default_factory=list)


def compile_reference(schema: Mapping[str, Any]) -> Any:
    """fastjsonschema's validator for the whole event schema (the reference semantics)."""
    return fastjsonschema.compile(dict(schema), use_default=False)


class EventValidator:
    """Validates the events of `analytics` frames against one schema version."""

    def __init__(self, schema: Mapping[str, Any], *, max_events: int = 500) -> None:
        self.version: str = str(schema.get("version", "0.0.0"))
        self.max_events = max_events
        self._reference = compile_reference(schema)
        definitions: Mapping[str, Any] = schema.get("definitions", {})
        envelope: Mapping[str, Any] = schema.get("properties", {})
        # seq and ts bounds come from the schema: storage needs them to fit 64-bit columns.
        self._seq_type = _prop_type(envelope.get("seq", {"type": "integer", "minimum": 0}))
        self._ts_type = _prop_type(envelope.get("ts", {"type": "integer", "minimum": 0}))
        self._fallback: dict[str, Any] = {}
        self.event_types: dict[str, type[msgspec.Struct]] = {}
        self.props_fields: dict[str, frozenset[str]] = {}
        for name, props_schema in definitions.items():
            self.event_types[name] = self._event_struct(name, props_schema)
            self.props_fields[name] = frozenset(props_schema.get("properties", {}))
        union: Any = Union[tuple(self.event_types.values())]  # noqa: UP007 - runtime union
        self._frame_decoder = msgspec.json.Decoder(list[union])
        self._union = union
        self._event_decoder = msgspec.json.Decoder(union)
        self._raw_list = msgspec.json.Decoder(list[msgspec.Raw])
        self._charset_skip, self._charset_decoder = self._charset_fast_path(definitions)

    def validate(self, events: msgspec.Raw | bytes) -> ValidationResult:
        """Check every event of a frame; raises `ProtocolError` only for a malformed list."""
        try:
            return self._validate(events)
        except RecursionError:  # msgspec's and fastjsonschema's depth guards (tests/fuzz)
            raise ProtocolError(ErrorCode.BAD_REQUEST, "events: nested too deeply") from None

    def _validate(self, events: msgspec.Raw | bytes) -> ValidationResult:
        try:
            if self._charset_decoder is not None and not bytes(events).translate(
                None, self._charset_skip
            ):
                accepted = self._charset_decoder.decode(events)
            else:
                accepted = self._frame_decoder.decode(events)
        except msgspec.MsgspecError:
            return self._validate_one_by_one(events)
        if len(accepted) > self.max_events:
            raise self._too_many(len(accepted))
        if self._fallback and not self._fallback_ok(accepted):
            return self._validate_one_by_one(events)
        return ValidationResult(accepted=accepted)

    def validate_event(self, event: Mapping[str, Any]) -> str | None:
        """Why one decoded event (a dict) is invalid, or None; used by the aggregator."""
        try:
            self._reference(dict(event))
        except fastjsonschema.JsonSchemaException as err:
            return _reference_detail(err)
        return None

    # -- private ---------------------------------------------------------------------------

    def _too_many(self, count: int) -> ProtocolError:
        return ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"events: {count} events, at most {self.max_events} per envelope",
        )

    def _validate_one_by_one(self, events: msgspec.Raw | bytes) -> ValidationResult:
        try:
            items = self._raw_list.decode(events)
        except msgspec.MsgspecError as err:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"events: {decode_detail(err)}") from None
        if len(items) > self.max_events:
            raise self._too_many(len(items))
        result = ValidationResult()
        for item in items:
            try:
                event = self._event_decoder.decode(item)
            except msgspec.MsgspecError as err:
                event = self._judge_item(item, err)
                if isinstance(event, Rejection):
                    result.rejected.append(event)
                    continue
            detail = self._fallback_detail(event)
            if detail is None:
                result.accepted.append(event)
            else:
                result.rejected.append(Rejection(event.seq, RejectCode.INVALID_EVENT, detail))
        return result

    def _judge_item(self, item: msgspec.Raw, err: msgspec.MsgspecError) -> Any:
        """An event msgspec refused: the reference decides. JSON Schema counts `1.0` as an
        integer where msgspec does not, so an event the schema accepts is normalised and
        converted rather than refused; anything else becomes a `Rejection`."""
        try:
            doc = msgspec.json.decode(item)
        except msgspec.MsgspecError:
            doc = None
        if not isinstance(doc, dict):
            return Rejection(None, RejectCode.INVALID_EVENT, "event: not an object")
        seq = doc.get("seq")
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        detail = self.validate_event(doc)
        if detail is None:
            try:
                return msgspec.convert(_integral(doc), self._union, from_attributes=False)
            except msgspec.MsgspecError as again:
                err = again
        return Rejection(seq, RejectCode.INVALID_EVENT, detail or decode_detail(err))

    def _fallback_ok(self, accepted: list[Any]) -> bool:
        return all(self._fallback_detail(event) is None for event in accepted)

    def _fallback_detail(self, event: Any) -> str | None:
        check = self._fallback.get(event.event_name)
        if check is None:
            return None
        try:
            check(event.props)
        except fastjsonschema.JsonSchemaException as err:
            return _reference_detail(err, prefix="props")
        return None

    def _charset_fast_path(
        self, definitions: Mapping[str, Any]
    ) -> tuple[bytes, msgspec.json.Decoder[Any] | None]:
        """A decoder without regex checks, valid for frames whose strings are all identifiers.

        When every `pattern` in the schema is a plain `^[class]{m,n}$`, a frame in which every
        byte is either in the common class or JSON structure (`[]{}",`) cannot fail a pattern:
        one `bytes.translate` in C proves it, and msgspec checks only the lengths. Any other
        frame (spaces, escapes, unicode, a `+` exponent) takes the exact decoder.
        """
        charsets = set()
        for props_schema in definitions.values():
            for prop in props_schema.get("properties", {}).values():
                if "pattern" in prop:
                    parsed = _simple_charset(prop["pattern"])
                    if parsed is None:
                        return b"", None
                    charsets.add(parsed)
        if len(charsets) != 1 or self._fallback:
            return b"", None
        structs = [
            self._event_struct(name, props_schema, patterns=False)
            for name, props_schema in definitions.items()
        ]
        union: Any = Union[tuple(structs)]  # noqa: UP007 - runtime union
        return charsets.pop() + b'[]{}",', msgspec.json.Decoder(list[union])

    def _event_struct(
        self, name: str, props_schema: Mapping[str, Any], *, patterns: bool = True
    ) -> type[msgspec.Struct]:
        try:
            props_type: Any = _props_struct(name, props_schema, patterns=patterns)
        except _Unsupported:
            self._fallback[name] = fastjsonschema.compile(dict(props_schema))
            props_type = dict[str, Any]
        # `props` may be left out only where its schema requires nothing (as in the schema).
        props_field: tuple[str, Any] | tuple[str, Any, Any] = ("props", props_type)
        if not props_schema.get("required"):
            props_field = ("props", props_type, msgspec.field(default_factory=props_type))
        return msgspec.defstruct(
            f"Event_{name}",
            [("seq", self._seq_type), ("ts", self._ts_type), props_field],
            tag_field="name",
            tag=name,
            forbid_unknown_fields=True,
            namespace={"event_name": name},
            gc=False,  # decoded by the thousand per second; fields cannot form a cycle
        )


def _props_struct(
    name: str, schema: Mapping[str, Any], *, patterns: bool = True
) -> type[msgspec.Struct]:
    if schema.get("type") != "object" or set(schema) - {
        "type", "properties", "required", "additionalProperties", "description", "title",
    } - {key for key in schema if key.startswith("x-")}:  # fmt: skip
        raise _Unsupported(name)
    required = set(schema.get("required", ()))
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for prop, prop_schema in schema.get("properties", {}).items():
        attr = f"{prop}_" if keyword.iskeyword(prop) or not prop.isidentifier() else prop
        if attr != prop:
            rename[attr] = prop
        prop_type = _prop_type(prop_schema, patterns=patterns)
        if prop in required:
            fields.append((attr, prop_type))
        else:
            fields.append((attr, prop_type | msgspec.UnsetType, msgspec.UNSET))
    fields.sort(key=lambda f: len(f) == 3)  # required fields first
    additional = schema.get("additionalProperties", True)
    if additional not in (True, False):
        raise _Unsupported(name)
    return msgspec.defstruct(
        f"Props_{name}",
        fields,
        forbid_unknown_fields=additional is False,
        omit_defaults=True,
        rename=rename or None,
        gc=False,  # scalar fields only
    )


def _prop_type(schema: Mapping[str, Any], *, patterns: bool = True) -> Any:
    if set(schema) - _TRANSLATED:
        raise _Unsupported(str(schema))
    kind = schema.get("type")
    if "enum" in schema:
        values = tuple(schema["enum"])
        if kind != "string" or not all(isinstance(v, str) for v in values):
            raise _Unsupported(str(schema))
        return Literal[values]
    if kind == "string":
        pattern = schema.get("pattern")
        min_length, max_length = schema.get("minLength"), schema.get("maxLength")
        if pattern is not None and not patterns:
            lo, hi = _simple_bounds(pattern)
            min_length = max(min_length or 0, lo) or None
            max_length = hi if max_length is None else min(max_length, hi)
            pattern = None
        if pattern is not None and pattern.endswith("$") and not pattern.endswith("\\$"):
            pattern = pattern[:-1] + r"\Z"  # ECMA `$` never matches before a final newline
        meta = msgspec.Meta(min_length=min_length, max_length=max_length, pattern=pattern)
        return Annotated[str, meta]
    if kind in ("integer", "number"):
        bounds = {
            "ge": schema.get("minimum"),
            "le": schema.get("maximum"),
            "gt": schema.get("exclusiveMinimum"),
            "lt": schema.get("exclusiveMaximum"),
        }
        meta = msgspec.Meta(**{k: v for k, v in bounds.items() if v is not None})
        number: type = int if kind == "integer" else float
        return Annotated[number, meta]
    if kind == "boolean":
        return bool
    raise _Unsupported(str(schema))


def _integral(value: Any) -> Any:
    """Integral floats as ints, recursively (`1.0` → `1`); a float field still takes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


_SIMPLE = re.compile(
    r"\^\[((?:[A-Za-z0-9_.:/]|\\-|[A-Za-z0-9]-[A-Za-z0-9])+-?)\](\{\d+,\d+\}|\+)\$"
)


def _simple_charset(pattern: str) -> bytes | None:
    """The bytes of a `^[class]{m,n}$` pattern's class, or None for any other pattern."""
    match = _SIMPLE.fullmatch(pattern)
    if match is None:
        return None
    body, chars = match.group(1), bytearray()
    for part in re.findall(r"[A-Za-z0-9]-[A-Za-z0-9]|\\-|.", body):
        if len(part) == 3:
            chars.extend(range(ord(part[0]), ord(part[2]) + 1))
        else:
            chars.append(ord(part[-1]))
    return bytes(sorted(set(chars)))


def _simple_bounds(pattern: str) -> tuple[int, int | None]:
    match = _SIMPLE.fullmatch(pattern)
    assert match is not None  # only called once _simple_charset accepted the pattern
    quantifier = match.group(2)
    if quantifier == "+":
        return 1, None
    lo, hi = quantifier.strip("{}").split(",")
    return int(lo), int(hi)


def _reference_detail(err: fastjsonschema.JsonSchemaException, *, prefix: str = "") -> str:
    """fastjsonschema's `data.props.tier must be one of [...]` as `props.tier: must be …`."""
    message = getattr(err, "message", str(err))
    path = [str(p) for p in getattr(err, "path", [])[1:]]
    where = ".".join(([prefix] if prefix else []) + path)
    words = message.split(" ", 1)
    what = words[1] if len(words) == 2 and words[0].startswith("data") else message
    value = getattr(err, "value", None)
    if getattr(err, "rule", None) == "enum":
        what = f"{value!r} is not one of {getattr(err, 'rule_definition', [])}"
    return f"{where}: {what}" if where else what
