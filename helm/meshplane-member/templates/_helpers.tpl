{{/* The ServiceAccount meshplane authenticates as in this member cluster. */}}
{{- define "meshplane-member.serviceAccountName" -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}

{{/*
Name of the ClusterRole and ClusterRoleBinding: the namespace and the ServiceAccount's
name, so that two releases (say, for two hubs) in two namespaces share no cluster-scoped
name. Not truncated: both parts are 63 characters at most and RBAC names may be 253 long.
*/}}
{{- define "meshplane-member.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "meshplane-member.serviceAccountName" .) -}}
{{- end -}}

{{/* The long-lived token Secret of tokenSecret.create. */}}
{{- define "meshplane-member.tokenSecretName" -}}
{{- default (printf "%s-token" (include "meshplane-member.serviceAccountName" .)) .Values.tokenSecret.name -}}
{{- end -}}

{{/* Labels on every object: Kubernetes' recommended ones, plus commonLabels. */}}
{{- define "meshplane-member.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: delivery
app.kubernetes.io/part-of: meshplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
