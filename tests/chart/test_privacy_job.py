"""The privacy-request Job template (docs/governance): a valid Kubernetes Job for the newest
supported version, whose arguments the CLI accepts, that reads the player UUID from a mounted
Secret and from nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

from gameplay_analytics.cli import _parser
from tests.chart.support import k8s_errors, load_yaml_docs, newest_kube_version

JOB = Path(__file__).resolve().parents[2] / "docs/governance/privacy-request-job.yaml"


def test_the_job_template_is_a_valid_job() -> None:
    docs = load_yaml_docs(JOB)
    assert [d["kind"] for d in docs] == ["Job"]
    assert k8s_errors(docs, newest_kube_version()) == []


def test_the_cli_accepts_its_arguments_and_the_uuid_comes_from_the_secret() -> None:
    (job,) = load_yaml_docs(JOB)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = _parser().parse_args(container["args"])
    assert args.player is None and args.player_file.startswith("/var/run/privacy-request/")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "secret" in volumes[mounts["/var/run/privacy-request"]]
    uuid_like = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
    assert not uuid_like.search(JOB.read_text())
