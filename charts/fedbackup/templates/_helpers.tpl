{{/* Chart name, overridable. */}}
{{- define "fedbackup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of the release's objects. The release "fedbackup" gives "fedbackup", so the operator's objects
are "fedbackup-operator", as in deploy/.
*/}}
{{- define "fedbackup.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the operator's Deployment, ClusterRole, Role, bindings and Service. */}}
{{- define "fedbackup.operatorName" -}}
{{- printf "%s-operator" (include "fedbackup.fullname" .) }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "fedbackup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fedbackup.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "fedbackup.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fedbackup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "fedbackup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedbackup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The image: repository, then @digest if set, else :tag (default: the chart's appVersion). */}}
{{- define "fedbackup.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The agent Jobs' image: the operator's own unless agent.image names another. */}}
{{- define "fedbackup.agentImage" -}}
{{- default (include "fedbackup.image" .) .Values.agent.image }}
{{- end }}

{{/* FEDBACKUP_AGENT_JOB: how the operator builds agent Jobs (src/controllers/federatedbackup/builders.ts). */}}
{{- define "fedbackup.agentJob" -}}
{{- $job := dict "imagePullPolicy" (default .Values.image.pullPolicy .Values.agent.imagePullPolicy) -}}
{{- with .Values.agent.imagePullSecrets }}{{ $_ := set $job "imagePullSecrets" . }}{{ end -}}
{{- with .Values.agent.nodeSelector }}{{ $_ := set $job "nodeSelector" . }}{{ end -}}
{{- $_ := set $job "tolerations" .Values.agent.tolerations -}}
{{- with .Values.agent.resources }}{{ $_ := set $job "resources" . }}{{ end -}}
{{- with .Values.agent.priorityClassName }}{{ $_ := set $job "priorityClassName" . }}{{ end -}}
{{- toJson $job }}
{{- end }}
