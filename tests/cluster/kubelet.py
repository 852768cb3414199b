"""A small local "kubelet" for the cluster-in-a-box: runs the Deployments the operator creates
on kmock's emulator as real local processes, and writes their status back.

Test infrastructure, not product. What it does, in the manner of the real thing:
- each replica of a Deployment becomes a process started from the container's command and args
  (`gameplay-analytics X` runs as `python -m gameplay_analytics.cli X`, so the worktree's code
  runs), with the rendered environment: `value`s, `valueFrom` ConfigMap and Secret keys;
- ConfigMap and Secret volumes are written as files under a temp root per pod, emptyDir and
  PVC volumes are temp folders; environment values naming a mount path are pointed there;
- a pod has no network namespace of its own, so each container port gets a free host port,
  and an environment value equal to a container port (`…_PORT`) is rewritten to it;
- cluster DNS is a table (`dns`): `host:port` pairs in environment values are rewritten, and
  `endpoints()` answers what a Service would route to;
- readiness is the container's httpGet readinessProbe; the Deployment's status gets replicas,
  readyReplicas, updatedReplicas, availableReplicas, observedGeneration and conditions;
- Deployments whose owners are gone count as deleted (the garbage collector);
- a changed pod template (the operator's config or Secret checksums) replaces the pods (a
  recreate, not a surge: enough to see a rollout); a pod that exits is restarted with a
  backoff, and after `crash_limit` exits the Deployment reports Progressing=False with
  reason ProgressDeadlineExceeded and the pod's last log lines (CrashLoopBackOff).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gameplay_analytics.local.services import free_port
from tests.operator.emulator import Emulator

__all__ = ["RUNNING", "Kubelet", "Pod"]

DEPLOYMENTS = "apps/v1/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
_BASE_ENV = ("PATH", "HOME", "PYTHONPATH", "LANG", "TMPDIR")
RUNNING: dict[str, list[Pod]] = {}  # namespace -> pods of the live kubelet, for diagnostics


@dataclasses.dataclass
class Pod:
    """One replica: its process, the template it runs, its host ports by container port."""

    name: str
    namespace: str
    deployment: str
    template_hash: str
    labels: dict[str, str]
    ports: dict[str, int]  # port name (or number as text) -> host port
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    readiness: dict[str, Any] | None
    restarts: int = 0
    ready: bool = False
    next_start: float = 0.0

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Kubelet:
    """Run with `async with Kubelet(k8s, dns={...}) as kubelet:`; it polls the emulator."""

    def __init__(
        self,
        k8s: Emulator,
        *,
        dns: dict[str, str],
        root: Path | None = None,
        interval_s: float = 0.3,
        crash_limit: int = 3,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.k8s, self.dns = k8s, dns
        self.root = root or Path(tempfile.mkdtemp(prefix="kubelet-"))
        self.interval_s, self.crash_limit = interval_s, crash_limit
        self.extra_env = extra_env or {}
        self.pods: dict[tuple[str, str], list[Pod]] = {}  # (namespace, deployment) -> pods
        self.started = 0  # pods ever started: a rollout or a restart shows here
        self._task: asyncio.Task[None] | None = None
        self._status: dict[tuple[str, str], dict[str, Any]] = {}

    async def __aenter__(self) -> Kubelet:
        self._task = asyncio.create_task(self._run(), name="kubelet")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pods = [pod for pods in self.pods.values() for pod in pods]
        await asyncio.gather(*(asyncio.to_thread(_stop, pod) for pod in pods))

    def endpoints(self, namespace: str, service: str, port: str) -> list[int]:
        """The host ports of the ready pods a Service selects, for its named target port."""
        svc = self.k8s.get_obj("v1/services", namespace, service)
        if svc is None:
            return []
        selector = svc["spec"].get("selector") or {}
        return [
            pod.ports[port]
            for (ns, _), pods in self.pods.items()
            if ns == namespace
            for pod in pods
            if pod.ready and port in pod.ports and _selects(selector, pod.labels)
        ]

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a test utility: say it, keep going
                print(f"kubelet: sync failed: {err!r}", file=sys.stderr)
            await asyncio.sleep(self.interval_s)

    async def _sync(self) -> None:
        objects = [o for o in list(self.k8s.objects.values()) if not o.deleted]
        uids = {(o.raw.get("metadata") or {}).get("uid") for o in objects}
        wanted = {
            (key[1], key[2]): obj.raw
            for key, obj in list(self.k8s.objects.items())
            if not obj.deleted
            and obj.raw.get("kind") == "Deployment"
            and _owned_by_any(obj.raw, uids)
        }
        for key in [k for k in self.pods if k not in wanted]:  # Deployment deleted
            for pod in self.pods.pop(key):
                await asyncio.to_thread(_stop, pod)
        for (namespace, name), deployment in wanted.items():
            pods = self.pods.setdefault((namespace, name), [])
            await asyncio.to_thread(self._reconcile, namespace, name, deployment, pods)
            await self._write_status(namespace, name, deployment, pods)
        RUNNING.clear()
        for (namespace, _), pods in self.pods.items():
            RUNNING.setdefault(namespace, []).extend(pods)

    def _reconcile(
        self, namespace: str, name: str, deployment: dict[str, Any], pods: list[Pod]
    ) -> None:
        spec = deployment["spec"]
        template = spec["template"]
        wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:12]
        for pod in [p for p in pods if p.template_hash != digest]:  # rollout: recreate
            _stop(pod)
            pods.remove(pod)
        while len(pods) > wanted:
            _stop(pods.pop())
        while len(pods) < wanted:
            pods.append(self._start(namespace, name, template, digest, index=len(pods)))
        now = time.monotonic()
        for pod in pods:
            if pod.proc.poll() is not None:  # exited: CrashLoopBackOff-like restart
                pod.ready = False
                if pod.next_start == 0.0:
                    pod.restarts += 1
                    pod.next_start = now + min(2.0**pod.restarts, 10.0)
                elif now >= pod.next_start:
                    pod.proc = self._spawn(pod, template)
                    pod.next_start = 0.0
                continue
            pod.ready = _probe(pod)

    def _start(
        self, namespace: str, name: str, template: dict[str, Any], digest: str, *, index: int
    ) -> Pod:
        pod_name = f"{name}-{digest[:6]}-{index}-{self.started}"
        root = self.root / namespace / pod_name
        root.mkdir(parents=True, exist_ok=True)
        (container,) = template["spec"]["containers"]
        ports = {}
        for port in container.get("ports") or ():
            host = free_port()
            ports[str(port["containerPort"])] = host
            if port.get("name"):
                ports[port["name"]] = host
        pod = Pod(
            name=pod_name, namespace=namespace, deployment=name, template_hash=digest,
            labels=dict(template["metadata"].get("labels") or {}), ports=ports, root=root,
            proc=None,  # type: ignore[arg-type]  # set just below
            log=root / "container.log", readiness=container.get("readinessProbe"),
        )  # fmt: skip
        pod.proc = self._spawn(pod, template)
        self.started += 1
        return pod

    def _spawn(self, pod: Pod, template: dict[str, Any]) -> subprocess.Popen[bytes]:
        (container,) = template["spec"]["containers"]
        mounts = self._mount(pod, template, container)
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.update(self.extra_env)
        for item in container.get("env") or ():
            value = self._env_value(pod.namespace, item)
            if value is not None:
                env[item["name"]] = self._localise(value, pod, mounts)
        argv = [*container.get("command", []), *container.get("args", [])]
        if argv and argv[0] == "gameplay-analytics":
            argv = [sys.executable, "-m", "gameplay_analytics.cli", *argv[1:]]
        with pod.log.open("ab") as log:
            return subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=pod.root, start_new_session=True,
            )  # fmt: skip

    def _mount(
        self, pod: Pod, template: dict[str, Any], container: dict[str, Any]
    ) -> dict[str, Path]:
        volumes = {v["name"]: v for v in template["spec"].get("volumes") or ()}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or ():
            target = pod.root / "fs" / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = target
            volume = volumes.get(mount["name"]) or {}
            for name, data in self._volume_files(pod.namespace, volume).items():
                (target / name).write_bytes(data)
        return mounts

    def _volume_files(self, namespace: str, volume: dict[str, Any]) -> dict[str, bytes]:
        if "configMap" in volume:
            cm = self.k8s.get_obj("v1/configmaps", namespace, volume["configMap"]["name"]) or {}
            return {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        if "secret" in volume:
            return dict(self._secret(namespace, volume["secret"]["secretName"]))
        return {}  # emptyDir, PVC: an empty folder

    def _secret(self, namespace: str, name: str) -> dict[str, bytes]:
        secret = self.k8s.get_obj("v1/secrets", namespace, name) or {}
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
        return data

    def _env_value(self, namespace: str, item: dict[str, Any]) -> str | None:
        if "value" in item:
            return str(item["value"])
        source = item.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = self.k8s.get_obj("v1/configmaps", namespace, ref["name"]) or {}
            value = (cm.get("data") or {}).get(ref["key"])
            return None if value is None else str(value)
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            raw = self._secret(namespace, ref["name"]).get(ref["key"])
            return None if raw is None else raw.decode()
        return None

    def _localise(self, value: str, pod: Pod, mounts: dict[str, Path]) -> str:
        for address, local in self.dns.items():
            value = value.replace(address, local)
        if value in pod.ports:  # a port the container binds: its host port
            return str(pod.ports[value])
        for path, target in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if value == path or value.startswith(path.rstrip("/") + "/"):
                return str(target) + value[len(path.rstrip("/")) :]
        return value

    async def _write_status(
        self, namespace: str, name: str, deployment: dict[str, Any], pods: list[Pod]
    ) -> None:
        generation = deployment["metadata"].get("generation", 1)
        ready = sum(p.ready for p in pods)
        crashed = [p for p in pods if p.restarts >= self.crash_limit]
        progressing = (
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": f"pod {crashed[0].name} CrashLoopBackOff ({crashed[0].restarts} restarts): "
             + crashed[0].tail(5)[-400:]}
            if crashed
            else {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        )  # fmt: skip
        wanted = len(pods)
        status = {
            "observedGeneration": generation,
            "replicas": wanted,
            "updatedReplicas": wanted,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": "True" if ready == wanted else "False"},
                progressing,
            ],
        }
        if self._status.get((namespace, name)) == status:
            return
        url = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"
        response = await self.k8s.patch(url, json={"status": status}, headers=MERGE)
        if response.status == 200:
            self._status[namespace, name] = status


def _owned_by_any(obj: dict[str, Any], uids: set[Any]) -> bool:
    """The garbage collector's view: an object whose owners are all gone is gone too."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return not owners or any(o.get("uid") in uids for o in owners)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _probe(pod: Pod) -> bool:
    get = (pod.readiness or {}).get("httpGet")
    if not get:
        return True
    port = pod.ports.get(str(get["port"]))
    if port is None:
        return False
    url = f"http://127.0.0.1:{port}{get.get('path', '/')}"
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _stop(pod: Pod) -> None:
    """SIGTERM, as a kubelet would, then SIGKILL after a grace period."""
    if pod.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.proc.pid, signal.SIGTERM)
        try:
            pod.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.proc.pid, signal.SIGKILL)
            pod.proc.wait()
