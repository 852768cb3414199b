"""Every pod the operator renders meets the restricted Pod Security Standard (tests/operator/
pss.py, written from the specification), and the checker itself catches each rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.operator import pss
from tests.operator.test_manifests import FULL, render


@pytest.mark.parametrize("spec", [{}, FULL], ids=["minimal", "full"])
def test_every_operator_pod_is_restricted(spec: dict[str, Any]) -> None:
    objects = render(spec, monitoring=True)
    assert {name for name, _ in pss.pod_templates(objects)} == {
        "Deployment/p-gateway",
        "Deployment/p-aggregator",
        "CronJob/p-quality",
    } | ({"CronJob/p-daily-insights"} if "dailyInsights" in spec else set())
    assert pss.problems(objects) == {}


def test_the_checker_names_each_broken_rule() -> None:
    bad = {
        "metadata": {
            "annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
        },
        "spec": {
            "hostNetwork": True,
            "securityContext": {
                "runAsUser": 0,
                "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                "seLinuxOptions": {"user": "root"},
            },
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [
                {
                    "name": "c",
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                    "securityContext": {
                        "privileged": True,
                        "procMount": "Unmasked",
                        "capabilities": {"add": ["SYS_ADMIN"]},
                        "seccompProfile": {"type": "Unconfined"},
                    },
                }
            ],
        },
    }
    rules = {v.split(":")[0] for v in pss.violations(bad)}
    assert rules == {
        "AppArmor",
        "Capabilities",
        "Host Namespaces",
        "Host Ports",
        "HostPath Volumes",
        "Privilege Escalation",
        "Privileged Containers",
        "Running as Non-root",
        "Running as Non-root user",
        "SELinux",
        "Seccomp",
        "Sysctls",
        "Volume Types",
        "/proc Mount Type",
    }
    # The pod-level settings count for every container that does not override them.
    good_pod_level = {
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    },
                }
            ],
        }
    }
    assert pss.violations(good_pod_level) == []
