"""Names, labels and metadata of a pipeline's objects, and what the renderers share: pure.

The renderers (`workloads`, `auxiliary`) and `manifests`, which assembles them, build on
these; so do the status and the NATS publishing (the pipeline's NATS names).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import importlib.metadata
import json
from typing import Any

from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.operator.models import AnalyticsPipelineSpec, BreakerSpec
from gameplay_analytics.sampling import CompiledRules

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "IMAGE_REPOSITORY",
    "MANAGED_BY",
    "OPERAND_IMAGE",
    "SECRETS_HASH_ANNOTATION",
    "TEMPLATE_HASH_ANNOTATION",
    "ObjectNames",
    "Pipeline",
    "SamplingState",
    "canonical",
    "default_operand_image",
    "digest",
    "gateway_endpoint",
    "labels",
    "meta",
    "nats_names",
    "object_names",
    "selector_labels",
]

MANAGED_BY = "gameplay-analytics-operator"
TEMPLATE_HASH_ANNOTATION = "analytics.gameplay.dev/template-hash"
CONFIG_HASH_ANNOTATION = "analytics.gameplay.dev/config-hash"
SECRETS_HASH_ANNOTATION = "analytics.gameplay.dev/secrets-hash"
IMAGE_REPOSITORY = "ghcr.io/gameplay-analytics/gameplay-analytics"


def default_operand_image() -> str:
    """The image of this operator's own release: pipelines that leave `spec.image` unset run
    it, so upgrading the operator rolls them onto the new release."""
    return f"{IMAGE_REPOSITORY}:{importlib.metadata.version('gameplay-analytics')}"


# The image for pipelines without `spec.image`: the operator process sets it from its settings
# (the chart passes its own image), before kopf starts the handlers that inherit it.
OPERAND_IMAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "OPERAND_IMAGE", default=None
)


def _operand_image() -> str:
    return OPERAND_IMAGE.get() or default_operand_image()


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    """An AnalyticsPipeline as the renderer needs it: where it lives, its parsed spec and the
    image to run when the spec names none."""

    name: str
    namespace: str
    spec: AnalyticsPipelineSpec
    default_image: str = dataclasses.field(default_factory=_operand_image)

    @property
    def image(self) -> str:
        return self.spec.image or self.default_image


@dataclasses.dataclass(frozen=True, slots=True)
class SamplingState:
    """The rules in force (heartbeat rate already applied) and the gateways' breaker config."""

    rules: CompiledRules
    breaker: BreakerSpec = dataclasses.field(default_factory=BreakerSpec)


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectNames:
    runtime_config: str
    sampling_config: str
    gateway: str
    aggregator: str


def object_names(name: str) -> ObjectNames:
    return ObjectNames(
        runtime_config=f"{name}-config",
        sampling_config=f"{name}-sampling",
        gateway=f"{name}-gateway",
        aggregator=f"{name}-aggregator",
    )


def gateway_endpoint(pipeline: Pipeline) -> str:
    """Where SDKs inside the cluster connect: the gateway Service's DNS name (PROTOCOL §1)."""
    gateway = object_names(pipeline.name).gateway
    return f"ws://{gateway}.{pipeline.namespace}.svc:{pipeline.spec.gateway.port}/ws"


def selector_labels(pipeline: str, component: str) -> dict[str, str]:
    """The labels a component's pods are selected by (never change: selectors are immutable)."""
    return {
        "app.kubernetes.io/name": "gameplay-analytics",
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/component": component,
    }


def nats_names(pipeline: Pipeline) -> PipelineNames:
    """The pipeline's stream, subjects, config bucket and consumer: derived from where it lives
    (`PipelineNames.for_pipeline`), each overridable in `spec.nats`; the sessions ledger's
    bucket always follows the pipeline."""
    derived = PipelineNames.for_pipeline(pipeline.namespace, pipeline.name)
    nats = pipeline.spec.nats
    return PipelineNames(
        stream=nats.stream or derived.stream,
        events_subject=nats.events_subject or derived.events_subject,
        dlq_subject=nats.dlq_subject or derived.dlq_subject,
        config_bucket=nats.config_bucket or derived.config_bucket,
        consumer=nats.consumer or derived.consumer,
        sessions_bucket=derived.sessions_bucket,
    )


def labels(pipeline: Pipeline, component: str) -> dict[str, str]:
    return {**selector_labels(pipeline.name, component), "app.kubernetes.io/managed-by": MANAGED_BY}


def meta(pipeline: Pipeline, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": pipeline.namespace, "labels": labels(pipeline, component)}


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(value: object) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:16]
