{{- define "sre-operator.labels" -}}
app.kubernetes.io/name: sre-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: sre-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- /* The labels a selector uses: never the version (a selector cannot change on upgrade). */ -}}
{{- define "sre-operator.selectorLabels" -}}
app.kubernetes.io/name: sre-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sre-operator.image" -}}
{{- $r := .Values.image.registry -}}
{{- if $r }}{{ $r | trimSuffix "/" }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}


{{- define "sre-operator.dashboardLabels" -}}
app.kubernetes.io/name: sre-dashboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: dashboard
app.kubernetes.io/part-of: sre-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
