"""The image, the kind cluster and the CI workflow, checked without Docker or a cluster:
parsed, and checked for what they must contain (the image is built in the kind workflow)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.chart import support

ROOT = support.ROOT
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cc)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def _parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): continuation lines joined, comments dropped."""
    logical, buffer = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m[1], m[0]), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif not stages and instruction == "ARG":
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, rest))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _parse_dockerfile((ROOT / "Dockerfile").read_text())[1]


def test_dockerfile_is_multi_stage_on_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(s.base == "python:3.11-slim" for s in stages)
    builder, final = stages[0], stages[-1]
    assert builder.name
    copied = [a for a in final.args("COPY") if a.startswith(f"--from={builder.name}")]
    assert copied and "/opt/venv" in copied[0], "the final stage takes the builder's virtualenv"
    assert any("pip wheel" in r for r in builder.args("RUN")), "the builder builds a wheel"


def test_final_stage_runs_as_non_root_without_compilers(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.args("USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root uid (runAsNonRoot can check it)"
    for run in final.args("RUN"):
        assert not COMPILERS.search(run), f"a compiler in the final stage: {run}"


def test_entrypoint_is_the_console_script_and_schemas_are_shipped(stages: list[Stage]) -> None:
    final = stages[-1]
    (entrypoint,) = final.args("ENTRYPOINT")
    assert json.loads(entrypoint) == ["gameplay-analytics"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "gameplay-analytics" in scripts
    env = " ".join(final.args("ENV"))
    match = re.search(r"GAMEPLAY_ANALYTICS_SCHEMAS_DIR=(\S+)", env)
    assert match, "GAMEPLAY_ANALYTICS_SCHEMAS_DIR is set in the final stage"
    assert any(c.split()[0].rstrip("/") == "schemas" and match[1] in c for c in final.args("COPY"))


def test_dockerignore_keeps_the_build_context_small_but_complete() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    assert not {"gameplay_analytics", "schemas", "pyproject.toml", "README.md"} & ignored


def test_command_per_deployment_exists_in_the_cli() -> None:
    from gameplay_analytics import cli

    for command in ("operator", "gateway", "aggregator"):
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0


def _workflow() -> dict[str, Any]:
    (path,) = (ROOT / ".github" / "workflows").glob("ci.y*ml")
    return yaml.safe_load(path.read_text())


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_ci_workflow_runs_tests_schema_gate_and_kind_e2e() -> None:
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on:` as True
    assert {"push", "pull_request"} <= set(triggers)
    jobs = workflow["jobs"]
    assert "make test" in _runs(jobs["test"])
    assert "apt-get install -y -qq prometheus" in _runs(jobs["test"])
    assert "make check-analytics-schema" in _runs(jobs["schema"])
    assert "make kind-e2e" in _runs(jobs["kind-e2e"])
    for job in jobs.values():
        assert job["runs-on"].startswith("ubuntu")
        python = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python")]
        assert python and str(python[0]["with"]["python-version"]) == "3.11"
    uses = [s.get("uses", "") for s in jobs["kind-e2e"]["steps"]]
    assert any(u.startswith("helm/kind-action") for u in uses)
    assert any(u.startswith("azure/setup-helm") for u in uses)


def test_kind_cluster_has_a_control_plane_two_workers_and_the_gateway_port() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = sorted(node["role"] for node in config["nodes"])
    assert roles == ["control-plane", "worker", "worker"]
    mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(30765, 8765)}
    script = (ROOT / "scripts" / "kind-e2e.sh").read_text()
    assert "NODE_PORT=30765" in script and "GATEWAY_PORT=8765" in script


def test_kind_e2e_script_covers_the_whole_run_and_tears_down() -> None:
    path = ROOT / "scripts" / "kind-e2e.sh"
    assert path.stat().st_mode & 0o111, "executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    script = path.read_text()
    for step in (
        "set -euo pipefail",
        "trap cleanup EXIT",
        "kind create cluster",
        "--config kind-config.yaml",
        "docker build",
        "kind load docker-image",
        "nats/nats",
        "config.jetstream.enabled=true",
        "config.cluster.replicas=3",
        "postgres.yaml",
        "helm upgrade --install",
        "--dry-run=server -f examples/",
        "--for=condition=Ready",
        "pytest tests/e2e",
        "E2E_REQUIRED=1",
        "kind delete cluster",
    ):
        assert step in script, step


def test_sync_crds_script_reports_the_chart_in_sync() -> None:
    if not list((ROOT / "crds").glob("*.yaml")):
        pytest.skip("crds/ is empty: the CRDs are generated by the operator work (issue 5)")
    if shutil.which("diff") is None:
        pytest.skip("diff is not installed")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "sync-crds.sh"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
