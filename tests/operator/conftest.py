"""Operator fixtures: kmock's Kubernetes emulator with our CRDs, and the real operator on it.

A temporary KUBECONFIG points both kopf and the `kubernetes` client at the emulator, so the
operator runs through its production entry point with no test hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import kubernetes
import pytest
import yaml

from gameplay_analytics.operator.runner import run_operator
from tests.operator.emulator import Emulator, declare_crd

CRDS = Path(__file__).resolve().parents[2] / "crds"
GROUP_VERSION = "analytics.gameplay.dev/v1alpha1"


@pytest.fixture
async def k8s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    async with Emulator() as emulator, kmock.Server(emulator):
        emulator.resources.load_bundled()
        for path in sorted(CRDS.glob("*.yaml")):
            declare_crd(emulator, yaml.safe_load(path.read_text()))
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emu",
            "clusters": [{"name": "emu", "cluster": {"server": str(emulator.url).rstrip("/")}}],
            "users": [{"name": "emu", "user": {"token": "fake"}}],
            "contexts": [
                {
                    "name": "emu",
                    "context": {"cluster": "emu", "user": "emu", "namespace": "default"},
                }
            ],
        }
        (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
        # kubernetes reads $KUBECONFIG once, at import time: patch its module-level default too.
        monkeypatch.setattr(
            kubernetes.config.kube_config,
            "KUBE_CONFIG_DEFAULT_LOCATION",
            str(tmp_path / "kubeconfig"),
        )
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield emulator


@pytest.fixture
def operator_metrics_port() -> int:
    from gameplay_analytics.local.services import free_port

    return free_port()


@pytest.fixture
async def operator(k8s: Emulator, operator_metrics_port: int) -> AsyncIterator[asyncio.Task[None]]:
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_operator(
            namespace="default",
            resync_seconds=1.0,
            peering=None,
            liveness_endpoint=None,
            ready_flag=ready,
            metrics_port=operator_metrics_port,
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    yield task
    task.cancel()  # not stop_flag: that waits 5 s for "hung" kmock server tasks
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def until(fn: Callable[[], Any], within: float = 10.0) -> Any:
    """Wait for `fn()` to be truthy; returns its value."""
    async with asyncio.timeout(within):
        while not (value := fn()):  # noqa: ASYNC110 - polling state kept elsewhere
            await asyncio.sleep(0.05)
        return value


def cr_url(plural: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP_VERSION}/namespaces/default/{plural}"
    return f"{base}/{name}" if name else base


def condition(obj: dict[str, Any] | None, kind: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c["type"] == kind:
            return dict(c)
    return {}


@pytest.fixture(autouse=True)
async def clean_config_bucket(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The nats-server is shared by the session: leave the local bucket's keys as we found
    them (absent), so that other tests' gateways start from the default rules, and remove the
    streams and buckets the operator made for this test's pipelines (ANALYTICS_<ns>_<name>)."""
    yield
    if "nats_url" not in request.fixturenames:
        return
    import nats

    from gameplay_analytics.contract import messages
    from tests.conftest import admin_url

    nc = await nats.connect(admin_url(str(request.getfixturevalue("nats_server").url)))
    try:
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            kv = await js.key_value(messages.KV_BUCKET)
            for key in (messages.KV_SAMPLING_KEY, messages.KV_SCHEMAS_KEY, "breaker"):
                with contextlib.suppress(Exception):
                    await kv.delete(key)
        for info in await js.streams_info():
            name = info.config.name
            if name.startswith(("ANALYTICS_", "KV_analytics-config_")):
                await js.delete_stream(name)
    finally:
        await nc.close()
