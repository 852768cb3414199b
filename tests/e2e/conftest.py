"""End-to-end fixtures against a real cluster prepared by scripts/kind-e2e.sh.

Every test here skips, with the reason, when no cluster is reachable (no kubectl, no kubeconfig,
`kubectl cluster-info` failing) or when the e2e pipeline is not deployed. Under the script
(E2E_REQUIRED=1) those conditions fail instead, so a broken cluster can never pass as skipped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

NAMESPACE = os.environ.get("E2E_NAMESPACE", "analytics-e2e")
PIPELINE = os.environ.get("E2E_PIPELINE", "e2e")
WS_URL = os.environ.get("E2E_WS_URL", "ws://127.0.0.1:8765/ws")
POSTGRES_SERVICE = "svc/postgres"
KUBECTL_TIMEOUT_S = 30


def kubectl(*args: str, stdin: str | None = None) -> str:
    """Run kubectl in the e2e namespace; raise with its stderr on failure."""
    done = subprocess.run(
        ["kubectl", "-n", NAMESPACE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def kubectl_json(*args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(*args, "-o", "json")))


def _unavailable() -> str | None:
    """Why no e2e cluster can be used here, or None when it can."""
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    kubeconfig = os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config"))
    if not any(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p):
        return f"no kubeconfig ({kubeconfig})"
    try:
        subprocess.run(
            ["kubectl", "cluster-info", "--request-timeout=5s"],
            capture_output=True,
            timeout=15,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return "`kubectl cluster-info` failed: no cluster is reachable"
    try:
        kubectl("get", f"analyticspipeline/{PIPELINE}")
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return f"AnalyticsPipeline {NAMESPACE}/{PIPELINE} not found ({exc}); run make kind-e2e"
    return None


@pytest.fixture(scope="session")
def cluster() -> None:
    reason = _unavailable()
    if reason is None:
        return
    if os.environ.get("E2E_REQUIRED") == "1":
        pytest.fail(f"E2E_REQUIRED=1 but {reason}")
    pytest.skip(f"end-to-end tests need the kind cluster of scripts/kind-e2e.sh: {reason}")


@pytest.fixture(scope="session")
def jwt_secret(cluster: None) -> str:
    """The pipeline's JWT secret, read from the Secret it references."""
    pipeline = kubectl_json("get", f"analyticspipeline/{PIPELINE}")
    ref = pipeline["spec"].get("gateway", {}).get("jwtSecretRef") or {
        "name": "analytics-jwt",
        "key": "secret",
    }
    secret = kubectl_json("get", f"secret/{ref['name']}")
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_dsn(cluster: None) -> Iterator[str]:
    """The in-cluster Postgres through `kubectl port-forward`, stopped after the session."""
    env = kubectl_json("get", "secret/postgres-e2e")["data"]
    user, password, database = (
        base64.b64decode(env[k]).decode()
        for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", "-n", NAMESPACE, "port-forward", POSTGRES_SERVICE, f"{port}:5432"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if forward.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"port-forward to {POSTGRES_SERVICE} failed")
            time.sleep(0.5)
        yield f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)
