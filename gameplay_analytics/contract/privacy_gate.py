"""The schema gate's privacy rules: props hold identifiers, enums and numbers, never a person.

Structural, not a list of names: every string a prop can hold (directly, in an array, in a
nested object) must be bounded to identifier shape by a closed `enum`, by a `pattern` whose
alphabet excludes whitespace and which is anchored at both ends, or by a short `maxLength`;
and no prop may be named or described like an age, a birth date, a name, contact details or
free text. Pure: a schema document in, problems out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from re import _constants as sre_c
from re import _parser as sre_parse
from typing import Any, Final

__all__ = ["SHORT_MAX_LENGTH", "pattern_excludes_whitespace", "privacy_problems"]

SHORT_MAX_LENGTH: Final = 16
"""A string this short or shorter is an identifier or a code, not prose."""

# Word tokens of a prop's name or description that say "a person": age, birth date, names,
# contact details, network addresses, free text.
_PERSONAL: Final = frozenset(
    {
        "age", "ages", "aged", "birth", "birthday", "birthdate", "birthyear", "born", "dob",
        "yob", "name", "names", "firstname", "lastname", "surname", "fullname", "username",
        "nickname", "realname", "email", "emails", "mail", "address", "addresses", "street",
        "postcode", "postal", "zip", "zipcode", "phone", "mobile", "ip", "ipv4", "ipv6", "text",
        "texts", "message", "messages", "body", "comment", "comments", "note", "notes",
        "content", "sentence", "freetext", "chat",
    }
)  # fmt: skip
_PERSONAL_PAIRS: Final = (frozenset({"years", "old"}), frozenset({"free", "text"}))
_WORD: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_WHITESPACE: Final = tuple(ord(c) for c in (" ", "\t", "\n", "\r", "\x0b", "\x0c", "\xa0"))
_SAFE_CATEGORIES: Final = frozenset(
    {sre_c.CATEGORY_DIGIT, sre_c.CATEGORY_WORD, sre_c.CATEGORY_NOT_SPACE}
)


def privacy_problems(version: str, document: Mapping[str, Any]) -> list[str]:
    """Every privacy problem of a schema document, each naming `event.props.field`."""
    problems: list[str] = []
    for event, props_schema in document.get("definitions", {}).items():
        for path, schema in _props(f"{event}.props", props_schema):
            name = path.rsplit(".", 1)[-1]
            if _personal(name) or _personal(str(schema.get("description", ""))):
                problems.append(f"{version}: {path}: personal or free-text field is not allowed")
            elif _may_be_string(schema) and not _bounded_string(schema):
                problems.append(
                    f"{version}: {path}: a string needs a closed enum, a pattern that excludes "
                    f"whitespace, or maxLength <= {SHORT_MAX_LENGTH}"
                )
    return problems


def pattern_excludes_whitespace(pattern: str) -> bool:
    """Whether no string holding whitespace can match: anchored at both ends, and nothing
    in it (literal, class, `.`, negated class) can consume a whitespace character.
    Conservative: a pattern that excludes whitespace only through a lookahead is refused."""
    try:
        parsed = list(sre_parse.parse(pattern))
    except re.error:
        return False
    if len(parsed) < 2 or parsed[0] != (sre_c.AT, sre_c.AT_BEGINNING):
        return False
    if parsed[-1] not in ((sre_c.AT, sre_c.AT_END), (sre_c.AT, sre_c.AT_END_STRING)):
        return False
    return _no_whitespace(parsed)


def _props(prefix: str, schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, sub in schema.get("properties", {}).items():
        if isinstance(sub, Mapping):
            yield f"{prefix}.{name}", sub
            if "properties" in sub:
                yield from _props(f"{prefix}.{name}", sub)
            items = sub.get("items")
            if isinstance(items, Mapping):
                yield f"{prefix}.{name}[]", items
                if "properties" in items:
                    yield from _props(f"{prefix}.{name}[]", items)


def _personal(text: str) -> bool:
    words = {w.lower() for w in _WORD.findall(text)}
    return bool(words & _PERSONAL) or any(pair <= words for pair in _PERSONAL_PAIRS)


def _may_be_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind is None:  # untyped: anything, strings included, unless an enum or const bounds it
        return "const" not in schema and "enum" not in schema and "properties" not in schema
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _bounded_string(schema: Mapping[str, Any]) -> bool:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return True
    if "const" in schema:
        return True
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern_excludes_whitespace(pattern):
        return True
    max_length = schema.get("maxLength")
    return isinstance(max_length, int) and max_length <= SHORT_MAX_LENGTH


def _no_whitespace(items: Any) -> bool:
    for op, arg in items:
        if op is sre_c.LITERAL:
            if arg in _WHITESPACE or chr(arg).isspace():
                return False
        elif op in (sre_c.NOT_LITERAL, sre_c.ANY):
            return False
        elif op is sre_c.IN:
            if not _class_excludes_whitespace(arg):
                return False
        elif op is sre_c.SUBPATTERN:
            if not _no_whitespace(arg[-1]):
                return False
        elif op is sre_c.BRANCH:
            if not all(_no_whitespace(branch) for branch in arg[1]):
                return False
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            if not _no_whitespace(arg[2]):
                return False
        elif op in (sre_c.ASSERT, sre_c.ASSERT_NOT, sre_c.AT, sre_c.GROUPREF):
            continue  # consume nothing of their own
        else:
            return False  # anything unknown is refused, not guessed at
    return True


def _class_excludes_whitespace(items: list[tuple[Any, Any]]) -> bool:
    if items and items[0][0] is sre_c.NEGATE:
        rest = items[1:]
        return any(op is sre_c.CATEGORY and a is sre_c.CATEGORY_SPACE for op, a in rest) or all(
            any(_class_item_has(op, a, ws) for op, a in rest) for ws in _WHITESPACE
        )
    return not any(_class_item_has(op, a, ws) for op, a in items for ws in _WHITESPACE) and all(
        op is not sre_c.CATEGORY or a in _SAFE_CATEGORIES for op, a in items
    )


def _class_item_has(op: Any, arg: Any, char: int) -> bool:
    if op is sre_c.LITERAL:
        return bool(arg == char)
    if op is sre_c.RANGE:
        return bool(arg[0] <= char <= arg[1])
    if op is sre_c.CATEGORY:
        return bool(arg is sre_c.CATEGORY_SPACE)
    return False
