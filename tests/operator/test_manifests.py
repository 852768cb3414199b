"""desired_objects: what a pipeline becomes, every object valid for Kubernetes itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplay_analytics.contract import messages
from gameplay_analytics.contract.registry import released_schemas
from gameplay_analytics.operator import crdgen, manifests, policy
from gameplay_analytics.operator.manifests import Pipeline, desired_objects
from gameplay_analytics.operator.models import AnalyticsPipelineSpec, SamplingPolicySpec
from gameplay_analytics.sampling import CompiledRules
from tests.operator import kschema

ROOT = Path(__file__).resolve().parents[2]
FULL = yaml.safe_load((ROOT / "examples/analyticspipeline-full.yaml").read_text())["spec"]
POLICY = yaml.safe_load((ROOT / "examples/samplingpolicy-full.yaml").read_text())["spec"]
SCHEMAS = released_schemas()


def render(
    spec: dict[str, Any], *, monitoring: bool = False, name: str = "p"
) -> list[dict[str, Any]]:
    pipeline = Pipeline(name, "games", AnalyticsPipelineSpec.model_validate(spec))
    return desired_objects(pipeline, policy.sampling_state(None), SCHEMAS, monitoring=monitoring)


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = by_kind(objects)["Deployment", name]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


@pytest.mark.parametrize(
    ("spec", "monitoring"),
    [({}, False), (FULL, False), (FULL, True)],
    ids=["minimal", "full", "full+monitoring"],
)
def test_every_object_is_valid_for_kubernetes(spec: dict[str, Any], monitoring: bool) -> None:
    objects = render(spec, monitoring=monitoring)
    checked = {
        f"{o['kind']}/{o['metadata']['name']}": kschema.errors(o)
        for o in objects
        if kschema.has_schema(o)
    }
    assert all(errors == [] for errors in checked.values()), checked
    unchecked = {o["kind"] for o in objects if not kschema.has_schema(o)}
    assert unchecked == ({"ServiceMonitor", "PrometheusRule"} if monitoring else set())


def test_minimal_pipeline_objects() -> None:
    assert sorted(by_kind(render({}))) == [
        ("ConfigMap", "p-config"),
        ("ConfigMap", "p-sampling"),
        ("CronJob", "p-quality"),
        ("Deployment", "p-aggregator"),
        ("Deployment", "p-gateway"),
        ("PodDisruptionBudget", "p-aggregator"),
        ("PodDisruptionBudget", "p-gateway"),
        ("Service", "p-aggregator"),
        ("Service", "p-gateway"),
    ]
    objects = by_kind(render({}))
    assert all(o["metadata"]["namespace"] == "games" for o in objects.values())
    assert objects["Deployment", "p-gateway"]["spec"]["replicas"] == 2
    assert objects["Deployment", "p-aggregator"]["spec"]["replicas"] == 1


def test_full_pipeline_adds_hpa_and_leaves_gateway_replicas_to_it() -> None:
    objects = by_kind(render(FULL))
    hpa = objects["HorizontalPodAutoscaler", "p-gateway"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "p-gateway",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 65
    assert "replicas" not in objects["Deployment", "p-gateway"]["spec"]
    assert objects["Deployment", "p-aggregator"]["spec"]["replicas"] == 3


def test_monitoring_objects_only_when_the_crds_exist_and_the_spec_wants_them() -> None:
    kinds = lambda objs: {o["kind"] for o in objs}  # noqa: E731
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds(render(FULL, monitoring=False))
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds(render(FULL, monitoring=True))
    off = {**FULL, "monitoring": {**FULL["monitoring"], "serviceMonitor": False}}
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds(render(off, monitoring=True))
    monitor = by_kind(render(FULL, monitoring=True))["ServiceMonitor", "p"]
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    rule = by_kind(render(FULL, monitoring=True))["PrometheusRule", "p"]
    alerts = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert (
        'analytics_queue_depth{namespace="games",job=~"p-gateway|p-aggregator|p-quality"}'
        in (alerts["AnalyticsQueueNearlyFull"])
    )  # one pipeline's series only


def test_gateway_environment_follows_the_runtime_contract() -> None:
    variables = env(container(render({}), "p-gateway"))
    cm = lambda key: {"configMapKeyRef": {"name": "p-config", "key": key}}  # noqa: E731
    assert variables["GAMEPLAY_ANALYTICS_NATS_URL"] == cm("NATS_URL")
    # unset in the pipeline: no QUEUE_CAPACITY, the gateway's own default applies
    assert "GAMEPLAY_ANALYTICS_QUEUE_CAPACITY" not in variables
    assert variables["GAMEPLAY_ANALYTICS_SHARD"] == cm("SHARD")
    assert variables["GAMEPLAY_ANALYTICS_WS_PORT"] == "8765"
    assert variables["GAMEPLAY_ANALYTICS_METRICS_PORT"] == "9100"
    assert variables["GAMEPLAY_ANALYTICS_JWT_SECRET"] == {
        "secretKeyRef": {"name": "analytics-jwt", "key": "secret"}
    }
    assert variables["GAMEPLAY_ANALYTICS_SALT_SECRET"] == {
        "secretKeyRef": {"name": "analytics-salt", "key": "salt"}
    }  # the gateway pseudonymises before publishing (privacy/edge.py)
    assert (
        "GAMEPLAY_ANALYTICS_POSTGRES_DSN" not in variables
    )  # the gateway never sees the hot store
    full = env(container(render(FULL), "p-gateway"))
    assert full["GAMEPLAY_ANALYTICS_GEOIP_DB"] == cm("GEOIP_DB")  # it geolocates, too
    assert full["GAMEPLAY_ANALYTICS_QUEUE_CAPACITY"] == cm("QUEUE_CAPACITY")
    assert container(render({}), "p-gateway")["command"] == ["gameplay-analytics", "gateway"]


def test_aggregator_environment_follows_the_runtime_contract() -> None:
    objects = render(FULL)
    variables = env(container(objects, "p-aggregator"))
    assert variables["GAMEPLAY_ANALYTICS_POSTGRES_DSN"] == {
        "secretKeyRef": {"name": "analytics-postgres", "key": "dsn"}
    }
    assert variables["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "analytics-minio", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert variables["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == "analytics-minio"
    assert variables["GAMEPLAY_ANALYTICS_METRICS_PORT"] == "9101"
    for key in (
        "WAREHOUSE_ROOT",
        "S3_ENDPOINT",
        "BATCH_SIZE",
        "HOT_RETENTION_HOURS",
        "WARM_RETENTION_DAYS",
    ):
        assert variables[f"GAMEPLAY_ANALYTICS_{key}"] == {
            "configMapKeyRef": {"name": "p-config", "key": key}
        }
    # Messages arrive pseudonymised: no salt, no profile secret, no GeoIP for the aggregator.
    assert not {"SALT_SECRET", "SALT_SECRET_FILE", "PROFILE_SECRET", "GEOIP_DB"} & {
        name.removeprefix("GAMEPLAY_ANALYTICS_") for name in variables
    }
    config = by_kind(objects)["ConfigMap", "p-config"]["data"]
    assert config["WAREHOUSE_ROOT"] == "s3://gameplay-warehouse/prod"
    assert config["S3_ENDPOINT"] == "http://minio.storage.svc:9000"
    assert config["GEOIP_DB"] == "/var/lib/geoip/GeoLite2-City.mmdb"
    assert (config["HOT_RETENTION_HOURS"], config["WARM_RETENTION_DAYS"], config["BATCH_SIZE"]) == (
        "48",
        "183",
        "1000",
    )
    assert config["NATS_CREDS"] == "/var/run/secrets/nats/operator.creds"
    assert container(objects, "p-aggregator")["command"] == ["gameplay-analytics", "aggregator"]


def test_minimal_config_has_no_optional_keys() -> None:
    config = by_kind(render({}))["ConfigMap", "p-config"]["data"]
    assert not {"WAREHOUSE_ROOT", "S3_ENDPOINT", "GEOIP_DB", "NATS_CREDS"} & config.keys()
    aggregator = env(container(render({}), "p-aggregator"))
    assert "GAMEPLAY_ANALYTICS_GEOIP_DB" not in aggregator
    # No object store: no export and no AWS Secret to require (a missing one would stop the pod).
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & aggregator.keys()


def test_the_warm_store_can_be_a_volume_and_not_both() -> None:
    objects = render({"warmVolume": {"claimName": "warehouse"}})
    config = by_kind(objects)["ConfigMap", "p-config"]["data"]
    assert config["WAREHOUSE_ROOT"] == "/var/lib/gameplay-analytics/warehouse"
    pod = by_kind(objects)["Deployment", "p-aggregator"]["spec"]["template"]["spec"]
    assert {"name": "warehouse", "persistentVolumeClaim": {"claimName": "warehouse"}} in pod[
        "volumes"
    ]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "warehouse", "mountPath": "/var/lib/gameplay-analytics/warehouse"} in mounts
    gateway = by_kind(objects)["Deployment", "p-gateway"]["spec"]["template"]["spec"]
    assert all(v["name"] != "warehouse" for v in gateway["volumes"])
    with pytest.raises(ValueError, match="objectStore or warmVolume"):
        AnalyticsPipelineSpec.model_validate(
            {"objectStore": {"bucket": "abc"}, "warmVolume": {"claimName": "w"}}
        )


@pytest.mark.parametrize("component", ["p-gateway", "p-aggregator"])
def test_pods_are_locked_down(component: str) -> None:
    deployment = by_kind(render(FULL))["Deployment", component]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # writable scratch only


def test_resources_are_kubernetes_quantities() -> None:
    c = container(render(FULL), "p-aggregator")
    assert c["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "4", "memory": "4Gi"},
    }
    gateway = container(render(FULL), "p-gateway")
    assert gateway["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}  # int 2 in YAML


def test_selectors_match_pod_labels_and_services() -> None:
    objects = by_kind(render(FULL))
    for component in ("gateway", "aggregator"):
        deployment = objects["Deployment", f"p-{component}"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        assert objects["Service", f"p-{component}"]["spec"]["selector"] == selector
        assert (
            objects["PodDisruptionBudget", f"p-{component}"]["spec"]["selector"]["matchLabels"]
            == selector
        )
        assert labels["app.kubernetes.io/managed-by"] == manifests.MANAGED_BY
    gateway = objects["Service", "p-gateway"]["spec"]
    assert gateway["type"] == "LoadBalancer"
    assert [(p["name"], p["port"]) for p in gateway["ports"]] == [("ws", 8765), ("metrics", 9100)]
    assert objects["Service", "p-aggregator"]["spec"]["type"] == "ClusterIP"


def test_geoip_volume_and_nats_credentials_are_mounted_read_only() -> None:
    pod = by_kind(render(FULL))["Deployment", "p-gateway"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["geoip"]["persistentVolumeClaim"] == {"claimName": "geoip-db", "readOnly": True}
    assert volumes["nats-creds"]["secret"] == {"secretName": "analytics-nats"}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["geoip"]["readOnly"] and mounts["nats-creds"]["readOnly"]
    aggregator = by_kind(render(FULL))["Deployment", "p-aggregator"]["spec"]["template"]["spec"]
    assert "geoip" not in {v["name"] for v in aggregator["volumes"]}


def _template(objects: list[dict[str, Any]], name: str) -> Any:
    return by_kind(objects)["Deployment", name]["spec"]["template"]


def test_sampling_changes_never_roll_the_deployments() -> None:
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec())
    before = desired_objects(pipeline, policy.sampling_state(None), SCHEMAS)
    spec = SamplingPolicySpec.model_validate(POLICY)
    after = desired_objects(pipeline, policy.sampling_state(spec, heartbeat_rate=0.3), {})
    for name in ("p-gateway", "p-aggregator"):
        assert _template(before, name) == _template(after, name)
        assert by_kind(before)["Deployment", name] == by_kind(after)["Deployment", name]
    assert by_kind(before)["ConfigMap", "p-sampling"] != by_kind(after)["ConfigMap", "p-sampling"]


def test_an_unset_batch_size_is_the_aggregators_own_default_not_a_copy() -> None:
    objects = render({})
    assert "BATCH_SIZE" not in by_kind(objects)["ConfigMap", "p-config"]["data"]
    names = {v["name"] for v in container(objects, "p-aggregator")["env"]}
    assert "GAMEPLAY_ANALYTICS_BATCH_SIZE" not in names


def test_runtime_config_changes_roll_the_deployments_they_concern() -> None:
    before = render({})
    after = render({"aggregator": {"batchSize": 42}})
    for name in ("p-gateway", "p-aggregator"):
        annotation = manifests.TEMPLATE_HASH_ANNOTATION
        old, new = (
            by_kind(x)["Deployment", name]["metadata"]["annotations"][annotation]
            for x in (before, after)
        )
        assert old != new  # the config hash in the template moved
    same = render({"aggregator": {"replicas": 1}})
    assert (
        by_kind(same)["Deployment", "p-aggregator"] == by_kind(before)["Deployment", "p-aggregator"]
    )


def test_rendering_is_deterministic() -> None:
    assert json.dumps(render(FULL, monitoring=True)) == json.dumps(render(FULL, monitoring=True))


def test_sampling_configmap_holds_the_kv_values() -> None:
    spec = SamplingPolicySpec.model_validate(POLICY)
    state = policy.sampling_state(spec, heartbeat_rate=0.2)
    values = manifests.config_values(state, SCHEMAS)
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec())
    data = by_kind(desired_objects(pipeline, state, SCHEMAS))["ConfigMap", "p-sampling"]["data"]
    assert data["sampling.json"] == values[messages.KV_SAMPLING_KEY]
    assert data["schemas.json"] == values[messages.KV_SCHEMAS_KEY]
    assert data["sampling-version"] == state.rules.version
    rules = CompiledRules.from_wire(json.loads(data["sampling.json"]))
    assert rules.version == state.rules.version
    assert rules.rate_for("client_tick") == 0.2  # the controller's rate, inside [0.01, 0.5]
    assert rules.rate_for("loot_drop") == 1.0  # the policy's per-event override
    assert rules.rate_for("xp_gain") == 0.2  # commodity class override
    schemas = json.loads(data["schemas.json"])
    assert schemas["accepted"] == ["1.0.0"] and schemas["documents"]["1.0.0"]["version"] == "1.0.0"
    assert json.loads(data["breaker.json"])["recoverBelow"] == 0.5


def test_each_pipeline_gets_its_own_nats_names_with_spec_overrides() -> None:
    config = by_kind(render({}, name="p"))["ConfigMap", "p-config"]["data"]
    assert config["STREAM"] == "ANALYTICS_games_p"
    assert config["EVENTS_SUBJECT"] == "analytics.games.p.events"
    assert config["DLQ_SUBJECT"] == "analytics.games.p.dlq"
    assert config["CONFIG_BUCKET"] == "analytics-config_games_p"
    assert config["CONSUMER_NAME"] == "aggregator"
    other = by_kind(render({}, name="q"))["ConfigMap", "q-config"]["data"]
    assert {other[k] for k in ("STREAM", "CONFIG_BUCKET")}.isdisjoint(
        {config[k] for k in ("STREAM", "CONFIG_BUCKET")}
    )
    overridden = render({"nats": {"stream": "EVENTS", "configBucket": "rules"}})
    data = by_kind(overridden)["ConfigMap", "p-config"]["data"]
    assert (data["STREAM"], data["CONFIG_BUCKET"]) == ("EVENTS", "rules")
    gateway = env(container(overridden, "p-gateway"))
    aggregator = env(container(overridden, "p-aggregator"))
    for var in ("STREAM", "EVENTS_SUBJECT", "DLQ_SUBJECT", "CONFIG_BUCKET"):
        assert gateway[f"GAMEPLAY_ANALYTICS_{var}"]["configMapKeyRef"]["key"] == var
        assert aggregator[f"GAMEPLAY_ANALYTICS_{var}"]["configMapKeyRef"]["key"] == var
    assert "GAMEPLAY_ANALYTICS_CONSUMER_NAME" not in gateway  # the gateway has no consumer
    assert "GAMEPLAY_ANALYTICS_CONSUMER_NAME" in aggregator


def test_the_breaker_is_published_beside_the_rules() -> None:
    values = manifests.config_values(policy.sampling_state(None), SCHEMAS)
    assert json.loads(values["breaker"])["threshold"] == 0.8


def test_an_unset_image_is_the_operators_own_release() -> None:
    from gameplay_analytics.operator import naming

    image = container(render({}), "p-gateway")["image"]
    assert image == naming.default_operand_image() and image.startswith(naming.IMAGE_REPOSITORY)
    pinned = container(render({"image": "registry.local/ga:dev"}), "p-gateway")["image"]
    assert pinned == "registry.local/ga:dev"
    token = naming.OPERAND_IMAGE.set("mirror.local/ga:9.9.9")
    try:
        assert container(render({}), "p-aggregator")["image"] == "mirror.local/ga:9.9.9"
    finally:
        naming.OPERAND_IMAGE.reset(token)
    crd = crdgen.build_crds()["analyticspipelines.yaml"]
    image_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "default" not in image_schema["properties"]["image"]  # not stored in each pipeline


def test_a_rotated_secret_rolls_only_the_pods_that_read_it() -> None:
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec())

    def hashes(secrets: dict[str, dict[str, str] | None]) -> dict[str, str]:
        objects = desired_objects(pipeline, policy.sampling_state(None), SCHEMAS, secrets=secrets)
        return {
            name: by_kind(objects)["Deployment", name]["spec"]["template"]["metadata"][
                "annotations"
            ][manifests.SECRETS_HASH_ANNOTATION]
            for name in ("p-gateway", "p-aggregator")
        }

    before = hashes({"analytics-jwt": {"secret": "b2xk"}, "analytics-salt": {"salt": "cw=="}})
    jwt = hashes({"analytics-jwt": {"secret": "bmV3"}, "analytics-salt": {"salt": "cw=="}})
    salt = hashes({"analytics-jwt": {"secret": "bmV3"}, "analytics-salt": {"salt": "dA=="}})
    assert jwt["p-gateway"] != before["p-gateway"] and jwt["p-aggregator"] == before["p-aggregator"]
    # The salt is the gateways' alone (the edge step): the aggregators do not roll for it.
    assert salt["p-gateway"] != jwt["p-gateway"] and salt["p-aggregator"] == jwt["p-aggregator"]


def test_objects_no_longer_wanted_are_named_for_pruning() -> None:
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec.model_validate(FULL))
    state = policy.sampling_state(None)
    with_all = desired_objects(pipeline, state, SCHEMAS, monitoring=True)
    assert manifests.prunable_objects(pipeline, with_all) == []
    fixed = Pipeline("p", "games", AnalyticsPipelineSpec())
    left = manifests.prunable_objects(fixed, desired_objects(fixed, state, SCHEMAS))
    assert left == [
        ("HorizontalPodAutoscaler", "p-gateway"),
        ("ServiceMonitor", "p"),
        ("PrometheusRule", "p"),
        ("CronJob", "p-daily-insights"),
        ("NetworkPolicy", "p-gateway"),
        ("NetworkPolicy", "p-aggregator"),
        ("NetworkPolicy", "p-quality"),
        ("NetworkPolicy", "p-daily-insights"),
    ]
    idle = Pipeline(
        "p", "games", AnalyticsPipelineSpec.model_validate({"aggregator": {"replicas": 0}})
    )
    assert ("PodDisruptionBudget", "p-aggregator") in manifests.prunable_objects(
        idle, desired_objects(idle, state, SCHEMAS)
    )


def test_a_changed_geoip_configmap_rolls_the_gateways() -> None:
    spec = {"privacy": {"geoip": {"configMapName": "geoip"}}}
    pipeline = Pipeline("p", "games", AnalyticsPipelineSpec.model_validate(spec))

    def annotation(content: dict[str, Any] | None, name: str) -> str:
        objects = desired_objects(
            pipeline, policy.sampling_state(None), SCHEMAS, config_maps={"geoip": content}
        )
        template = by_kind(objects)["Deployment", name]["spec"]["template"]
        return str(template["metadata"]["annotations"][manifests.SECRETS_HASH_ANNOTATION])

    old, new = {"binaryData": {"db": "AAAA"}}, {"binaryData": {"db": "BBBB"}}
    assert annotation(old, "p-gateway") != annotation(new, "p-gateway")
    assert annotation(old, "p-aggregator") == annotation(new, "p-aggregator")
