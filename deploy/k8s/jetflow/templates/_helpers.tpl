{{/* The release's name for jetflow's objects. */}}
{{- define "jetflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; the selector labels of a component. */}}
{{- define "jetflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "jetflow.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "jetflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The NATS URLs: the dependency's service, or nats.url. */}}
{{- define "jetflow.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- $name := .Values.nats.fullnameOverride | default (ternary .Release.Name (printf "%s-nats" .Release.Name) (contains "nats" .Release.Name)) -}}
nats://{{ $name | trunc 63 | trimSuffix "-" }}:4222
{{- else -}}
{{- required "nats.url is required with nats.enabled=false (an existing cluster's URL)" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "jetflow.natsSecret" -}}
{{- .Values.natsAuth.existingSecret | default (printf "%s-nats" (include "jetflow.fullname" .)) -}}
{{- end -}}

{{- define "jetflow.apiSecret" -}}
{{- .Values.apiKey.existingSecret | default (printf "%s-api" (include "jetflow.fullname" .)) -}}
{{- end -}}

{{/*
The container's NATS connection for a role (dict "root" $ "role" "worker"):
"args", "env", "volumeMounts" and "volumes", chosen by section.
*/}}
{{- define "jetflow.nats" -}}
{{- $v := .root.Values.natsAuth -}}
{{- $secret := include "jetflow.natsSecret" .root -}}
{{- if eq .section "args" }}
- --hub={{ .root.Values.hub }}
- --inbox-prefix=_INBOX_{{ .role }}
{{- if eq $v.mode "password" }}
- --user={{ index $v.users .role }}
{{- else if eq $v.mode "creds" }}
- --creds=/etc/jetflow/nats/{{ .role }}.creds
{{- else if ne $v.mode "none" }}
{{- fail (printf "natsAuth.mode %q: want none, password or creds" $v.mode) }}
{{- end }}
{{- if $v.tlsCASecret }}
- --tls-ca=/etc/jetflow/nats-ca/ca.crt
{{- end }}
{{- else if eq .section "env" }}
- name: JETFLOW_NATS_URL
  value: {{ include "jetflow.natsURL" .root | quote }}
{{- if eq $v.mode "password" }}
- name: JETFLOW_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .role }}-password
{{- end }}
{{- else if eq .section "volumeMounts" }}
{{- if eq $v.mode "creds" }}
- name: nats-creds
  mountPath: /etc/jetflow/nats
  readOnly: true
{{- end }}
{{- if $v.tlsCASecret }}
- name: nats-ca
  mountPath: /etc/jetflow/nats-ca
  readOnly: true
{{- end }}
{{- else if eq .section "volumes" }}
{{- if eq $v.mode "creds" }}
- name: nats-creds
  secret:
    secretName: {{ $secret }}
    items:
      - key: {{ .role }}.creds
        path: {{ .role }}.creds
{{- end }}
{{- if $v.tlsCASecret }}
- name: nats-ca
  secret:
    secretName: {{ $v.tlsCASecret }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* The pod-level fields every jetflow pod shares. */}}
{{- define "jetflow.podSpec" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
