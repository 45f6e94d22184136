{{/* Labels every object of the chart carries. */}}
{{- define "llm.labels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/component: llm
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The path of the GGUF inside the container. */}}
{{- define "llm.modelPath" -}}
/models/{{ .Values.model.file }}
{{- end -}}

{{/* The claim holding the model: the user's, or the one bound to the hostPath volume. */}}
{{- define "llm.claimName" -}}
{{- .Values.model.claimName | default (printf "%s-model" .Values.name) -}}
{{- end -}}
