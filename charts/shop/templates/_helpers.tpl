{{/* Labels every object of the chart carries. */}}
{{- define "shop.labels" -}}
app.kubernetes.io/part-of: shop
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The image of one of the shop's own components. */}}
{{- define "shop.image" -}}
{{- $r := .root.Values.image.registry -}}
{{- if $r }}{{ $r | trimSuffix "/" }}/{{ end }}sre-operator/shop-{{ .name }}:{{ .root.Values.image.tag }}
{{- end -}}

{{/* The gateway's nginx.conf, rendered from the one template shared with the local run. */}}
{{- define "shop.gatewayConfig" -}}
{{- .Files.Get "files/nginx.conf.tmpl"
    | replace "@@LISTEN_PORT@@" (toString .Values.gateway.containerPort)
    | replace "@@RUN_DIR@@" "/tmp"
    | replace "@@ORDER_UPSTREAM@@" (printf "order:%v" .Values.services.order.port)
    | replace "@@PRODUCT_UPSTREAM@@" (printf "product:%v" .Values.services.product.port)
    | replace "@@ACCESS_LOG@@" "/var/log/gateway/access.json" -}}
{{- end -}}


{{/* Where the shop's pods may run (nodeSelector, tolerations), the same for every component. */}}
{{- define "shop.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
