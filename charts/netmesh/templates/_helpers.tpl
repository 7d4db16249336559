{{/*
Names are fixed (netmesh-agent, netmesh-collector): the chart installs
cluster-scoped objects (ClusterRole, PriorityClass, optionally the Namespace),
so there is one netmesh per cluster, exactly as with `kubectl apply -k manifests`.
*/}}

{{- define "netmesh.namespace" -}}
{{ .Values.namespace.name }}
{{- end }}

{{/* Helm's own labels: only on object metadata, never in selectors or pod templates. */}}
{{- define "netmesh.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "netmesh.agentLabels" -}}
app.kubernetes.io/name: netmesh-agent
app.kubernetes.io/component: agent
{{- end }}

{{- define "netmesh.collectorLabels" -}}
app.kubernetes.io/name: netmesh-collector
app.kubernetes.io/component: collector
{{- end }}

{{- define "netmesh.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "netmesh.agentServiceAccount" -}}
{{ .Values.agent.serviceAccount.name }}
{{- end }}

{{- define "netmesh.collectorServiceAccount" -}}
{{ .Values.collector.serviceAccount.name }}
{{- end }}

{{/* The collector's Service URL inside the cluster. */}}
{{- define "netmesh.collectorUrl" -}}
http://netmesh-collector.{{ include "netmesh.namespace" . }}.svc:{{ include "netmesh.collectorPort" . }}
{{- end }}

{{/* The collector's Service as host:port: the agents' Service check connects to it. */}}
{{- define "netmesh.collectorServiceTarget" -}}
netmesh-collector.{{ include "netmesh.namespace" . }}.svc:{{ include "netmesh.collectorPort" . }}
{{- end }}

{{/* Generated ConfigMap names: <name>-<hash of the data>, so a change rolls the pods (as kustomize's configMapGenerator does). */}}
{{- define "netmesh.agentConfigName" -}}
netmesh-agent-{{ include "netmesh.agentEnv" . | sha256sum | trunc 10 }}
{{- end }}

{{- define "netmesh.collectorConfigName" -}}
netmesh-collector-{{ include "netmesh.collectorEnv" . | sha256sum | trunc 10 }}
{{- end }}

{{- define "netmesh.podEndpointLabels" -}}
app.kubernetes.io/name: netmesh-pod-endpoint
app.kubernetes.io/component: pod-endpoint
{{- end }}

{{/* The pod-network endpoint's variables: the agent's, on the pod network. */}}
{{- define "netmesh.podEndpointEnv" -}}
{{ include "netmesh.agentEnv" . }}
NETMESH_NETWORK: "pod"
{{- end }}

{{- define "netmesh.podEndpointConfigName" -}}
netmesh-pod-endpoint-{{ include "netmesh.podEndpointEnv" . | sha256sum | trunc 10 }}
{{- end }}
