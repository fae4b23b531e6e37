{{/*
Named templates of the multinic-bridge chart.

The templates are checked without helm by a small renderer in tests/integration/test_chart.py,
which knows only this subset of Go templates and Sprig; keep to it (the renderer refuses the
rest):
  - actions {{ pipeline }} with the {{- and -}} trim markers, and comments;
  - if / else if / else / end, with / end (dot becomes the value), define / end; no range, no
    variables;
  - operands: fields of the root (.Values.a.b, .Release.Name, .Release.Namespace,
    .Release.Service, .Chart.Name, .Chart.Version, .Chart.AppVersion), of the dot inside
    `with`, the dot itself, "strings" and integers;
  - functions: include, toYaml, nindent, indent, quote, default, printf (%s and %d), trunc,
    trimSuffix, contains, int; arguments through `|` pipes, no parentheses.
Numbers in values are floats to helm: a template prints an integer that can reach 1e6 through
`int` (else helm writes 1e+06); the renderer reproduces that.
Named templates are always called with the root as the dot: include "name" .
*/}}

{{/* The chart's name, overridable. */}}
{{- define "multinic-bridge.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of the release's objects: the release name if it has the chart's name in it. */}}
{{- define "multinic-bridge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods; never changed after an install (a selector is immutable). */}}
{{- define "multinic-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "multinic-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "multinic-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{ include "multinic-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: bridge
app.kubernetes.io/part-of: multinic
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The ServiceAccount the pods run as and the RoleBinding names. */}}
{{- define "multinic-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.name -}}
{{- .Values.serviceAccount.name -}}
{{- else -}}
{{- include "multinic-bridge.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* The image, its tag defaulting to the chart's appVersion. */}}
{{- define "multinic-bridge.image" -}}
{{- .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}
