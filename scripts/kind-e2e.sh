#!/usr/bin/env bash
# End to end on a real cluster (`make kind-e2e`, the kind job of .github/workflows/ci.yml):
# create a kind cluster (kind-config.yaml), build and load the image, install NATS (official
# chart, JetStream, 3 replicas), a throwaway Postgres and MinIO (the warm store), install this chart, check the example
# resources against the API server, bring up tests/e2e/manifests/pipeline.yaml, wait for Ready,
# expose its gateway on the mapped port and run pytest tests/e2e. Always tears the cluster down
# (KEEP_CLUSTER=1 keeps it for debugging).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIND_CLUSTER_NAME:-gameplay-analytics}"
NS="${E2E_NAMESPACE:-analytics-e2e}"
IMAGE="gameplay-analytics:e2e"            # the image named in tests/e2e/manifests/pipeline.yaml
PIPELINE="e2e"                            # metadata.name in tests/e2e/manifests/pipeline.yaml
RELEASE="gameplay-analytics"
GATEWAY_PORT=8765                         # the pipeline's gateway port (CRD default)
NODE_PORT=30765                           # kind-config.yaml maps it to 127.0.0.1:8765
NATS_CHART_VERSION="${NATS_CHART_VERSION:-^1.2}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"    # e.g. kindest/node:v1.31.4; empty = kind's default
WAIT="${E2E_WAIT:-600s}"
PYTHON="${E2E_PYTHON:-.venv/bin/python}"
MANIFESTS=tests/e2e/manifests

log() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "kind-e2e: $1 is not on PATH" >&2; exit 2; }; }
for tool in docker kind kubectl helm; do need "$tool"; done
[[ -x "$PYTHON" ]] || { echo "kind-e2e: $PYTHON not found (make install first)" >&2; exit 2; }

diagnose() {
  log "diagnostics (the run failed)"
  kubectl get nodes -o wide || true
  kubectl -n "$NS" get all,analyticspipelines,samplingpolicies,schemaversions -o wide || true
  kubectl -n "$NS" get ap "$PIPELINE" -o yaml || true
  kubectl -n "$NS" get events --sort-by=.lastTimestamp | tail -n 50 || true
  kubectl -n "$NS" logs -l app.kubernetes.io/component=operator --tail=200 --all-containers || true
  kubectl -n "$NS" logs -l "app.kubernetes.io/instance=$PIPELINE" --tail=100 --all-containers --prefix || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if (( rc != 0 )); then diagnose; fi
  if [[ "${KEEP_CLUSTER:-0}" == "1" ]]; then
    log "KEEP_CLUSTER=1: cluster $CLUSTER kept (kind delete cluster --name $CLUSTER)"
  else
    log "deleting cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 180s \
  ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
kubectl cluster-info --context "kind-$CLUSTER"
kubectl config use-context "kind-$CLUSTER"

log "building and loading $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl create namespace "$NS"

log "installing NATS (official chart, JetStream, 3 replicas)"
helm repo add nats https://nats-io.github.io/k8s/helm/charts/ --force-update
helm upgrade --install nats nats/nats --version "$NATS_CHART_VERSION" -n "$NS" \
  --set config.jetstream.enabled=true \
  --set config.cluster.enabled=true \
  --set config.cluster.replicas=3 \
  --wait --timeout "$WAIT"

log "installing Postgres, MinIO and the pipeline's Secrets"
kubectl -n "$NS" apply -f "$MANIFESTS/secrets.yaml" -f "$MANIFESTS/postgres.yaml" \
  -f "$MANIFESTS/minio.yaml"
kubectl -n "$NS" rollout status deployment/postgres --timeout "$WAIT"
kubectl -n "$NS" rollout status deployment/minio --timeout "$WAIT"
kubectl -n "$NS" wait --for=condition=complete job/minio-bucket --timeout "$WAIT"

log "installing the chart"
# The NATS dependency is declared (condition nats.enabled) and Helm wants it present even when
# disabled; NATS itself comes from the release above.
helm dependency build helm/gameplay-analytics
helm upgrade --install "$RELEASE" helm/gameplay-analytics -n "$NS" \
  --set image.repository=gameplay-analytics --set image.tag=e2e --set image.pullPolicy=Never \
  --wait --timeout "$WAIT"
helm -n "$NS" status "$RELEASE"

if compgen -G "examples/*.yaml" >/dev/null; then
  log "checking every example resource against the API server (server-side dry run)"
  kubectl -n "$NS" apply --dry-run=server -f examples/
fi

log "bringing up pipeline $PIPELINE"
kubectl -n "$NS" apply -f "$MANIFESTS/pipeline.yaml"
kubectl -n "$NS" wait --for=condition=Ready "ap/$PIPELINE" --timeout "$WAIT"
kubectl -n "$NS" get ap,sp -o wide

log "exposing the gateway on NodePort $NODE_PORT (127.0.0.1:$GATEWAY_PORT on this host)"
# The operator owns the gateway Service (ClusterIP); a second Service with the same selector
# gives it the fixed NodePort kind-config.yaml maps, without fighting the operator's drift repair.
selector="$(kubectl -n "$NS" get services -o json | "$PYTHON" -c '
import json, sys
pipeline, port = sys.argv[1], int(sys.argv[2])
for svc in json.load(sys.stdin)["items"]:
    owners = svc["metadata"].get("ownerReferences", [])
    ports = [p["port"] for p in svc["spec"].get("ports", [])]
    if any(o["kind"] == "AnalyticsPipeline" and o["name"] == pipeline for o in owners) and port in ports:
        print(json.dumps(svc["spec"]["selector"]))
        break
else:
    sys.exit(f"no Service of AnalyticsPipeline {pipeline} exposes port {port}")
' "$PIPELINE" "$GATEWAY_PORT")"
kubectl -n "$NS" apply -f - <<YAML
apiVersion: v1
kind: Service
metadata:
  name: $PIPELINE-gateway-e2e
spec:
  type: NodePort
  selector: $selector
  ports:
    - name: ws
      port: $GATEWAY_PORT
      targetPort: $GATEWAY_PORT
      nodePort: $NODE_PORT
YAML
for _ in $(seq 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null; then break; fi
  sleep 2
done

log "running tests/e2e"
E2E_REQUIRED=1 E2E_NAMESPACE="$NS" E2E_PIPELINE="$PIPELINE" E2E_WS_URL="ws://127.0.0.1:$GATEWAY_PORT/ws" \
  "$PYTHON" -m pytest tests/e2e -v -p no:cacheprovider -rs

log "deleting pipeline $PIPELINE before the operator (its finalizer needs the operator)"
kubectl -n "$NS" delete "ap/$PIPELINE" --wait --timeout "$WAIT"
