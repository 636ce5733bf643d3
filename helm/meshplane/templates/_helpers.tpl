{{/* Name of the chart (or nameOverride), truncated to the 63 characters of a label value. */}}
{{- define "meshplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of the release's namespaced objects (Deployment, Service, ServiceAccount, ...):
63 characters at most, so it is a valid label value and Service name. A release named
like the chart ("meshplane") is not repeated ("meshplane", not "meshplane-meshplane").
*/}}
{{- define "meshplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "meshplane.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of the release's cluster-scoped objects (ClusterRoles, ClusterRoleBindings): the
namespace and the fullname, so that releases of the same name in two namespaces do not
take each other's. Not truncated: both parts are 63 characters at most and RBAC names
may be 253 long.
*/}}
{{- define "meshplane.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "meshplane.fullname" .) -}}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "meshplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meshplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease the operator's replicas elect their leader with (one per release). */}}
{{- define "meshplane.leaseName" -}}
{{- default (include "meshplane.fullname" .) .Values.operator.leaseName -}}
{{- end -}}

{{/* The operator's image: repository@digest when a digest is given, else repository:tag. */}}
{{- define "meshplane.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the operator's pods: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "meshplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every templated object: Kubernetes' recommended ones, plus commonLabels. */}}
{{- define "meshplane.labels" -}}
app.kubernetes.io/name: {{ include "meshplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: meshplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the operator's objects: the common ones plus the component. */}}
{{- define "meshplane.operatorLabels" -}}
{{ include "meshplane.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The VEN's namespaced objects (Deployment, ServiceAccount, Role): <fullname>-ven, 63 characters at most. */}}
{{- define "meshplane.venName" -}}
{{- printf "%s-ven" (include "meshplane.fullname" . | trunc 59 | trimSuffix "-") -}}
{{- end -}}

{{/* The Lease the VEN's replicas elect their leader with (its own, not the operator's). */}}
{{- define "meshplane.venLeaseName" -}}
{{- default (include "meshplane.venName" .) .Values.ven.leaseName -}}
{{- end -}}

{{/* Labels that select the VEN's pods (stable across upgrades). */}}
{{- define "meshplane.venSelectorLabels" -}}
app.kubernetes.io/name: {{ include "meshplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ven
{{- end -}}

{{/* Labels of the VEN's objects: the common ones plus the component. */}}
{{- define "meshplane.venLabels" -}}
{{ include "meshplane.labels" . }}
app.kubernetes.io/component: ven
{{- end -}}
