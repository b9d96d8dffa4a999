#!/usr/bin/env python3
"""Checks rendered Confab chart manifests (scripts/check-helm runs this).

For each rendered stream (one per values file):
  * every document parses, has apiVersion/kind/metadata.name, and no two
    objects share kind + namespace + name;
  * built-in kinds validate against the Kubernetes OpenAPI schemas of a fixed
    version (kubernetes-validate, strict: unknown fields are errors);
  * ServiceMonitor and PrometheusRule (CRDs, which kubernetes-validate has no
    schema for) validate against the minimal schemas below;
  * references hold together: Service, PDB, NetworkPolicy and ServiceMonitor
    selectors select something, named ports exist, HPAs target a Deployment
    that leaves replicas to them, workload selectors do not overlap, env
    $(VAR) references are defined earlier, probes use /readyz and /healthz,
    and every pod's grace period is longer than its drain + preStop;
  * the Grafana dashboard ConfigMap holds the chart's JSON and every panel
    has a query; the PrometheusRule's groups and the dashboard's queries are
    written out for `promtool check rules`;
  * every Confab metric named in rules or dashboard exists in services/ (or is
    one of PENDING_METRICS), with only the labels the code gives it.
"""

import argparse
import json
import os
import re
import sys

import jsonschema
import kubernetes_validate
import yaml

# Metrics that the binary is gaining in the same change as this chart (issue
# 10); their names and labels are agreed. Remove an entry once services/
# defines it (the check then reads the code).
PENDING_METRICS: dict = {}

# metrics-process (every Confab process exports these).
PROCESS_METRICS = {
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_heap_bytes",
    "process_start_time_seconds",
    "process_threads",
}

# Labels every scraped series has: Prometheus and the Prometheus Operator's
# (job, instance, namespace, service, pod, container, endpoint) and the
# chart's ServiceMonitor relabelings (cell, component, confab_release, node).
TARGET_LABELS = {
    "job", "instance", "namespace", "service", "pod", "container", "endpoint",
    "cell", "component", "confab_release", "node", "__name__",
}

CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "matchExpressions": {"type": "array"},
                        },
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                                "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                                "honorLabels": {"type": "boolean"},
                                "relabelings": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
                                            "targetLabel": {"type": "string"},
                                            "regex": {"type": "string"},
                                            "replacement": {"type": "string"},
                                            "separator": {"type": "string"},
                                            "action": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "properties": {
                                            "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": {"type": "string", "pattern": "^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?$"},
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

WORKLOAD_KINDS = {"Deployment", "StatefulSet"}


class Checker:
    def __init__(self, name, kube_version):
        self.name = name
        self.kube_version = kube_version
        self.errors = []
        self.notes = []

    def err(self, obj, msg):
        where = f"{obj['kind']}/{obj['metadata']['name']}" if isinstance(obj, dict) and "kind" in obj else str(obj)
        self.errors.append(f"{self.name}: {where}: {msg}")


def label_selector_matches(sel, labels):
    """A LabelSelector against labels; an empty selector selects nothing here."""
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return False
    if any(labels.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
        return False
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e["operator"], e["key"], e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def container_ports(w):
    names = set()
    for c in pod_spec(w)["containers"]:
        for p in c.get("ports") or []:
            if "name" in p:
                names.add(p["name"])
    return names


def check_stream(path, kube_version, out_dir, dashboard_file):
    name = os.path.splitext(os.path.basename(path))[0]
    ck = Checker(name, kube_version)
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        ck.errors.append(f"{name}: does not parse as YAML: {e}")
        return ck
    if not docs:
        ck.errors.append(f"{name}: no documents")
        return ck

    seen = {}
    for d in docs:
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
            ck.errors.append(f"{name}: a document lacks apiVersion, kind or metadata.name: {str(d)[:120]}")
            continue
        key = (d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else "", d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        if key in seen:
            ck.err(d, "defined twice")
        seen[key] = d
    docs = list(seen.values())

    # Schemas.
    crd_kinds = set()
    for d in docs:
        crd = CRD_SCHEMAS.get((d["apiVersion"], d["kind"]))
        if crd is not None:
            crd_kinds.add(d["kind"])
            for e in jsonschema.Draft7Validator(crd).iter_errors(d):
                ck.err(d, f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}")
            continue
        try:
            kubernetes_validate.validate(d, kube_version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError:
            ck.err(d, f"no Kubernetes {kube_version} schema for {d['apiVersion']} {d['kind']}")
        except kubernetes_validate.utils.ValidationError as e:
            path_ = ".".join(str(p) for p in e.path)
            ck.err(d, f"{path_}: {e.message}")
    for k in sorted(crd_kinds):
        ck.notes.append(f"{k}: a CRD: checked against the minimal schema in helm/tools/validate.py (kubernetes-validate has no CRD schemas)")

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    services = by_kind.get("Service", [])

    def pods_matching(selector_labels, expressions=None):
        sel = {"matchLabels": selector_labels, "matchExpressions": expressions or []}
        return [w for w in workloads if label_selector_matches(sel, w["spec"]["template"]["metadata"].get("labels") or {})]

    # Workloads.
    for w in workloads:
        tl = w["spec"]["template"]["metadata"].get("labels") or {}
        sel = w["spec"]["selector"]
        if not label_selector_matches(sel, tl):
            ck.err(w, "selector does not match its own pod template labels")
        for other in workloads:
            if other is not w and label_selector_matches(sel, other["spec"]["template"]["metadata"].get("labels") or {}):
                ck.err(w, f"selector also matches the pods of {other['kind']}/{other['metadata']['name']}")
        if w["kind"] == "StatefulSet":
            svc = next((s for s in services if s["metadata"]["name"] == w["spec"].get("serviceName")), None)
            if svc is None or svc["spec"].get("clusterIP") != "None":
                ck.err(w, f"serviceName {w['spec'].get('serviceName')!r} is not a headless Service of the chart")
        spec = pod_spec(w)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec["containers"]:
            env = c.get("env") or []
            names = [e["name"] for e in env]
            if len(names) != len(set(names)):
                ck.err(w, f"container {c['name']}: duplicate env names {sorted({n for n in names if names.count(n) > 1})}")
            defined = set()
            for e in env:
                for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value") or ""):
                    if ref not in defined:
                        ck.err(w, f"env {e['name']} refers to $({ref}) before it is defined")
                defined.add(e["name"])
            values = {e["name"]: e.get("value") for e in env}
            drain = int(values.get("CONFAB_DRAIN_SECS") or 5)
            pre = ((c.get("lifecycle") or {}).get("preStop")) or {}
            pre_secs = 0
            if "sleep" in pre:
                pre_secs = int(pre["sleep"]["seconds"])
            elif "exec" in pre:
                cmd = pre["exec"]["command"]
                if len(cmd) == 2 and cmd[0].endswith("sleep"):
                    pre_secs = int(cmd[1])
            if not grace > drain + pre_secs:
                ck.err(w, f"terminationGracePeriodSeconds {grace} is not above drain {drain} s + preStop {pre_secs} s")
            rp = (c.get("readinessProbe") or {}).get("httpGet") or {}
            lp = (c.get("livenessProbe") or {}).get("httpGet") or {}
            if rp.get("path") != "/readyz" or lp.get("path") != "/healthz":
                ck.err(w, "readiness must probe /readyz and liveness /healthz")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in container_ports(w):
                    ck.err(w, f"{probe} uses port {port!r} that the container does not declare")
            res = c.get("resources") or {}
            if not res.get("requests"):
                ck.err(w, f"container {c['name']} has no resource requests")

    # Services.
    for s in services:
        sel = s["spec"].get("selector") or {}
        targets = pods_matching(sel)
        if not targets:
            ck.err(s, f"selector {sel} matches no pods of the chart")
            continue
        for p in s["spec"].get("ports") or []:
            tp = p.get("targetPort")
            if isinstance(tp, str):
                for w in targets:
                    if tp not in container_ports(w):
                        ck.err(s, f"targetPort {tp!r} is not a port of {w['kind']}/{w['metadata']['name']}")

    # HPAs.
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        ref = h["spec"]["scaleTargetRef"]
        target = next((w for w in workloads if w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"]), None)
        if target is None:
            ck.err(h, f"scaleTargetRef {ref['kind']}/{ref['name']} is not in the chart")
        elif "replicas" in target["spec"]:
            ck.err(h, f"{ref['kind']}/{ref['name']} sets replicas: it would fight the HPA on every upgrade")
        if h["spec"]["minReplicas"] > h["spec"]["maxReplicas"]:
            ck.err(h, "minReplicas above maxReplicas")

    # PDBs.
    for p in by_kind.get("PodDisruptionBudget", []):
        targets = [w for w in workloads if label_selector_matches(p["spec"]["selector"], w["spec"]["template"]["metadata"].get("labels") or {})]
        if len(targets) != 1:
            ck.err(p, f"selects the pods of {len(targets)} workloads (want exactly 1)")

    # NetworkPolicies.
    for n in by_kind.get("NetworkPolicy", []):
        targets = [w for w in workloads if label_selector_matches(n["spec"]["podSelector"], w["spec"]["template"]["metadata"].get("labels") or {})]
        if not targets:
            ck.err(n, "podSelector matches no pods of the chart")
        for rule in n["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if isinstance(port.get("port"), str):
                    for w in targets:
                        if port["port"] not in container_ports(w):
                            ck.err(n, f"port {port['port']!r} is not a port of {w['kind']}/{w['metadata']['name']}")

    # Ingresses.
    for i in by_kind.get("Ingress", []):
        for rule in i["spec"].get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                b = p["backend"]["service"]
                svc = next((s for s in services if s["metadata"]["name"] == b["name"]), None)
                if svc is None:
                    ck.err(i, f"backend Service {b['name']} is not in the chart")
                elif "name" in b.get("port", {}) and b["port"]["name"] not in {x.get("name") for x in svc["spec"]["ports"]}:
                    ck.err(i, f"backend port {b['port']['name']!r} is not a port of Service {b['name']}")

    # ServiceMonitor.
    for m in by_kind.get("ServiceMonitor", []):
        sel = m["spec"]["selector"]
        chosen = [s for s in services if label_selector_matches(sel, s["metadata"].get("labels") or {})]
        if not chosen:
            ck.err(m, "selects no Service")
        for s in chosen:
            ports = {p.get("name") for p in s["spec"]["ports"]}
            for ep in m["spec"]["endpoints"]:
                if ep.get("port") not in ports:
                    ck.err(m, f"endpoint port {ep.get('port')!r} is not a port of Service {s['metadata']['name']}")
            if m["spec"].get("jobLabel") and m["spec"]["jobLabel"] not in (s["metadata"].get("labels") or {}):
                ck.err(m, f"Service {s['metadata']['name']} lacks the jobLabel label {m['spec']['jobLabel']}")
        components = {(s["metadata"]["labels"] or {}).get("app.kubernetes.io/component") for s in chosen}
        for w in workloads:
            c = w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
            if c not in components:
                ck.err(m, f"the {c} pods of {w['metadata']['name']} are not scraped")

    # PrometheusRule -> a plain rules file for promtool.
    for r in by_kind.get("PrometheusRule", []):
        with open(os.path.join(out_dir, f"{name}.rules.yaml"), "w") as f:
            yaml.safe_dump({"groups": r["spec"]["groups"]}, f, sort_keys=False, width=1000)

    # Dashboard ConfigMap.
    with open(dashboard_file) as f:
        chart_dashboard = json.load(f)
    for cm in by_kind.get("ConfigMap", []):
        for key, text in (cm.get("data") or {}).items():
            if not key.endswith(".json"):
                continue
            try:
                dash = json.loads(text)
            except json.JSONDecodeError as e:
                ck.err(cm, f"{key} is not JSON: {e}")
                continue
            if dash != chart_dashboard:
                ck.err(cm, f"{key} differs from {os.path.relpath(dashboard_file)}")
            if (cm["metadata"].get("labels") or {}).get("grafana_dashboard") != "1":
                ck.err(cm, "lacks the label grafana_dashboard: \"1\" the Grafana sidecar looks for")

    return ck


def check_dashboard(path, out_dir):
    """The dashboard on its own: JSON, ids, queries; its queries as recording
    rules (Grafana variables replaced) so promtool parses them."""
    errors = []
    with open(path) as f:
        try:
            dash = json.load(f)
        except json.JSONDecodeError as e:
            return [f"{path}: not JSON: {e}"], []
    for field in ("title", "uid", "panels", "schemaVersion", "templating"):
        if field not in dash:
            errors.append(f"{path}: no {field}")
    ids = set()
    exprs = []
    for p in dash.get("panels", []):
        if p.get("id") in ids:
            errors.append(f"{path}: panel id {p.get('id')} twice")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            errors.append(f"{path}: panel {p.get('title')!r} has no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets):
            errors.append(f"{path}: panel {p.get('title')!r} has a target without a query")
        exprs.extend((p.get("title"), t.get("expr", "")) for t in targets)
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    for title, e in exprs:
        for var in re.findall(r"\$(?:\{)?([A-Za-z_]+)", e):
            if var not in variables and not var.startswith("__"):
                errors.append(f"{path}: panel {title!r} uses ${var}, which is not a dashboard variable")
    rules = []
    for i, (title, e) in enumerate(exprs):
        concrete = e.replace("$__rate_interval", "5m").replace("$job", "confab").replace("$cell", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    with open(os.path.join(out_dir, "dashboard.queries.yaml"), "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, sort_keys=False, width=1000)
    return errors, [e for _, e in exprs]


def code_metrics(services_dir):
    """Metric name -> label names, from the metrics macros in services/."""
    known = {}
    macro = re.compile(r"\b(?:counter|gauge|histogram)!\(")
    for root, _, files in os.walk(services_dir):
        for fn in files:
            if not fn.endswith(".rs"):
                continue
            with open(os.path.join(root, fn)) as f:
                text = f.read()
            for m in macro.finditer(text):
                depth, i = 1, m.end()
                while i < len(text) and depth:
                    depth += {"(": 1, ")": -1}.get(text[i], 0)
                    i += 1
                args = text[m.end():i - 1]
                name = re.match(r'\s*"([a-z_:][a-z0-9_:]*)"', args)
                if name:
                    known.setdefault(name.group(1), set()).update(re.findall(r'"([a-z_]+)"\s*=>', args))
    return known


def check_metric_names(sources, services_dir):
    errors = []
    known = code_metrics(services_dir)
    if not known:
        return [f"no metrics found under {services_dir}: is the path right?"]
    for name, labels in PENDING_METRICS.items():
        if name in known:
            print(f"note: {name} is now defined in services/: drop it from PENDING_METRICS in helm/tools/validate.py")
        known.setdefault(name, set()).update(labels)
    for name in PROCESS_METRICS:
        known.setdefault(name, set())

    def base(metric):
        for suffix in ("_bucket", "_sum", "_count"):
            if metric.endswith(suffix) and metric[: -len(suffix)] in known:
                return metric[: -len(suffix)], suffix
        return metric, ""

    for where, expr in sources:
        names = set(re.findall(r"\b((?:confab|process)_[a-z0-9_]+)\b", re.sub(r'__name__=~"[^"]*"', "", expr)))
        for regex in re.findall(r'__name__=~"([^"]+)"', expr):
            names |= {n for n in known if re.fullmatch(regex, n)}
            if not any(re.fullmatch(regex, n) for n in known):
                errors.append(f"{where}: __name__=~\"{regex}\" matches no known metric")
        for n in sorted(names):
            b, _ = base(n)
            if b in TARGET_LABELS:
                continue
            if b not in known:
                errors.append(f"{where}: metric {n} is not defined in services/ (nor pending)")
        # Label matchers on a metric: metric{a="..",b=~".."}
        for metric, body in re.findall(r"\b((?:confab|process)_[a-z0-9_]+)\{([^}]*)\}", expr):
            b, suffix = base(metric)
            if b not in known:
                continue
            allowed = known.get(b, set()) | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
            for lbl in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body):
                if lbl not in allowed:
                    errors.append(f"{where}: {metric} has no label {lbl!r} (it has {sorted(known.get(b, set())) or 'none'})")
        # Grouping labels of a single metric: by (x, y) (rate(metric{ ...
        for by, metric in re.findall(r"by \(([^)]*)\)\s*\((?:rate\(|irate\(|increase\()?\s*((?:confab|process)_[a-z0-9_]+)\b", expr):
            b, suffix = base(metric)
            if b not in known:
                continue
            allowed = known.get(b, set()) | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
            for lbl in [x.strip() for x in by.split(",") if x.strip()]:
                if lbl not in allowed:
                    errors.append(f"{where}: groups {metric} by {lbl!r}, which it does not have")
    return errors


def check_runbooks(out_dir, doc):
    """Every alert has a runbook_url whose #anchor is a heading of the doc."""
    errors = []
    with open(doc) as f:
        anchors = {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", f.read(), re.M)}
    for fn in sorted(os.listdir(out_dir)):
        if not fn.endswith(".rules.yaml"):
            continue
        with open(os.path.join(out_dir, fn)) as f:
            for g in yaml.safe_load(f)["groups"]:
                for r in g["rules"]:
                    if "alert" not in r:
                        continue
                    url = (r.get("annotations") or {}).get("runbook_url")
                    if url is None:
                        continue
                    anchor = url.rsplit("#", 1)[-1] if "#" in url else ""
                    if anchor not in anchors:
                        errors.append(f"{fn}: {r['alert']}: runbook_url anchor #{anchor} is not a heading of {doc}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kube-version", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--services", required=True, help="the services/ directory (metric definitions)")
    ap.add_argument("--runbooks", help="the doc whose '### <Alert>' sections the runbook_url anchors point at")
    ap.add_argument("streams", nargs="+")
    args = ap.parse_args()

    errors = []
    sources = []
    for path in args.streams:
        ck = check_stream(path, args.kube_version, args.out_dir, args.dashboard)
        errors.extend(ck.errors)
        for n in ck.notes:
            print(f"note: {ck.name}: {n}")
        n_docs = sum(1 for _ in open(path) if _.startswith("---"))
        print(f"{'FAIL' if ck.errors else 'ok'}  {ck.name}: {n_docs} documents against Kubernetes {args.kube_version} schemas and cross-references")
        rules_file = os.path.join(args.out_dir, f"{ck.name}.rules.yaml")
        if os.path.exists(rules_file):
            with open(rules_file) as f:
                for g in yaml.safe_load(f)["groups"]:
                    for r in g["rules"]:
                        sources.append((f"{ck.name}: rule {r.get('alert') or r.get('record')}", r["expr"]))

    dash_errors, dash_exprs = check_dashboard(args.dashboard, args.out_dir)
    errors.extend(dash_errors)
    sources.extend(("dashboard", e) for e in dash_exprs)
    print(f"{'FAIL' if dash_errors else 'ok'}  dashboard: {len(dash_exprs)} queries")

    if args.runbooks:
        rb_errors = check_runbooks(args.out_dir, args.runbooks)
        errors.extend(rb_errors)
        print(f"{'FAIL' if rb_errors else 'ok'}  every alert's runbook_url has a section in {args.runbooks}")

    metric_errors = check_metric_names(sources, args.services)
    errors.extend(metric_errors)
    print(f"{'FAIL' if metric_errors else 'ok'}  metric names and labels in {len(sources)} rule and dashboard queries")

    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
