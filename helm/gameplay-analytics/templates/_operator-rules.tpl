{{/*
Every Kubernetes API call the operator makes, and nothing more (least privilege).
This list mirrors REQUIRED_RULES in gameplay_analytics/operator/rbac.py;
tests/chart/test_rbac.py fails, printing the list to paste here, when the two differ.
*/}}
{{- define "gameplay-analytics.operatorRules" -}}
# The custom resources: kopf lists, watches and annotates them; status written by patch.
- apiGroups: [analytics.gameplay.dev]
  resources: [analyticspipelines, samplingpolicies, schemaversions]
  verbs: [get, list, watch, patch]
- apiGroups: [analytics.gameplay.dev]
  resources: [analyticspipelines/status, samplingpolicies/status, schemaversions/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion need this where the admission plugin
# OwnerReferencesPermissionEnforcement is on (OpenShift, hardened clusters).
- apiGroups: [analytics.gameplay.dev]
  resources: [analyticspipelines/finalizers]
  verbs: [update]
# What a pipeline is made of: read, created when missing, patched back when it drifts.
# These go with their pipeline (owner references: the garbage collector deletes them); the
# optional kinds (PDB, HPA, monitoring) are also deleted when the pipeline no longer wants them.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, create, patch]
# Deployments are also watched: their readiness is the pipeline's Ready condition.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# The nightly data-quality check (a CronJob per pipeline) and the optional daily insights job.
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [get, create, patch, delete]
# spec.networkPolicy: one per component, deleted when turned off.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch, delete]
# Whether the monitoring.coreos.com CRDs exist.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get]
# The Secrets a pipeline names (NATS credentials; their digest rolls the pods), read by name.
# A Role in the watched namespace with rbac.scope=namespace; a ClusterRole when the operator
# watches every namespace, because a pipeline may live in any of them.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# kopf: Kubernetes Events about handling; peering keeps one active replica.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings, clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}

{{/* Resources a Role cannot grant: they go to a ClusterRole even when rbac.scope=namespace. */}}
{{- define "gameplay-analytics.clusterScopedResources" -}}
- customresourcedefinitions
- namespaces
- clusterkopfpeerings
- nodes
- clusterroles
- clusterrolebindings
- persistentvolumes
- storageclasses
{{- end }}
