"""A checker for the `restricted` Pod Security Standard, written from its specification
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, Kubernetes 1.29+), for
the chart and operator tests: every pod either renders must pass it.

Each rule is named as in the specification; `violations` returns `rule: where: what` strings.
The restricted profile is the baseline profile plus its own rules, so both are checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["pod_templates", "problems", "read_only_root_gaps", "violations"]

Doc = dict[str, Any]

# Baseline "Capabilities": what may be added at all; restricted narrows it to NET_BIND_SERVICE.
_RESTRICTED_ADD = {"NET_BIND_SERVICE"}
# Baseline "Sysctls": the safe set.
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Restricted "Volume Types": only these sources.
_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SELINUX_TYPES = {
    None,
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

# Where a workload keeps its pod template.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_templates(objects: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(`Kind/name`, pod template or Pod) of every object that runs pods."""
    for obj in objects:
        name = f"{obj['kind']}/{obj.get('metadata', {}).get('name')}"
        if obj["kind"] == "Pod":
            yield name, obj
        path = _TEMPLATE_PATHS.get(obj["kind"])
        if path is not None:
            node: Any = obj
            for key in path:
                node = node[key]
            yield name, node


def _containers(spec: Doc) -> Iterator[tuple[str, Doc]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            yield f"{field}[{c.get('name')}]", c


def violations(pod: Doc) -> list[str]:
    """Every rule of the restricted profile (baseline included) that `pod` (a Pod or a pod
    template: `metadata` + `spec`) breaks."""
    spec: Doc = pod.get("spec") or {}
    annotations: Doc = (pod.get("metadata") or {}).get("annotations") or {}
    psc: Doc = spec.get("securityContext") or {}
    found: list[str] = []

    def fail(rule: str, where: str, what: str) -> None:
        found.append(f"{rule}: {where}: {what}")

    # -- baseline -----------------------------------------------------------------------------
    for ns in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(ns):
            fail("Host Namespaces", "spec", f"{ns} is true")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        fail("HostProcess", "spec.securityContext", "windowsOptions.hostProcess is true")
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            fail("HostPath Volumes", f"volumes[{v.get('name')}]", "hostPath")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            fail("Sysctls", "spec.securityContext", f"unsafe sysctl {sysctl.get('name')}")
    for key, value in annotations.items():
        if key.startswith(_APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            fail("AppArmor", f"annotation {key}", value)
    _check_profile_and_selinux(fail, "spec.securityContext", psc)

    # -- restricted: volume types -------------------------------------------------------------
    for v in spec.get("volumes") or []:
        sources = set(v) - {"name"}
        if not sources <= _VOLUME_TYPES:
            fail("Volume Types", f"volumes[{v.get('name')}]", f"{sorted(sources - _VOLUME_TYPES)}")

    pod_non_root = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_non_root is False:
        fail("Running as Non-root", "spec.securityContext", "runAsNonRoot is false")
    if psc.get("runAsUser") == 0:
        fail("Running as Non-root user", "spec.securityContext", "runAsUser is 0")
    if pod_seccomp is not None and pod_seccomp not in ("RuntimeDefault", "Localhost"):
        fail("Seccomp", "spec.securityContext", f"seccompProfile.type {pod_seccomp}")

    for where, c in _containers(spec):
        sc: Doc = c.get("securityContext") or {}
        caps: Doc = sc.get("capabilities") or {}
        # baseline
        if sc.get("privileged"):
            fail("Privileged Containers", where, "privileged is true")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            fail("HostProcess", where, "windowsOptions.hostProcess is true")
        for port in c.get("ports") or []:
            if port.get("hostPort", 0) != 0:
                fail("Host Ports", where, f"hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            fail("/proc Mount Type", where, f"procMount {sc['procMount']}")
        _check_profile_and_selinux(fail, where, sc)
        # restricted
        if sc.get("allowPrivilegeEscalation") is not False:
            fail("Privilege Escalation", where, "allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            fail("Running as Non-root", where, "runAsNonRoot is not true (pod or container)")
        if sc.get("runAsUser") == 0:
            fail("Running as Non-root user", where, "runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            fail("Seccomp", where, f"seccompProfile.type {seccomp} (pod or container)")
        if "ALL" not in (caps.get("drop") or []):
            fail("Capabilities", where, "capabilities.drop does not hold ALL")
        added = set(caps.get("add") or []) - _RESTRICTED_ADD
        if added:
            fail("Capabilities", where, f"adds {sorted(added)}")
    return found


def _check_profile_and_selinux(fail: Any, where: str, sc: Doc) -> None:
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        fail("AppArmor", where, f"appArmorProfile.type {apparmor}")
    selinux: Doc = sc.get("seLinuxOptions") or {}
    if selinux.get("type") not in _SELINUX_TYPES:
        fail("SELinux", where, f"seLinuxOptions.type {selinux.get('type')}")
    for field in ("user", "role"):
        if selinux.get(field):
            fail("SELinux", where, f"seLinuxOptions.{field} is set")
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        fail("Seccomp", where, "seccompProfile.type Unconfined")


def read_only_root_gaps(pod: Doc) -> list[str]:
    """Containers without a read-only root filesystem (not a PSS rule; our own hardening)."""
    spec: Doc = pod.get("spec") or {}
    return [
        where
        for where, c in _containers(spec)
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True
    ]


def problems(objects: list[Doc]) -> dict[str, list[str]]:
    """`Kind/name` -> its restricted-profile violations and writable root filesystems, for the
    objects that have any (empty: every pod passes)."""
    report = {
        name: violations(pod) + [f"readOnlyRootFilesystem: {w}" for w in read_only_root_gaps(pod)]
        for name, pod in pod_templates(objects)
    }
    return {name: found for name, found in report.items() if found}
