{{/*
yaci.name is the chart's name, or nameOverride.
*/}}
{{- define "yaci.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
yaci.fullname names the release's objects. Kubernetes names are DNS labels
of at most 63 characters.
*/}}
{{- define "yaci.fullname" -}}
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

{{/*
yaci.selectorLabels select the release's pods; they never change across
upgrades, as a Deployment's selector is immutable.
*/}}
{{- define "yaci.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yaci.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
yaci.labels go on every object of the release.
*/}}
{{- define "yaci.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "yaci.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: ci-bot
{{- end }}

{{/*
yaci.serviceAccountName is the ServiceAccount yaci runs as.
*/}}
{{- define "yaci.serviceAccountName" -}}
{{- default (include "yaci.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
yaci.jobNamespace is where the CI Jobs, their Secrets, and yaci's Role go.
*/}}
{{- define "yaci.jobNamespace" -}}
{{- default .Release.Namespace .Values.jobNamespace }}
{{- end }}

{{/*
yaci.createSecret is "true" when the chart makes the GitHub Secret from
inline values.
*/}}
{{- define "yaci.createSecret" -}}
{{- $g := .Values.github }}
{{- if and (not $g.existingSecret) (or $g.webhookSecret $g.appKey $g.token) }}true{{ end }}
{{- end }}

{{/*
yaci.githubSecretName is the Secret holding the webhook secret and the
GitHub credential.
*/}}
{{- define "yaci.githubSecretName" -}}
{{- default (printf "%s-github" (include "yaci.fullname" .)) .Values.github.existingSecret }}
{{- end }}

{{/*
yaci.publicURL is yaci's base URL: publicURL, else the ingress host.
*/}}
{{- define "yaci.publicURL" -}}
{{- if .Values.publicURL }}
{{- .Values.publicURL | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}
{{- end }}

{{/*
yaci.image is the image reference, pinned by digest when one is given.
*/}}
{{- define "yaci.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
yaci.leaseName names the Lease of leader election.
*/}}
{{- define "yaci.leaseName" -}}
{{- default (include "yaci.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
yaci.sharedArchive is "true" when every replica sees the same --data-dir:
a claim all of them can mount read-write at once.
*/}}
{{- define "yaci.sharedArchive" -}}
{{- if .Values.archive.s3.enabled }}true
{{- else if and .Values.persistence.enabled (has "ReadWriteMany" .Values.persistence.accessModes) }}true{{ end }}
{{- end }}

{{/*
yaci.validate refuses value combinations that would deploy a yaci that
cannot work, with a message saying what to change. The Deployment's
template includes it; Helm renders every template on each install.
*/}}
{{- define "yaci.validate" -}}
{{- $v := .Values }}
{{- if and $v.archive.s3.enabled (not $v.archive.s3.bucket) }}
{{- fail "archive.s3.enabled: set archive.s3.bucket, the bucket that keeps the logs" }}
{{- end }}
{{- if gt (int $v.replicaCount) 1 }}
{{- if not $v.leaderElection.enabled }}
{{- fail (printf "replicaCount is %d: more than one replica needs leaderElection.enabled=true, so that only one of them writes statuses and starts Jobs" (int $v.replicaCount)) }}
{{- end }}
{{- if not (include "yaci.sharedArchive" .) }}
{{- fail (printf "replicaCount is %d: more than one replica needs a shared log archive: archive.s3.enabled=true, or persistence.enabled=true with ReadWriteMany in persistence.accessModes" (int $v.replicaCount)) }}
{{- end }}
{{- end }}
{{- if not (has $v.github.auth (list "app" "token")) }}
{{- fail (printf "github.auth is %q: want \"app\" or \"token\"" $v.github.auth) }}
{{- end }}
{{- if lt (int64 $v.github.appID) 0 }}
{{- fail "github.appID must not be negative" }}
{{- end }}
{{- $inline := or $v.github.webhookSecret $v.github.appKey $v.github.token }}
{{- if and $v.github.existingSecret $inline }}
{{- fail "github.existingSecret is set: leave github.webhookSecret, github.appKey and github.token empty, the Secret holds them" }}
{{- end }}
{{- if include "yaci.createSecret" . }}
{{- if not $v.github.webhookSecret }}
{{- fail "the chart creates the GitHub Secret from inline values: set github.webhookSecret too, yaci refuses webhooks it cannot verify" }}
{{- end }}
{{- if eq $v.github.auth "app" }}
{{- if not $v.github.appKey }}
{{- fail "github.auth is \"app\": set github.appKey to the App's PEM private key, or use github.existingSecret" }}
{{- end }}
{{- if eq (int64 $v.github.appID) 0 }}
{{- fail "github.auth is \"app\" and the chart creates the Secret: set github.appID" }}
{{- end }}
{{- end }}
{{- if and (eq $v.github.auth "token") (not $v.github.token) }}
{{- fail "github.auth is \"token\": set github.token, or use github.existingSecret" }}
{{- end }}
{{- end }}
{{- if and $v.ingress.enabled (not $v.ingress.host) }}
{{- fail "ingress.enabled: set ingress.host, the name GitHub sends webhooks to" }}
{{- end }}
{{- if and $v.ingress.tls.enabled (not $v.ingress.tls.secretName) }}
{{- fail "ingress.tls.enabled: set ingress.tls.secretName" }}
{{- end }}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) }}
{{- fail "serviceAccount.create is false: set serviceAccount.name to the ServiceAccount yaci runs as" }}
{{- end }}
{{- end }}

{{/*
yaci.secretDir is where the GitHub Secret's entries are mounted as files.
*/}}
{{- define "yaci.secretDir" -}}
/etc/yaci/github
{{- end }}

{{/*
yaci.args are the arguments of the yaci container, as a YAML list. Each is
one "--flag=value" string, so no value can split into two arguments.
Secrets are passed as the paths of files, never as values.
*/}}
{{- define "yaci.args" -}}
{{- $v := .Values }}
{{- $dir := include "yaci.secretDir" . }}
{{- $args := list "serve" "--listen=:8080"
  (printf "--namespace=%s" (include "yaci.jobNamespace" .))
  (printf "--webhook-secret-file=%s/%s" $dir $v.github.secretKeys.webhookSecret)
  (printf "--github-api-url=%s" $v.github.apiURL) }}
{{- if eq $v.github.auth "app" }}
{{- if gt (int64 $v.github.appID) 0 }}
{{- $args = append $args (printf "--github-app-id=%d" (int64 $v.github.appID)) }}
{{- end }}
{{- $args = append $args (printf "--github-app-key-file=%s/%s" $dir $v.github.secretKeys.appKey) }}
{{- else }}
{{- $args = append $args (printf "--github-token-file=%s/%s" $dir $v.github.secretKeys.token) }}
{{- end }}
{{- with include "yaci.publicURL" . }}
{{- $args = append $args (printf "--public-url=%s" .) }}
{{- end }}
{{- $args = append $args "--data-dir=/var/lib/yaci" }}
{{- with $v.archive.s3 }}
{{- if .enabled }}
{{- $args = concat $args (list "--archive=s3" (printf "--s3-bucket=%s" .bucket)
  (printf "--s3-region=%s" .region) (printf "--s3-prefix=%s" .prefix)) }}
{{- with .endpoint }}
{{- $args = append $args (printf "--s3-endpoint=%s" .) }}
{{- end }}
{{- if .pathStyle }}
{{- $args = append $args "--s3-path-style" }}
{{- end }}
{{- if .existingSecret }}
{{- $args = concat $args (list "--s3-access-key-file=/etc/yaci/s3/access-key"
  "--s3-secret-key-file=/etc/yaci/s3/secret-key") }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.config.cloneImage }}
{{- $args = append $args (printf "--clone-image=%s" .) }}
{{- end }}
{{- $args = concat $args (list
  (printf "--default-timeout=%s" $v.config.defaultTimeout)
  (printf "--max-timeout=%s" $v.config.maxTimeout)
  (printf "--queue-size=%d" (int $v.config.queueSize))
  (printf "--workers=%d" (int $v.config.workers))
  (printf "--max-running=%d" (int $v.config.maxRunning))
  (printf "--max-per-repo=%d" (int $v.config.maxPerRepo))
  (printf "--log-format=%s" $v.config.logFormat)
  (printf "--log-level=%s" $v.config.logLevel)) }}
{{- toYaml (concat $args $v.extraArgs) }}
{{- end }}
