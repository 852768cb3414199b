"""What the pods trust (operator/trust.py): the gateways' token keys, iss/aud and trusted
proxies from spec.gateway, TLS to NATS and Postgres from Secrets, each in the components that
need it, and a rotation of any of those Secrets rolls exactly the pods that read it."""

from __future__ import annotations

from typing import Any

from gameplay_analytics.operator import manifests, policy
from gameplay_analytics.operator.manifests import Pipeline, desired_objects
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from tests.operator.test_manifests import SCHEMAS, by_kind, container, env, render
from tests.operator.test_network_policies import HARDENED


def _pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    o = by_kind(objects)
    kind = "CronJob" if name.endswith(("quality", "insights")) else "Deployment"
    template = o[kind, name]["spec"]
    template = template["jobTemplate"]["spec"] if kind == "CronJob" else template
    spec: dict[str, Any] = template["template"]["spec"]
    return spec


def _mounts(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """volume name -> (mount path, Secret)"""
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    (c,) = pod["containers"]
    return {
        m["name"]: (m["mountPath"], secrets[m["name"]])
        for m in c["volumeMounts"]
        if m["name"] in secrets and m["readOnly"]
    }


def test_jwks_replaces_the_hs256_secret_and_sets_iss_aud_and_proxies() -> None:
    variables = env(container(render(HARDENED), "p-gateway"))
    assert "GAMEPLAY_ANALYTICS_JWT_SECRET" not in variables
    assert variables["GAMEPLAY_ANALYTICS_JWT_JWKS_URL"] == (
        "https://login.example.com/.well-known/jwks.json"
    )
    assert variables["GAMEPLAY_ANALYTICS_JWT_ISSUER"] == "https://login.example.com/"
    assert variables["GAMEPLAY_ANALYTICS_JWT_AUDIENCE"] == "gameplay-analytics"
    assert variables["GAMEPLAY_ANALYTICS_TRUSTED_PROXIES"] == "10.0.0.0/8"
    assert variables["GAMEPLAY_ANALYTICS_PROXY_PROTOCOL"] == "true"


def test_pem_keys_come_from_a_mounted_secret() -> None:
    spec = {"gateway": {"auth": {"publicKeysSecretRef": {"name": "login-keys", "key": "k.pem"}}}}
    objects = render(spec)
    variables = env(container(objects, "p-gateway"))
    assert "GAMEPLAY_ANALYTICS_JWT_SECRET" not in variables
    path = variables["GAMEPLAY_ANALYTICS_JWT_PUBLIC_KEYS_FILE"]
    assert _mounts(_pod(objects, "p-gateway"))["jwt-keys"] == (path.rsplit("/", 1)[0], "login-keys")
    assert path.endswith("/k.pem")
    assert "jwt-keys" not in _mounts(_pod(objects, "p-aggregator"))


def test_without_auth_the_development_secret_and_no_proxies() -> None:
    variables = env(container(render({}), "p-gateway"))
    assert variables["GAMEPLAY_ANALYTICS_JWT_SECRET"] == {
        "secretKeyRef": {"name": "analytics-jwt", "key": "secret"}
    }
    assert not {"GAMEPLAY_ANALYTICS_JWT_JWKS_URL", "GAMEPLAY_ANALYTICS_TRUSTED_PROXIES"} & set(
        variables
    )


def test_tls_reaches_each_component_that_uses_the_server() -> None:
    objects = render(HARDENED)
    for name in ("p-gateway", "p-aggregator", "p-quality"):
        pod = _pod(objects, name)
        (c,) = pod["containers"]
        variables = env(c)
        mounts = _mounts(pod)
        nats_dir, secret = mounts["nats-tls"]
        assert secret == "analytics-nats-tls"
        assert variables["GAMEPLAY_ANALYTICS_NATS_TLS_CA"] == f"{nats_dir}/ca.crt"
        assert variables["GAMEPLAY_ANALYTICS_NATS_TLS_CERT"] == f"{nats_dir}/tls.crt"
        assert variables["GAMEPLAY_ANALYTICS_NATS_TLS_KEY"] == f"{nats_dir}/tls.key"
        if name == "p-gateway":  # no Postgres there
            assert "PGSSLMODE" not in variables and "postgres-tls" not in mounts
            continue
        pg_dir, ca_secret = mounts["postgres-tls"]
        assert ca_secret == "analytics-postgres-ca"
        assert variables["PGSSLMODE"] == "verify-full"
        assert variables["PGSSLROOTCERT"] == f"{pg_dir}/ca.crt"


def test_a_rotated_ca_or_key_secret_rolls_the_pods_that_read_it() -> None:
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec.model_validate(HARDENED))
    state = policy.sampling_state(None)

    def hashes(**secrets: dict[str, str]) -> dict[str, str]:
        objects = by_kind(desired_objects(pipeline, state, SCHEMAS, secrets=secrets))
        return {
            name: objects["Deployment", name]["spec"]["template"]["metadata"]["annotations"][
                manifests.SECRETS_HASH_ANNOTATION
            ]
            for name in ("p-gateway", "p-aggregator")
        }

    before = hashes()
    nats = hashes(**{"analytics-nats-tls": {"ca.crt": "bmV3"}})
    postgres = hashes(**{"analytics-postgres-ca": {"ca.crt": "bmV3"}})
    assert nats["p-gateway"] != before["p-gateway"]
    assert nats["p-aggregator"] != before["p-aggregator"]
    assert postgres["p-gateway"] == before["p-gateway"]
    assert postgres["p-aggregator"] != before["p-aggregator"]


def test_the_daily_insights_job_gets_postgres_tls_too() -> None:
    objects = render({**HARDENED, "dailyInsights": {}})
    pod = _pod(objects, "p-daily-insights")
    (c,) = pod["containers"]
    pg_dir, _ = _mounts(pod)["postgres-tls"]
    assert env(c)["PGSSLROOTCERT"] == f"{pg_dir}/ca.crt" and env(c)["PGSSLMODE"] == "verify-full"
    assert "nats-tls" not in _mounts(pod)  # it never talks to NATS
