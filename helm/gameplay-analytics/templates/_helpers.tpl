{{/* Names, labels and small derived values shared by every template. */}}

{{- define "gameplay-analytics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gameplay-analytics.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gameplay-analytics.operatorName" -}}
{{- printf "%s-operator" (include "gameplay-analytics.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gameplay-analytics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gameplay-analytics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "gameplay-analytics.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gameplay-analytics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gameplay-analytics
{{- end }}

{{/* Labels on the operator's own objects. */}}
{{- define "gameplay-analytics.labels" -}}
{{ include "gameplay-analytics.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "gameplay-analytics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gameplay-analytics.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gameplay-analytics.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The namespace the operator watches: empty (all) for cluster scope. */}}
{{- define "gameplay-analytics.watchNamespace" -}}
{{- if eq .Values.rbac.scope "namespace" }}
{{- default .Release.Namespace .Values.operator.watchNamespace }}
{{- end }}
{{- end }}
