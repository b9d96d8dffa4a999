{{/*
Helpers of the Confab chart. Only the Helm template functions that
helm/tools/render implements are used here: sprig, include, tpl, required,
toYaml, toJson, fromJson, fromYaml (see that program's header).
*/}}

{{- define "confab.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "confab.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "confab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "confab.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "confab.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* A resource name, refused (not truncated) past 63 characters. */}}
{{- define "confab.resourceName" -}}
{{- $n := join "-" . -}}
{{- if gt (len $n) 63 -}}
{{- fail (printf "resource name %q is longer than 63 characters: shorten the release, cell or release label names" $n) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/*
Selector labels. Argument: dict ctx, component, cell (optional), release
(optional, logic release label).
*/}}
{{- define "confab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "confab.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .cell }}
confab.io/cell: {{ . }}
{{- end }}
{{- with .release }}
confab.io/release: {{ . }}
{{- end }}
{{- end -}}

{{/*
All labels of a resource. Same argument as confab.selectorLabels, plus
version (optional: the image tag of a workload; default the appVersion).
*/}}
{{- define "confab.labels" -}}
helm.sh/chart: {{ include "confab.chart" .ctx }}
{{ include "confab.selectorLabels" . }}
app.kubernetes.io/part-of: confab
app.kubernetes.io/version: {{ .version | default .ctx.Chart.AppVersion | toString | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/*
Deep merge for values blocks, as JSON: (list base override). Maps merge
recursively; any other override value replaces the base; a null override
removes the key. (sprig's mergeOverwrite cannot set false or 0 over a
default, hence this.)
*/}}
{{- define "confab.merge" -}}
{{- $base := index . 0 | default dict -}}
{{- $over := index . 1 | default dict -}}
{{- $out := deepCopy $base -}}
{{- range $k, $v := $over -}}
{{- if kindIs "invalid" $v -}}
{{- $_ := unset $out $k -}}
{{- else if and (kindIs "map" $v) (kindIs "map" (get $out $k)) -}}
{{- $_ := set $out $k (include "confab.merge" (list (get $out $k) $v) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* A DNS-label-like name: lowercase letters, digits and dashes. */}}
{{- define "confab.checkName" -}}
{{- $what := index . 0 -}}{{- $name := index . 1 -}}{{- $max := index . 2 -}}
{{- if not (kindIs "string" $name) -}}
{{- fail (printf "%s must be a string, got %v" $what $name) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "%s %q must be lowercase letters, digits and dashes" $what $name) -}}
{{- end -}}
{{- if gt (len $name) (int $max) -}}
{{- fail (printf "%s %q is longer than %d characters" $what $name (int $max)) -}}
{{- end -}}
{{- end -}}

{{/* Image tag and reference. Argument: dict ctx, image (override map or nil). */}}
{{- define "confab.imageTag" -}}
{{- $img := .image | default dict -}}
{{- $img.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion | toString -}}
{{- end -}}

{{- define "confab.image" -}}
{{- $img := .image | default dict -}}
{{- $repo := $img.repository | default .ctx.Values.image.repository -}}
{{- printf "%s:%s" $repo (include "confab.imageTag" .) -}}
{{- end -}}

{{/* Grace period: preStop + drain + margin unless set. Argument: dict ctx, conf. */}}
{{- define "confab.gracePeriod" -}}
{{- if .conf.terminationGracePeriodSeconds -}}
{{- int .conf.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add (int .conf.preStopSleepSecs) (int .conf.drainSecs) (int .ctx.Values.terminationMarginSecs) -}}
{{- end -}}
{{- end -}}

{{/* An env value as a string; whole floats (YAML numbers) without exponent. */}}
{{- define "confab.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
The distributed cells, merged over cellDefaults and checked, as JSON
{"cells": [...]}.
*/}}
{{- define "confab.cells" -}}
{{- $cells := list -}}
{{- $seen := dict -}}
{{- if not .Values.cells -}}
{{- fail "mode distributed needs at least one entry in cells" -}}
{{- end -}}
{{- range $i, $raw := .Values.cells -}}
{{- $c := include "confab.merge" (list $.Values.cellDefaults $raw) | fromJson -}}
{{- $name := required (printf "cells[%d].name is required" $i) $c.name -}}
{{- include "confab.checkName" (list "cell name" $name 20) -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "cell %q is listed twice" $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- if not $c.logic.releases -}}
{{- fail (printf "cell %q: logic.releases needs at least one release" $name) -}}
{{- end -}}
{{- $labels := dict -}}
{{- range $r := $c.logic.releases -}}
{{- $label := required (printf "cell %q: every logic release needs a label" $name) $r.label -}}
{{- include "confab.checkName" (list "release label" $label 20) -}}
{{- if hasKey $labels $label -}}
{{- fail (printf "cell %q: release label %q is listed twice" $name $label) -}}
{{- end -}}
{{- $_ := set $labels $label true -}}
{{- end -}}
{{- $cells = append $cells $c -}}
{{- end -}}
{{- toJson (dict "cells" $cells) -}}
{{- end -}}

{{/* A Secret reference as an env entry source; checks it is complete. */}}
{{- define "confab.secretRef" -}}
{{- $what := index . 0 -}}{{- $env := index . 1 -}}{{- $ref := index . 2 -}}
{{- $name := required (printf "%s: existingSecret is required" $what) $ref.existingSecret -}}
{{- toJson (dict "name" $env "secretName" $name "key" (required (printf "%s: key is required" $what) $ref.key)) -}}
{{- end -}}

{{/*
Every workload as JSON {"workloads": [...]}, each with: kind, name,
component, cell, release, args, conf (the component's merged block),
settings (computed CONFAB_* env), envMaps (user env, low to high
precedence), secrets (Secret-sourced env), ports (container port names).
*/}}
{{- define "confab.workloads" -}}
{{- $ := . -}}
{{- $full := include "confab.fullname" . -}}
{{- $v := .Values -}}
{{- $bind := $v.bindHost -}}
{{- $addr := dict "http" (printf "%s:%d" $bind (int $v.ports.http)) "tcp" (printf "%s:%d" $bind (int $v.ports.tcp)) "grpc" (printf "%s:%d" $bind (int $v.ports.grpc)) -}}
{{- $common := dict "RUST_LOG" $v.logLevel "CONFAB_LOG_FORMAT" $v.logFormat "CONFAB_DATA_DIR" "/var/lib/confab" -}}
{{- $out := list -}}
{{- if eq $v.mode "embedded" -}}
{{- $e := $v.embedded -}}
{{- include "confab.checkName" (list "embedded.cellName" $e.cellName 20) -}}
{{- $s := merge (dict "CONFAB_STORE" "sqlite" "CONFAB_DATA_DIR" "/data" "CONFAB_SQLITE_SYNC" $e.sqliteSync "CONFAB_HTTP_ADDR" $addr.http "CONFAB_TCP_ADDR" $addr.tcp "CONFAB_DRAIN_SECS" (int $e.drainSecs) "CONFAB_IDLE_TIMEOUT_SECS" (int $e.idleTimeoutSecs) "CONFAB_CELL" $e.cellName) $common -}}
{{- $out = append $out (dict "kind" "StatefulSet" "name" $full "component" "serve" "cell" $e.cellName "release" "" "args" (list "serve") "conf" $e "settings" $s "envMaps" (list $v.env $e.env) "secrets" (concat ($v.secretEnv | default list) ($e.secretEnv | default list)) "ports" (list "http" "tcp")) -}}
{{- else if eq $v.mode "distributed" -}}
{{- $controlAddr := "" -}}
{{- if $v.control.enabled -}}
{{- $controlAddr = printf "%s.%s.svc.%s:%d" (include "confab.resourceName" (list $full "control")) .Release.Namespace $v.clusterDomain (int $v.ports.grpc) -}}
{{- end -}}
{{- range $c := (include "confab.cells" $ | fromJson).cells -}}
{{- $cellSettings := merge (dict "CONFAB_CELL" $c.name) $common -}}
{{- if $controlAddr -}}
{{- $_ := set $cellSettings $v.control.addressEnv $controlAddr -}}
{{- end -}}
{{- $redis := include "confab.secretRef" (list (printf "cells[%s].redis" $c.name) "CONFAB_REDIS_URL" $c.redis) | fromJson -}}
{{- if $c.redis.cluster -}}
{{- $_ := set $cellSettings "CONFAB_REDIS_CLUSTER" "true" -}}
{{- end -}}
{{- $cellSecrets := list -}}
{{- if $c.cellSecret.existingSecret -}}
{{- $cellSecrets = append $cellSecrets (include "confab.secretRef" (list (printf "cells[%s].cellSecret" $c.name) "CONFAB_CELL_SECRET" $c.cellSecret) | fromJson) -}}
{{- end -}}
{{- $cellSecretEnv := concat ($v.secretEnv | default list) ($c.secretEnv | default list) -}}
{{- /* gateway */ -}}
{{- $g := $c.gateway -}}
{{- $logicAddrs := $g.logicAddrs | default (list (printf "%s.%s.svc.%s:%d" (include "confab.resourceName" (list $full $c.name "logic")) $.Release.Namespace $v.clusterDomain (int $v.ports.grpc))) -}}
{{- $gs := merge (dict "CONFAB_HTTP_ADDR" $addr.http "CONFAB_TCP_ADDR" $addr.tcp "CONFAB_GRPC_ADDR" $addr.grpc "CONFAB_ADVERTISE_ADDR" (printf "$(POD_IP):%d" (int $v.ports.grpc)) "CONFAB_LOGIC_ADDRS" (join "," $logicAddrs) "CONFAB_DRAIN_SECS" (int $g.drainSecs) "CONFAB_IDLE_TIMEOUT_SECS" (int $g.idleTimeoutSecs)) $cellSettings -}}
{{- $out = append $out (dict "kind" "Deployment" "name" (include "confab.resourceName" (list $full $c.name "gateway")) "component" "gateway" "cell" $c.name "release" "" "args" (list "gateway") "conf" $g "settings" $gs "envMaps" (list $v.env $c.env $g.env) "secrets" (concat (list $redis) $cellSecrets $cellSecretEnv ($g.secretEnv | default list)) "ports" (list "http" "tcp" "grpc")) -}}
{{- /* logic: one Deployment per release label */ -}}
{{- $pg := include "confab.secretRef" (list (printf "cells[%s].postgres" $c.name) "CONFAB_PG_URL" $c.postgres) | fromJson -}}
{{- range $r := $c.logic.releases -}}
{{- $l := include "confab.merge" (list (omit $c.logic "releases") (omit $r "label")) | fromJson -}}
{{- $ls := merge (dict "CONFAB_STORE" "distributed" "CONFAB_HTTP_ADDR" $addr.http "CONFAB_GRPC_ADDR" $addr.grpc "CONFAB_ADVERTISE_ADDR" (printf "$(POD_IP):%d" (int $v.ports.grpc)) "CONFAB_RELEASE" $r.label "CONFAB_DRAIN_SECS" (int $l.drainSecs)) $cellSettings -}}
{{- $out = append $out (dict "kind" "Deployment" "name" (include "confab.resourceName" (list $full $c.name "logic" $r.label)) "component" "logic" "cell" $c.name "release" $r.label "args" (list "logic") "conf" $l "settings" $ls "envMaps" (list $v.env $c.env $l.env) "secrets" (concat (list $pg $redis) $cellSecrets $cellSecretEnv ($l.secretEnv | default list)) "ports" (list "http" "grpc")) -}}
{{- end -}}
{{- /* push workers */ -}}
{{- $p := $c.push -}}
{{- if $p.enabled -}}
{{- $ps := merge (dict "CONFAB_STORE" "distributed" "CONFAB_HTTP_ADDR" $addr.http "CONFAB_DRAIN_SECS" (int $p.drainSecs)) $cellSettings -}}
{{- $out = append $out (dict "kind" "Deployment" "name" (include "confab.resourceName" (list $full $c.name "push")) "component" "push" "cell" $c.name "release" "" "args" (list "push") "conf" $p "settings" $ps "envMaps" (list $v.env $c.env $p.env) "secrets" (concat (list $pg $redis) $cellSecrets $cellSecretEnv ($p.secretEnv | default list)) "ports" (list "http")) -}}
{{- end -}}
{{- end -}}
{{- if $v.control.enabled -}}
{{- $k := $v.control -}}
{{- $kpg := include "confab.secretRef" (list "control.postgres" "CONFAB_PG_URL" $k.postgres) | fromJson -}}
{{- $ks := merge (dict "CONFAB_HTTP_ADDR" $addr.http "CONFAB_GRPC_ADDR" $addr.grpc "CONFAB_DRAIN_SECS" (int $k.drainSecs)) $common -}}
{{- $out = append $out (dict "kind" "Deployment" "name" (include "confab.resourceName" (list $full "control")) "component" "control" "cell" "" "release" "" "args" (list "control") "conf" $k "settings" $ks "envMaps" (list $v.env $k.env) "secrets" (concat (list $kpg) ($v.secretEnv | default list) ($k.secretEnv | default list)) "ports" (list "http" "grpc")) -}}
{{- end -}}
{{- else -}}
{{- fail (printf "mode must be embedded or distributed, not %q" (toString $v.mode)) -}}
{{- end -}}
{{- toJson (dict "workloads" $out) -}}
{{- end -}}

{{/* The env list of a workload. Argument: dict ctx, w. */}}
{{- define "confab.env" -}}
{{- $w := .w -}}
{{- $all := deepCopy $w.settings -}}
{{- range $m := $w.envMaps -}}
{{- range $k, $val := ($m | default dict) -}}
{{- if kindIs "invalid" $val -}}
{{- $_ := unset $all $k -}}
{{- else -}}
{{- $_ := set $all $k $val -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $secrets := dict -}}
{{- range $s := $w.secrets -}}
{{- $n := required "secretEnv entries need a name" $s.name -}}
{{- if hasKey $all $n -}}
{{- fail (printf "%s: %s is set both as a value and from a Secret" $w.name $n) -}}
{{- end -}}
{{- $_ := set $secrets $n $s -}}
{{- end -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- range $k, $val := $all }}
- name: {{ $k }}
  value: {{ include "confab.envValue" $val | quote }}
{{- end }}
{{- range $k, $s := $secrets }}
- name: {{ $k }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "secretEnv %s needs secretName" $k) $s.secretName }}
      key: {{ required (printf "secretEnv %s needs key" $k) $s.key }}
      {{- if $s.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{/* Pod template (metadata + spec) of a workload. Argument: dict ctx, w. */}}
{{- define "confab.podTemplate" -}}
{{- $ctx := .ctx -}}{{- $v := .ctx.Values -}}{{- $w := .w -}}{{- $conf := .w.conf -}}
{{- $sel := dict "ctx" $ctx "component" $w.component "cell" $w.cell "release" $w.release -}}
{{- $preStop := int $conf.preStopSleepSecs -}}
metadata:
  labels:
    {{- include "confab.labels" (set (deepCopy $sel) "version" (include "confab.imageTag" (dict "ctx" $ctx "image" $conf.image))) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    kubectl.kubernetes.io/default-container: confab
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "confab.serviceAccountName" $ctx }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
  terminationGracePeriodSeconds: {{ include "confab.gracePeriod" (dict "ctx" $ctx "conf" $conf) }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and $v.spreadAcrossNodes (ne $w.kind "StatefulSet") }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "confab.selectorLabels" $sel | nindent 10 }}
  {{- end }}
  containers:
    - name: confab
      image: {{ include "confab.image" (dict "ctx" $ctx "image" $conf.image) | quote }}
      imagePullPolicy: {{ ($conf.image | default dict).pullPolicy | default $v.image.pullPolicy }}
      {{- with $v.image.command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      args:
        {{- toYaml $w.args | nindent 8 }}
      env:
        {{- include "confab.env" (dict "ctx" $ctx "w" $w) | nindent 8 }}
      ports:
        {{- range $p := $w.ports }}
        - name: {{ $p }}
          containerPort: {{ int (get $v.ports $p) }}
          protocol: TCP
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ int $v.probes.startup.periodSeconds }}
        timeoutSeconds: {{ int $v.probes.startup.timeoutSeconds }}
        failureThreshold: {{ int $v.probes.startup.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: {{ int $v.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ int $v.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ int $v.probes.readiness.failureThreshold }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ int $v.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ int $v.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ int $v.probes.liveness.failureThreshold }}
      {{- if gt $preStop 0 }}
      lifecycle:
        preStop:
          {{- if eq $v.preStop.type "sleep" }}
          {{- if semverCompare "<1.30.0-0" $ctx.Capabilities.KubeVersion.Version }}
          {{- fail "preStop.type sleep needs Kubernetes >= 1.30; use preStop.type exec" }}
          {{- end }}
          sleep:
            seconds: {{ $preStop }}
          {{- else if eq $v.preStop.type "exec" }}
          exec:
            command: ["sleep", {{ $preStop | quote }}]
          {{- else }}
          {{- fail (printf "preStop.type must be sleep or exec, not %q" $v.preStop.type) }}
          {{- end }}
      {{- end }}
      {{- with $conf.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: state
          mountPath: /var/lib/confab
        - name: tmp
          mountPath: /tmp
        {{- if eq $w.kind "StatefulSet" }}
        - name: data
          mountPath: /data
        {{- end }}
  volumes:
    - name: state
      emptyDir: {}
    - name: tmp
      emptyDir: {}
    {{- if and (eq $w.kind "StatefulSet") (not $conf.persistence.enabled) }}
    - name: data
      emptyDir: {}
    {{- end }}
{{- end -}}

{{/* PromQL matchers selecting this release's series. */}}
{{- define "confab.promSelector" -}}
{{- if .Values.metrics.prometheusRule.selector -}}
{{- .Values.metrics.prometheusRule.selector -}}
{{- else -}}
{{- printf "job=%q,namespace=%q" (include "confab.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}
