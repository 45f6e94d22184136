{{- define "sre-operator.labels" -}}
app.kubernetes.io/name: sre-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "sre-operator.image" -}}
{{- $r := .Values.image.registry -}}
{{- if $r }}{{ $r | trimSuffix "/" }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}


{{- define "sre-operator.dashboardLabels" -}}
app.kubernetes.io/name: sre-dashboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
