{{/*
Names and labels, as in `helm create` and the argo-helm charts.
*/}}

{{/* The chart name, truncated to the 63 characters a label value allows. */}}
{{- define "clustershift.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every resource: <release>-clustershift, or the release name alone when it already says clustershift. */}}
{{- define "clustershift.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clustershift.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clustershift.labels" -}}
helm.sh/chart: {{ include "clustershift.chart" . }}
{{ include "clustershift.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clustershift
{{- end }}

{{- define "clustershift.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clustershift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clustershift.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clustershift.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
What the controller needs in a cluster it moves workloads in: read and scale Deployments, set an
HPA's minReplicas, record Events, and write weights only on the routers switched on. The
ClusterRole here and the one for a cluster reached through a kubeconfig
(remote-cluster-access.yaml) both use it.
*/}}
{{- define "clustershift.workloadRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments", "deployments/scale"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Preflight's parity: the Services and PDBs around a workload must be in both clusters.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list"]
# Discovery's spec.selector.namespaceSelector reads the old cluster's namespaces.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- if .Values.rbac.routers.istio }}
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules", "serviceentries"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- end }}
{{- if .Values.rbac.routers.gatewayApi }}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- end }}
{{- if .Values.rbac.routers.smi }}
- apiGroups: ["split.smi-spec.io"]
  resources: ["trafficsplits"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- end }}
{{- end }}

{{/* http, or https when the API serves TLS; used by the probes and the ServiceMonitor. */}}
{{- define "clustershift.scheme" -}}
{{- if .Values.api.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/*
The clustershift configuration file: .Values.config plus what the chart owns. Every path
below is where deployment.yaml mounts the file; the schema forbids these keys in values,
so nothing here silently overrides a user's setting.
test/charts/helm.test.ts renders it with helm, runs the controller's --check on it and checks
every file it names is mounted.
*/}}
{{- define "clustershift.config" -}}
{{- $config := deepCopy .Values.config }}
{{- /* Each cluster's kubeconfig comes from the Secret named in .Values.clusters; none means in-cluster credentials. */}}
{{- range $role := list "old" "new" }}
{{- $cluster := index $.Values.clusters $role }}
{{- $target := index $config.clusters $role }}
{{- if $cluster.kubeconfigSecret }}
{{- $_ := set $target "kubeconfig" (printf "/etc/clustershift/clusters/%s/%s" $role $cluster.kubeconfigKey) }}
{{- end }}
{{- if $cluster.context }}
{{- $_ := set $target "context" $cluster.context }}
{{- end }}
{{- end }}
{{- /* Rollout state and the leader Lease live in the release namespace, where the Role grants access. */}}
{{- $controller := $config.controller | default dict }}
{{- $_ := set $controller "namespace" .Release.Namespace }}
{{- $_ := set $controller "state" (dict "type" "configmap") }}
{{- $election := $controller.leaderElection | default dict }}
{{- $_ := set $election "enabled" (gt (int .Values.replicaCount) 1) }}
{{- $_ := set $controller "leaderElection" $election }}
{{- $_ := set $config "controller" $controller }}
{{- /* The API listens on the container port; tokens and TLS files come from the mounted Secrets. */}}
{{- $api := $config.api | default dict }}
{{- $_ := set $api "host" "0.0.0.0" }}
{{- $_ := set $api "port" (int .Values.containerPort) }}
{{- $auth := $api.auth | default dict }}
{{- $_ := set $auth "enabled" .Values.api.auth.enabled }}
{{- if .Values.api.auth.enabled }}
{{- $_ := set $auth "tokensFile" (printf "/etc/clustershift/api-tokens/%s" .Values.api.auth.secretKey) }}
{{- end }}
{{- $_ := set $api "auth" $auth }}
{{- if .Values.api.tls.existingSecret }}
{{- $_ := set $api "tls" (dict "certFile" "/etc/clustershift/tls/tls.crt" "keyFile" "/etc/clustershift/tls/tls.key") }}
{{- end }}
{{- $_ := set $config "api" $api }}
{{- toYaml $config }}
{{- end }}

{{- /*
node's heap limit as NODE_OPTIONS: heapPercentOfMemoryLimit of resources.limits.memory, in MiB.
Empty without a memory limit or with the percent at 0 (node then sizes the heap itself, close to
the whole limit, so a full heap meets the container's limit before its garbage is collected).
*/}}
{{- define "clustershift.nodeOptions" -}}
{{- $raw := dig "limits" "memory" "" (.Values.resources | default dict) -}}
{{- $limit := toString $raw -}}
{{- $percent := int (.Values.heapPercentOfMemoryLimit | default 0) -}}
{{- if and (ne $limit "") (gt $percent 0) -}}
{{- /* A plain number is bytes: a YAML number (helm reads it as a float, 5.36870912e+08) or "1e9". */}}
{{- $plain := or (kindIs "float64" $raw) (kindIs "int64" $raw) (kindIs "int" $raw) (regexMatch "^[0-9]+(\\.[0-9]+)?([eE][0-9]+)?$" $limit) -}}
{{- $number := ternary $limit (regexFind "^[0-9]+(\\.[0-9]+)?" $limit) $plain -}}
{{- $unit := ternary "" (trimPrefix $number $limit) $plain -}}
{{- $mibPer := dict "" (divf 1 1048576) "Ki" (divf 1 1024) "Mi" 1 "Gi" 1024 "Ti" 1048576 "k" (divf 1000 1048576) "M" (divf 1000000 1048576) "G" (divf 1000000000 1048576) "T" (divf 1000000000000 1048576) -}}
{{- if or (eq $number "") (not (hasKey $mibPer $unit)) -}}
{{- fail (printf "resources.limits.memory %q: heapPercentOfMemoryLimit takes a share of a quantity such as 512Mi or 1Gi; set heapPercentOfMemoryLimit: 0 to leave node's heap limit alone" $limit) -}}
{{- end -}}
{{- $mib := floor (divf (mulf (float64 $number) (get $mibPer $unit) $percent) 100) -}}
--max-old-space-size={{ int $mib }}
{{- end -}}
{{- end }}
