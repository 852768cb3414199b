"""The Kubernetes calls the operator makes, each one listed in `rbac.REQUIRED_RULES`.

A thin layer on the event loop (aiohttp, as kopf uses; no threads), configured from the
official client's loaded configuration: get, list, create, merge-patch, status-patch and
delete by kind, keyword-only, so that every call goes through one table of resources and
none can slip past the RBAC table unnoticed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import kubernetes

from gameplay_analytics.operator.models import GROUP, VERSION

__all__ = [
    "RESOURCES",
    "ApiError",
    "Resource",
    "crd_exists",
    "create",
    "delete",
    "ensure",
    "get",
    "is_subset",
    "list_objects",
    "patch",
    "patch_status",
]

REQUEST_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


RESOURCES: dict[str, Resource] = {
    "ConfigMap": Resource("", "v1", "configmaps"),
    "Secret": Resource("", "v1", "secrets"),
    "Service": Resource("", "v1", "services"),
    "Deployment": Resource("apps", "v1", "deployments"),
    "PodDisruptionBudget": Resource("policy", "v1", "poddisruptionbudgets"),
    "CronJob": Resource("batch", "v1", "cronjobs"),
    "HorizontalPodAutoscaler": Resource("autoscaling", "v2", "horizontalpodautoscalers"),
    "ServiceMonitor": Resource("monitoring.coreos.com", "v1", "servicemonitors"),
    "PrometheusRule": Resource("monitoring.coreos.com", "v1", "prometheusrules"),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies"),
    "CustomResourceDefinition": Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    "AnalyticsPipeline": Resource(GROUP, VERSION, "analyticspipelines"),
    "SamplingPolicy": Resource(GROUP, VERSION, "samplingpolicies"),
    "SchemaVersion": Resource(GROUP, VERSION, "schemaversions"),
}


class ApiError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@functools.cache
def _ssl_context(
    ca_file: str | None, cert_file: str | None, key_file: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


async def _request(
    method: str, path: str, *, body: Any = None, content_type: str | None = None
) -> Any:
    """One call on the event loop (aiohttp), with the credentials the `kubernetes` client was
    configured with (kubeconfig or in-cluster; a rotating service-account token is re-read by
    its refresh hook on each call)."""
    config = kubernetes.client.Configuration.get_default_copy()
    headers = {"Accept": "application/json"}
    token = config.get_api_key_with_prefix("authorization")
    if token:
        headers["Authorization"] = token
    if content_type:
        headers["Content-Type"] = content_type
    ssl_option: ssl.SSLContext | bool = (
        _ssl_context(config.ssl_ca_cert, config.cert_file, config.key_file)
        if config.verify_ssl
        else False
    )
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                method,
                config.host.rstrip("/") + path,
                headers=headers,
                data=None if body is None else json.dumps(body),
                ssl=ssl_option,
            ) as response,
        ):
            raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(0, f"{method} {path}: {exc or type(exc).__name__}") from None
    if not 200 <= response.status < 300:
        raise ApiError(response.status, raw.decode(errors="replace")[:500])
    return json.loads(raw) if raw else None


async def get(*, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        found: dict[str, Any] = await _request("GET", RESOURCES[kind].path(namespace, name))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


async def list_objects(*, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    result = await _request("GET", RESOURCES[kind].path(namespace))
    items: list[dict[str, Any]] = list((result or {}).get("items") or [])
    return items


async def create(*, obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    created: dict[str, Any] = await _request(
        "POST", RESOURCES[obj["kind"]].path(meta.get("namespace")), body=dict(obj)
    )
    return created


async def patch(
    *, kind: str, namespace: str | None, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSON merge patch of the object."""
    patched: dict[str, Any] = await _request(
        "PATCH",
        RESOURCES[kind].path(namespace, name),
        body=dict(body),
        content_type="application/merge-patch+json",
    )
    return patched


async def patch_status(
    *, kind: str, namespace: str, name: str, status: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSON merge patch of the status subresource (None values delete fields)."""
    patched: dict[str, Any] = await _request(
        "PATCH",
        RESOURCES[kind].path(namespace, name) + "/status",
        body={"status": dict(status)},
        content_type="application/merge-patch+json",
    )
    return patched


async def delete(*, kind: str, namespace: str | None, name: str) -> bool:
    """Delete the object (its dependents in the background); False when it was not there."""
    try:
        await _request("DELETE", RESOURCES[kind].path(namespace, name))
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


async def crd_exists(*, name: str) -> bool:
    try:
        return await get(kind="CustomResourceDefinition", namespace=None, name=name) is not None
    except ApiError as exc:
        if exc.status == 403:
            return False
        raise


async def ensure(*, obj: Mapping[str, Any]) -> str:
    """Create the object, or merge-patch it back when it drifted from `obj`.

    Returns "created", "repaired" or "unchanged". Drift is any field we set that differs in
    the live object (fields the API server or other controllers add are left alone), so a
    hand edit or a deletion is undone and an unchanged spec makes no write at all.
    """
    meta = obj["metadata"]
    kind, namespace, name = obj["kind"], meta.get("namespace"), meta["name"]
    live = await get(kind=kind, namespace=namespace, name=name)
    if live is None:
        try:
            await create(obj=obj)
        except ApiError as exc:
            if exc.status != 409:  # created meanwhile: the next reconcile compares it
                raise
        return "created"
    if is_subset(obj, live):
        return "unchanged"
    await patch(kind=kind, namespace=namespace, name=name, body=obj)
    return "repaired"


def is_subset(wanted: Any, live: Any) -> bool:
    """Whether every field of `wanted` has the same value in `live` (lists item by item)."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and is_subset(value, live[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(wanted) == len(live)
            and all(is_subset(w, item) for w, item in zip(wanted, live, strict=True))
        )
    return bool(wanted == live)
