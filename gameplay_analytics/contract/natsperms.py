"""What each component of a pipeline may publish and subscribe to on NATS, derived from its
`PipelineNames`: the one owner of the least-privilege user lists `up`, the operator, the chart
and `gameplay-analytics nats-permissions` render.

Each list is what the component's code really sends with nats.py 2.x against nats-server 2.10+
(JetStream wire API, `$JS.API.…`; the permission test runs every role's own job under its user
and checks that everything else is refused). Notes on the shape:

- Every JetStream call is a request whose reply comes back on the client's inbox (consumer
  deliveries go to an inbox too), so each user subscribes to its own inboxes only,
  `_INBOX_<user>.>` (`inbox_prefix`), and nothing else: with the shared default `_INBOX.>`
  any user could read the replies and deliveries of every other (the DLQ a privacy run
  pulls, the rules the operator reads back). Every client of ours connects with that prefix.
- A tool's ephemeral consumer has a random name, and NATS wildcards match whole tokens only, so
  replay and privacy may create `<stream>.*.<their subject>` consumers; `deny` keeps them off the
  aggregator's durable consumer (neither redefine it nor pull from it). The subject in the
  create call is checked by the server against the consumer's filter, so a tool's consumer
  sees only the subjects named here.
- A KV watch is an ordered push consumer on `KV_<bucket>` (no name: `CONSUMER.CREATE.KV_<b>`)
  whose flow-control replies go to `$JS.FC.KV_<b>.>`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import urllib.parse
from collections.abc import Mapping

from gameplay_analytics.contract.natsnames import PipelineNames

__all__ = [
    "INBOX_ROOT",
    "ROLES",
    "Permissions",
    "Role",
    "all_permissions",
    "authorization_block",
    "inbox_prefix",
    "login_user",
    "matches",
    "password_variables",
    "permissions",
    "user_names",
    "without_login",
]

INBOX_ROOT = "_INBOX"  # nats.py's default inbox prefix (anonymous and `.creds` clients keep it)
_API = "$JS.API"


class Role(enum.StrEnum):
    """A NATS user of a pipeline; the value is its user name in `up` and in the rendered block."""

    GATEWAY = "gateway"
    AGGREGATOR = "aggregator"
    OPERATOR = "operator"
    REPLAY = "replay"
    PRIVACY = "privacy"
    QUALITY = "quality"  # the nightly session check reads the gateways' sessions ledger


ROLES: tuple[Role, ...] = tuple(Role)


@dataclasses.dataclass(frozen=True, slots=True)
class Permissions:
    """nats-server `permissions`: a subject is allowed when it matches an `allow` entry and
    no `deny` entry (deny wins)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()

    def config(self) -> dict[str, dict[str, list[str]]]:
        """The `permissions` map of a nats-server user (the JSON form nats.conf accepts)."""
        publish: dict[str, list[str]] = {"allow": list(self.publish)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        return {"publish": publish, "subscribe": {"allow": list(self.subscribe)}}

    def may_publish(self, subject: str) -> bool:
        """What nats-server decides for a publish to the literal `subject`."""
        return any(matches(p, subject) for p in self.publish) and not any(
            matches(p, subject) for p in self.publish_deny
        )

    def may_subscribe(self, subject: str) -> bool:
        """Whether subscribing to `subject` (a literal or a wildcard) is within the list."""
        return any(matches(p, subject) for p in self.subscribe)


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one whole token, a trailing `>` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(got) == len(want)


def _api(*tokens: str) -> str:
    return ".".join((_API, *tokens))


def _kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def _watch(bucket: str) -> tuple[str, ...]:
    """Open the bucket and watch it (the hot-reload path of the gateway and the aggregator)."""
    stream = _kv_stream(bucket)
    return (
        _api("STREAM", "INFO", stream),
        _api("CONSUMER", "CREATE", stream),
        _api("CONSUMER", "INFO", stream, "*"),  # nats.py checks the watch's consumer
        f"$JS.FC.{stream}.>",
    )


def _ephemeral_reader(
    names: PipelineNames, *subjects: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(allow, deny) for tools that read `subjects` of the stream through their own ephemeral
    consumers, never the aggregator's durable one."""
    stream, durable = names.stream, names.consumer
    allow = (
        _api("STREAM", "INFO", stream),
        *(_api("CONSUMER", "CREATE", stream, "*", subject) for subject in subjects),
        _api("CONSUMER", "MSG", "NEXT", stream, "*"),
    )
    deny = (
        _api("CONSUMER", "CREATE", stream, durable, ">"),
        _api("CONSUMER", "MSG", "NEXT", stream, durable),
    )
    return allow, deny


def permissions(role: Role, names: PipelineNames, *, user: str | None = None) -> Permissions:
    """The least `role` needs on the pipeline `names`, for its user `user` (default: the
    role's name, as in `up`), whose inboxes are the only subjects it may subscribe to."""
    found = _publish(role, names)
    return dataclasses.replace(found, subscribe=(f"{inbox_prefix(user or role.value)}.>",))


def inbox_prefix(user: str | None) -> str:
    """The inbox prefix of a client logged in as `user`: `_INBOX_<user>` (characters a
    subject token cannot hold become `_`), or `_INBOX` with no user."""
    if not user:
        return INBOX_ROOT
    return f"{INBOX_ROOT}_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in user)


def login_user(url: str) -> str | None:
    """The user of a `nats://user:password@host` URL (its first server), if it names one; a
    bare token (`nats://token@host`) is no user."""
    parts = urllib.parse.urlsplit(url.split(",")[0].strip())
    if parts.username and parts.password is not None:
        return urllib.parse.unquote(parts.username)
    return None


def without_login(url: str) -> str:
    """`url` (comma-separated servers) without user and password, to show in a message."""
    return ",".join(
        urllib.parse.urlunsplit(p._replace(netloc=p.netloc.rsplit("@", 1)[-1]))
        for p in (urllib.parse.urlsplit(s.strip()) for s in url.split(","))
    )


def _publish(role: Role, names: PipelineNames) -> Permissions:
    stream, durable = names.stream, names.consumer
    if role is Role.GATEWAY:
        return Permissions(
            publish=(
                names.events_subject,  # publish with ack: the ack comes back on the inbox
                names.dlq_subject,  # the events it refuses (contract.messages.DlqEntry)
                _api("STREAM", "INFO", stream),  # verify at start
                *_watch(names.config_bucket),
                _api("STREAM", "INFO", _kv_stream(names.sessions_bucket)),
                f"$KV.{names.sessions_bucket}.>",  # one put per authenticated session
            )
        )
    if role is Role.AGGREGATOR:
        return Permissions(
            publish=(
                _api("STREAM", "INFO", stream),
                _api("CONSUMER", "INFO", stream, durable),
                _api("CONSUMER", "CREATE", stream, durable, names.events_subject),
                _api("CONSUMER", "MSG", "NEXT", stream, durable),
                f"$JS.ACK.{stream}.{durable}.>",
                _api("STREAM", "MSG", "GET", stream),  # the oldest unacked message's age (lag)
                names.dlq_subject,
                *_watch(names.config_bucket),
            )
        )
    if role is Role.OPERATOR:
        owned = (stream, _kv_stream(names.config_bucket), _kv_stream(names.sessions_bucket))
        config = _kv_stream(names.config_bucket)
        return Permissions(
            publish=(
                *(
                    _api("STREAM", verb, name)
                    for name in owned
                    for verb in ("INFO", "CREATE", "UPDATE", "DELETE")
                ),
                f"$KV.{names.config_bucket}.>",  # publish rules, breaker, accepted schemas
                _api("DIRECT", "GET", config, ">"),  # read a key back (buckets allow direct)
                _api("STREAM", "MSG", "GET", config),  # the same, on a bucket without direct
            )
        )
    if role is Role.REPLAY:
        allow, deny = _ephemeral_reader(names, names.events_subject)
        return Permissions(publish=allow, publish_deny=deny)
    if role is Role.PRIVACY:
        allow, deny = _ephemeral_reader(names, names.dlq_subject, names.events_subject)
        return Permissions(
            publish=(
                *allow,
                _api("STREAM", "MSG", "GET", stream),
                _api("STREAM", "MSG", "DELETE", stream),  # erase the player's messages
                # a shared bundle is published again without the erased player's events
                names.events_subject,
                names.dlq_subject,
            ),
            publish_deny=deny,
        )
    if role is Role.QUALITY:
        sessions = _kv_stream(names.sessions_bucket)
        return Permissions(
            publish=(
                _api("CONSUMER", "CREATE", sessions, "*", "$KV", names.sessions_bucket, ">"),
                _api("CONSUMER", "INFO", sessions, "*"),
            )
        )
    raise AssertionError(f"no permissions for role {role!r}")  # pragma: no cover


def all_permissions(
    names: PipelineNames, users: Mapping[Role, str] | None = None
) -> dict[Role, Permissions]:
    return {role: permissions(role, names, user=(users or {}).get(role)) for role in ROLES}


def user_names(prefix: str = "") -> dict[Role, str]:
    """Each role's NATS user name: the role itself on a laptop, `<prefix>-<role>` for a
    pipeline sharing its NATS with others (user names are server-wide)."""
    return {role: f"{prefix}-{role.value}" if prefix else role.value for role in ROLES}


def password_variables(prefix: str = "") -> dict[Role, str]:
    """`$<PREFIX>_<ROLE>_PASSWORD` per role: nats-server reads each from its environment, so
    a rendered block carries no secret (the variable is set from the role's Secret)."""
    head = "".join(c if c.isalnum() else "_" for c in prefix.upper())
    return {
        role: "$" + "_".join(p for p in (head, role.value.upper(), "PASSWORD") if p)
        for role in ROLES
    }


def authorization_block(
    names: PipelineNames,
    passwords: Mapping[Role, str],
    *,
    users: Mapping[Role, str] | None = None,
    extra_users: Mapping[str, str] | None = None,
) -> str:
    """A nats.conf `authorization { users = [...] }` block: one user per role in `passwords`
    with its permissions, plus `extra_users` (name -> password) with no restriction (`up`'s
    local-only admin). A password that starts with `$` is written bare, so nats-server reads
    it from that variable (or the environment): `$GATEWAY_PASSWORD` in a snippet for an SRE.
    """
    entries = []
    for role, password in passwords.items():
        user = (users or {}).get(role, role.value)
        perms = json.dumps(permissions(role, names, user=user).config())
        entries.append(f"    {{user: {json.dumps(user)}, password: {_value(password)}, "
                       f"permissions: {perms}}}")  # fmt: skip
    for user, password in (extra_users or {}).items():
        entries.append(f"    {{user: {json.dumps(user)}, password: {_value(password)}}}")
    return "authorization {\n  users = [\n" + "\n".join(entries) + "\n  ]\n}\n"


def _value(password: str) -> str:
    return password if password.startswith("$") else json.dumps(password)
