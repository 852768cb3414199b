"""The NATS names one pipeline uses (stream, subjects, KV bucket, durable consumer) and the
stream's default limits: the one place the operator, `up` and the processes take them from.

The defaults are the local stack's names (PROTOCOL.md §3). In a cluster every AnalyticsPipeline
gets its own names, derived from its namespace and name by `PipelineNames.for_pipeline`, so that
several pipelines can share one NATS without reading each other's events or rules. The operator
hands them to the processes as the environment variables in `ENV_VARS`.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW_S",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_REPLICAS",
    "ENV_PREFIX",
    "ENV_VARS",
    "KV_BREAKER_KEY",
    "KV_SAMPLING_KEY",
    "KV_SCHEMAS_KEY",
    "PipelineNames",
]

ENV_PREFIX = "GAMEPLAY_ANALYTICS_"  # every runtime setting's environment variable starts so

# -- the stream's limits: defaults of StreamSettings (runtime) and NatsSpec (operator) --------
DEFAULT_REPLICAS = 1  # R3 in a cluster, R1 on a laptop
DEFAULT_DUPLICATE_WINDOW_S = 120  # Nats-Msg-Id dedup window
DEFAULT_MAX_AGE_S = 7 * 24 * 3600  # how long the stream keeps messages
DEFAULT_MAX_BYTES = -1  # unlimited

# -- the keys inside the config bucket --------------------------------------------------------
KV_SAMPLING_KEY = "sampling"  # compiled rules (wire form) + heartbeat rate, JSON
KV_SCHEMAS_KEY = "schemas"  # {"accepted": ["1.0.0", …], "documents": {version: schema}}
KV_BREAKER_KEY = "breaker"  # the gateways' circuit breaker (SamplingPolicy.spec.breaker), JSON

# A stream or bucket name: no whitespace, dots, wildcards or path separators (NATS ADR-6).
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# A literal subject: dot-separated tokens, no wildcards.
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineNames:
    """Where one pipeline's events, dead letters, rules and consumer live on NATS."""

    stream: str = "ANALYTICS"
    events_subject: str = "analytics.events"
    dlq_subject: str = "analytics.dlq"
    config_bucket: str = "analytics-config"
    consumer: str = "aggregator"
    sessions_bucket: str = "analytics-sessions"  # the gateways' ledger for the nightly check

    def __post_init__(self) -> None:
        for field in ("stream", "config_bucket", "consumer", "sessions_bucket"):
            value = getattr(self, field)
            if not _NAME.match(value):
                raise ValueError(
                    f"{field} {value!r}: use letters, digits, '-' and '_' only (1-200 chars)"
                )
        for field in ("events_subject", "dlq_subject"):
            value = getattr(self, field)
            if not _SUBJECT.match(value):
                raise ValueError(f"{field} {value!r}: a literal subject, e.g. analytics.events")
        if self.events_subject == self.dlq_subject:
            raise ValueError("events_subject and dlq_subject must differ")

    @classmethod
    def for_pipeline(cls, namespace: str, name: str) -> PipelineNames:
        """The names of the AnalyticsPipeline `namespace/name`; distinct pipelines never share
        one. Kubernetes names have no '_' (and namespaces no '.'), so '_' separates the parts
        and a dot in the name becomes '_' without making two pipelines collide."""
        ns, pipe = namespace, name.replace(".", "_")
        return cls(
            stream=f"ANALYTICS_{ns}_{pipe}",
            events_subject=f"analytics.{ns}.{pipe}.events",
            dlq_subject=f"analytics.{ns}.{pipe}.dlq",
            config_bucket=f"analytics-config_{ns}_{pipe}",
            consumer="aggregator",
            sessions_bucket=f"analytics-sessions_{ns}_{pipe}",
        )

    def env(self, *, with_consumer: bool = True) -> dict[str, str]:
        """The environment variables (`GAMEPLAY_ANALYTICS_` + key) that carry these names;
        the gateway has no consumer, so it is rendered `with_consumer=False`."""
        return {
            var: getattr(self, field)
            for field, var in ENV_VARS.items()
            if with_consumer or field != "consumer"
        }

    def subjects(self) -> list[str]:
        return [self.events_subject, self.dlq_subject]


# field of PipelineNames -> environment variable suffix (after GAMEPLAY_ANALYTICS_); the
# settings models of the gateway and the aggregator have a field of each lower-cased name.
ENV_VARS: dict[str, str] = {
    "stream": "STREAM",
    "events_subject": "EVENTS_SUBJECT",
    "dlq_subject": "DLQ_SUBJECT",
    "config_bucket": "CONFIG_BUCKET",
    "consumer": "CONSUMER_NAME",
    "sessions_bucket": "SESSIONS_BUCKET",
}
