#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests offline.

    kubectl kustomize docker/k8s/overlays/prod | scripts/validate-k8s.py --name prod -

Every object is checked against the JSON schema of its kind for Kubernetes 1.32
(strict: unknown fields are errors): the built-in kinds with the schemas bundled
in the PyPI package kubernetes-validate, the CRDs (ServiceMonitor, ScaledObject)
with the small schemas in docker/k8s/schemas/. A kind without a schema is an
error. Then every pod template must pass the restricted Pod Security Standard
(checked here field by field, as the admission controller would) and reportd's
own rules: numeric non-root user, read-only root filesystem, no service-account
token, sized emptyDirs and ephemeral-storage requests and limits, the three
probes, a version-tagged image, references that resolve, at most one
autoscaler per workload. Needs PyYAML, jsonschema and kubernetes-validate:
scripts/validate-setup.sh installs them into a venv. No network is used.

Exit status 0 when everything passes, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

try:
    import kubernetes_validate.utils as kv
except ImportError:  # pragma: no cover - reported below
    kv = None

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docker" / "k8s" / "schemas"
K8S_VERSION = "1.32.0"

POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# Pod Security Standards (Kubernetes 1.32), baseline and restricted.
BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
RESTRICTED_CAPS = {"NET_BIND_SERVICE"}
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# KEDA kafka scaler: trigger metadata keys (the rest, e.g. SASL secrets, belong in a TriggerAuthentication).
KAFKA_TRIGGER_KEYS = {
    "bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
    "allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions", "partitionLimitation", "version", "sasl", "tls", "unsafeSsl",
    "saslTokenProvider", "awsRegion",
}


class Problems:
    def __init__(self, name: str):
        self.name = name
        self.items: list[str] = []

    def add(self, obj: dict | None, path: str, message: str) -> None:
        where = ""
        if obj is not None:
            where = f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}: "
        self.items.append(f"{self.name}: {where}{path}{': ' if path else ''}{message}")


QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
QUANTITY_FACTORS = {
    None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def quantity(q) -> float:
    """The value of a Kubernetes quantity (64Mi, 5Gi, 250m, 1, 1e3); ValueError if it is not one."""
    m = QUANTITY.fullmatch(str(q))
    if not m:
        raise ValueError(f"{q!r} is not a Kubernetes quantity")
    n, unit = float(m.group(1)), m.group(2)
    if unit and unit[0] in "eE":
        return n * 10 ** int(unit[1:])
    return n * QUANTITY_FACTORS[unit]


def dig(d, *path):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


# ---------------------------------------------------------------- schemas

def crd_schemas() -> dict[tuple[str, str], dict]:
    out = {}
    for f in sorted(SCHEMA_DIR.glob("*.json")):
        s = json.loads(f.read_text())
        api = s["properties"]["apiVersion"]["const"]
        kind = s["properties"]["kind"]["const"]
        out[(api, kind)] = s
    return out


def check_schema(obj: dict, crds: dict, p: Problems) -> None:
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in crds:
        v = jsonschema.Draft202012Validator(crds[key])
        for e in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            p.add(obj, "/".join(map(str, e.absolute_path)), f"schema: {e.message}")
        return
    try:
        kv.validate(obj, K8S_VERSION, strict=True)
    except kv.SchemaNotFoundError:
        p.add(obj, "", f"no schema for {key[0]} {key[1]} (Kubernetes {K8S_VERSION} or docker/k8s/schemas/)")
    except kv.ValidationError as e:
        p.add(obj, "/".join(map(str, e.absolute_path)), f"schema (Kubernetes {K8S_VERSION}): {e.message}")


# ---------------------------------------------------------------- pods

def all_containers(spec: dict):
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(field) or []):
            yield f"{field}[{i}]", c


def check_pss_restricted(obj: dict, where: str, meta: dict, spec: dict, p: Problems) -> None:
    """The restricted Pod Security Standard (which includes baseline), per field."""
    psc = spec.get("securityContext") or {}
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(f):
            p.add(obj, f"{where}.spec.{f}", "must be unset or false (baseline: host namespaces)")
    if dig(psc, "windowsOptions", "hostProcess"):
        p.add(obj, f"{where}.spec.securityContext.windowsOptions.hostProcess", "must not be true (baseline)")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            p.add(obj, f"{where}.spec.securityContext.sysctls", f"{s.get('name')} is not a safe sysctl (baseline)")
    for v in spec.get("volumes") or []:
        kinds = [k for k in v if k != "name"]
        if "hostPath" in kinds:
            p.add(obj, f"{where}.spec.volumes[{v.get('name')}]", "hostPath volumes are forbidden (baseline)")
        for k in kinds:
            if k not in RESTRICTED_VOLUMES:
                p.add(obj, f"{where}.spec.volumes[{v.get('name')}]", f"volume type {k} is not allowed (restricted)")
    for k, val in (meta.get("annotations") or {}).items():
        if k.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            val == "runtime/default" or val.startswith("localhost/")
        ):
            p.add(obj, f"{where}.metadata.annotations[{k}]", "AppArmor must be runtime/default or localhost/* (baseline)")

    def check_sc(path: str, sc: dict) -> None:
        if dig(sc, "appArmorProfile", "type") not in (None, "RuntimeDefault", "Localhost"):
            p.add(obj, f"{path}.appArmorProfile.type", "must be RuntimeDefault or Localhost (baseline)")
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            p.add(obj, f"{path}.seLinuxOptions", "only the container_* types, no user or role (baseline)")
        if dig(sc, "seccompProfile", "type") == "Unconfined":
            p.add(obj, f"{path}.seccompProfile.type", "must not be Unconfined (baseline)")
        if sc.get("runAsUser") == 0:
            p.add(obj, f"{path}.runAsUser", "must not be 0 (restricted)")
        if sc.get("runAsNonRoot") is False:
            p.add(obj, f"{path}.runAsNonRoot", "must not be false (restricted)")

    check_sc(f"{where}.spec.securityContext", psc)
    pod_seccomp = dig(psc, "seccompProfile", "type") in ("RuntimeDefault", "Localhost")
    pod_nonroot = psc.get("runAsNonRoot") is True
    for cpath, c in all_containers(spec):
        path = f"{where}.spec.{cpath}({c.get('name')}).securityContext"
        sc = c.get("securityContext") or {}
        check_sc(path, sc)
        if sc.get("privileged"):
            p.add(obj, f"{path}.privileged", "must not be true (baseline)")
        if sc.get("procMount", "Default") != "Default":
            p.add(obj, f"{path}.procMount", "must be Default (baseline)")
        if dig(sc, "windowsOptions", "hostProcess"):
            p.add(obj, f"{path}.windowsOptions.hostProcess", "must not be true (baseline)")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                p.add(obj, f"{where}.spec.{cpath}({c.get('name')}).ports", "hostPort is forbidden (baseline)")
        if sc.get("allowPrivilegeEscalation") is not False:
            p.add(obj, f"{path}.allowPrivilegeEscalation", "must be false (restricted)")
        if not pod_nonroot and sc.get("runAsNonRoot") is not True:
            p.add(obj, f"{path}.runAsNonRoot", "must be true here or in the pod's securityContext (restricted)")
        if not pod_seccomp and dig(sc, "seccompProfile", "type") not in ("RuntimeDefault", "Localhost"):
            p.add(obj, f"{path}.seccompProfile.type", "must be RuntimeDefault or Localhost here or in the pod (restricted)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            p.add(obj, f"{path}.capabilities.drop", "must include ALL (restricted)")
        for cap in caps.get("add") or []:
            if cap not in RESTRICTED_CAPS:
                p.add(obj, f"{path}.capabilities.add", f"{cap} may not be added (restricted: NET_BIND_SERVICE only)")
            elif cap not in BASELINE_CAPS:  # pragma: no cover - RESTRICTED_CAPS is a subset
                p.add(obj, f"{path}.capabilities.add", f"{cap} may not be added (baseline)")


def image_problem(image: str | None) -> str | None:
    if not image:
        return "no image"
    if "@sha256:" in image:
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a colon in a registry port does not count)
        return f"image {image} has no version tag"
    if tag == "latest":
        return f"image {image} uses latest"
    if not re.match(r"v?[0-9]", tag):
        return f"image {image}: tag {tag} is not a version"
    return None


def check_pod_hardening(obj: dict, where: str, spec: dict, p: Problems) -> None:
    """reportd's rules on top of the restricted standard."""
    psc = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        p.add(obj, f"{where}.spec.automountServiceAccountToken", "must be false (reportd never calls the API)")
    sized = 0.0
    for v in spec.get("volumes") or []:
        if "emptyDir" in v:
            limit = (v.get("emptyDir") or {}).get("sizeLimit")
            if limit is None:
                p.add(obj, f"{where}.spec.volumes[{v['name']}].emptyDir.sizeLimit", "must be set")
            else:
                try:
                    size = quantity(limit)
                except ValueError as e:
                    p.add(obj, f"{where}.spec.volumes[{v['name']}].emptyDir.sizeLimit", str(e))
                    continue
                if (v["emptyDir"].get("medium") or "") != "Memory":
                    sized += size
    eph_limits = 0.0
    for cpath, c in all_containers(spec):
        path = f"{where}.spec.{cpath}({c.get('name')})"
        sc = c.get("securityContext") or {}
        user = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(user, int) or user <= 0:
            p.add(obj, f"{path}.securityContext.runAsUser", "a numeric non-root user must be set (here or in the pod)")
        if sc.get("readOnlyRootFilesystem") is not True:
            p.add(obj, f"{path}.securityContext.readOnlyRootFilesystem", "must be true")
        problem = image_problem(c.get("image"))
        if problem:
            p.add(obj, f"{path}.image", problem)
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for name, q in (res.get(kind) or {}).items():
                try:
                    quantity(q)
                except ValueError as e:
                    p.add(obj, f"{path}.resources.{kind}.{name}", str(e))
            if "ephemeral-storage" not in (res.get(kind) or {}):
                p.add(obj, f"{path}.resources.{kind}", "ephemeral-storage must be set")
        if "memory" not in (res.get("limits") or {}):
            p.add(obj, f"{path}.resources.limits", "memory must be set")
        if "cpu" not in (res.get("requests") or {}):
            p.add(obj, f"{path}.resources.requests", "cpu must be set (autoscalers measure against it)")
        try:
            eph_limits += quantity((res.get("limits") or {}).get("ephemeral-storage", 0))
        except ValueError:
            pass  # reported above
        if cpath.startswith("containers"):
            for probe, want in (("livenessProbe", "/health"), ("readinessProbe", "/ready"), ("startupProbe", None)):
                pr = c.get(probe)
                if not pr:
                    p.add(obj, f"{path}.{probe}", "must be set")
                elif want and dig(pr, "httpGet", "path") != want:
                    p.add(obj, f"{path}.{probe}", f"must be an httpGet of {want}")
            ports = {pt.get("name") for pt in c.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = dig(c, probe, "httpGet", "port")
                if isinstance(port, str) and port not in ports:
                    p.add(obj, f"{path}.{probe}.httpGet.port", f"no container port named {port}")
            mounts = {m.get("name") for m in c.get("volumeMounts") or []}
            vols = {v.get("name") for v in spec.get("volumes") or []}
            for m in sorted(mounts - vols):
                p.add(obj, f"{path}.volumeMounts", f"volume {m} is not defined")
            if not any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts") or []):
                p.add(obj, f"{path}.volumeMounts", "/tmp must be a volume (the root filesystem is read-only)")
    if sized and eph_limits and sized > eph_limits:
        p.add(obj, f"{where}.spec.volumes", "emptyDir sizeLimits add up to more than the ephemeral-storage limits")


def pod_templates(obj: dict):
    kind = obj.get("kind")
    if kind == "Pod":
        yield "", obj.get("metadata") or {}, obj.get("spec") or {}
    elif kind in POD_TEMPLATE_PATHS:
        t = dig(obj, *POD_TEMPLATE_PATHS[kind])
        if isinstance(t, dict):
            yield ".".join(POD_TEMPLATE_PATHS[kind]), t.get("metadata") or {}, t.get("spec") or {}


# ---------------------------------------------------------------- references

def matches(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def check_references(objs: list[dict], external_secrets: set[str], p: Problems) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for o in objs:
        by_kind.setdefault(o.get("kind"), {})[dig(o, "metadata", "name")] = o
    pods = []  # (owner, labels, spec)
    for o in objs:
        for where, meta, spec in pod_templates(o):
            pods.append((o, meta.get("labels") or {}, spec))
            if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
                if not matches(dig(o, "spec", "selector"), meta.get("labels") or {}):
                    p.add(o, "spec.selector", "does not match the pod template's labels")
            sa = spec.get("serviceAccountName")
            if sa and sa not in by_kind.get("ServiceAccount", {}):
                p.add(o, f"{where}.spec.serviceAccountName", f"ServiceAccount {sa} is not in the output")
            for _, c in all_containers(spec):
                for ref in c.get("envFrom") or []:
                    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        name = dig(ref, field, "name")
                        if name and name not in by_kind.get(kind, {}) and name not in external_secrets:
                            p.add(o, f"{where} envFrom", f"{kind} {name} is neither in the output nor declared external")
            for v in spec.get("volumes") or []:
                name = dig(v, "configMap", "name")
                # optional: the pod starts without it (an empty directory), by design.
                if name and name not in by_kind.get("ConfigMap", {}) and not dig(v, "configMap", "optional"):
                    p.add(o, f"{where}.spec.volumes[{v.get('name')}]", f"ConfigMap {name} is not in the output")

    def selects_pods(o: dict, selector: dict | None, what: str) -> None:
        if not any(matches(selector, labels) for _, labels, _ in pods):
            p.add(o, what, "selects no pod")

    for o in by_kind.get("Service", {}).values():
        sel = dig(o, "spec", "selector")
        if sel:
            selects_pods(o, {"matchLabels": sel}, "spec.selector")
    for o in by_kind.get("PodDisruptionBudget", {}).values():
        selects_pods(o, dig(o, "spec", "selector"), "spec.selector")
    for o in by_kind.get("NetworkPolicy", {}).values():
        selects_pods(o, dig(o, "spec", "podSelector"), "spec.podSelector")
    for o in by_kind.get("ServiceMonitor", {}).values():
        sel = dig(o, "spec", "selector")
        svcs = [s for s in by_kind.get("Service", {}).values() if matches(sel, dig(s, "metadata", "labels") or {})]
        if not svcs:
            p.add(o, "spec.selector", "selects no Service")
        for ep in dig(o, "spec", "endpoints") or []:
            for s in svcs:
                if ep.get("port") and ep["port"] not in {pt.get("name") for pt in dig(s, "spec", "ports") or []}:
                    p.add(o, "spec.endpoints.port", f"Service {dig(s, 'metadata', 'name')} has no port {ep['port']}")

    # Autoscalers: the target exists; one autoscaler per workload (KEDA makes its own HPA).
    targets: dict[tuple[str, str], list[str]] = {}
    workloads = {(k, n) for k in ("Deployment", "StatefulSet") for n in by_kind.get(k, {})}
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for o in by_kind.get(kind, {}).values():
            ref = dig(o, "spec", "scaleTargetRef") or {}
            t = (ref.get("kind") or "Deployment", ref.get("name"))
            if t not in workloads:
                p.add(o, "spec.scaleTargetRef", f"{t[0]} {t[1]} is not in the output")
            targets.setdefault(t, []).append(f"{kind}/{dig(o, 'metadata', 'name')}")
            target = by_kind.get(t[0], {}).get(t[1])
            if target is not None and dig(target, "spec", "replicas") is not None:
                p.add(target, "spec.replicas", f"must be left out: {kind}/{dig(o, 'metadata', 'name')} owns the count "
                      "(kubectl apply would reset it)")
    for t, scalers in targets.items():
        if len(scalers) > 1:
            p.add(None, "", f"{t[0]}/{t[1]} has more than one autoscaler: {', '.join(scalers)}")
    for o in by_kind.get("ScaledObject", {}).values():
        target = by_kind.get("Deployment", {}).get(dig(o, "spec", "scaleTargetRef", "name"))
        for i, t in enumerate(dig(o, "spec", "triggers") or []):
            md = t.get("metadata") or {}
            if t.get("type") == "kafka":
                for k in sorted(set(md) - KAFKA_TRIGGER_KEYS):
                    p.add(o, f"spec.triggers[{i}].metadata.{k}", "not a kafka scaler setting")
                for k in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
                    if not md.get(k):
                        p.add(o, f"spec.triggers[{i}].metadata.{k}", "must be set")
                for k in ("lagThreshold", "activationLagThreshold"):
                    if k in md and not re.fullmatch(r"[0-9]+", md[k]):
                        p.add(o, f"spec.triggers[{i}].metadata.{k}", "must be a whole number")
            elif t.get("type") in ("cpu", "memory"):
                if t.get("metricType") not in ("Utilization", "AverageValue"):
                    p.add(o, f"spec.triggers[{i}].metricType", "must be Utilization or AverageValue")
                if "type" in md:
                    p.add(o, f"spec.triggers[{i}].metadata.type", "removed in KEDA 2.18: use metricType")
                if not re.fullmatch(r"[0-9]+", md.get("value", "")):
                    p.add(o, f"spec.triggers[{i}].metadata.value", "must be a whole number")
                if target:
                    for _, c in all_containers(dig(target, "spec", "template", "spec") or {}):
                        if t["type"] not in (dig(c, "resources", "requests") or {}):
                            p.add(o, f"spec.triggers[{i}]", f"container {c.get('name')} has no {t['type']} request")
        mn, mx = dig(o, "spec", "minReplicaCount"), dig(o, "spec", "maxReplicaCount")
        if isinstance(mn, int) and isinstance(mx, int) and mn > mx:
            p.add(o, "spec", "minReplicaCount > maxReplicaCount")


# ---------------------------------------------------------------- main

def validate(objs: list[dict], name: str, external_secrets: set[str]) -> list[str]:
    p = Problems(name)
    crds = crd_schemas()
    seen = set()
    for o in objs:
        if not isinstance(o, dict) or "kind" not in o or "apiVersion" not in o:
            p.add(None, "", f"not a Kubernetes object: {str(o)[:80]}")
            continue
        key = (o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "", o["kind"], dig(o, "metadata", "name"))
        if key in seen:
            p.add(o, "", "defined twice")
        seen.add(key)
        check_schema(o, crds, p)
        for where, meta, spec in pod_templates(o):
            check_pss_restricted(o, where, meta, spec, p)
            check_pod_hardening(o, where, spec, p)
    check_references(objs, external_secrets, p)
    return p.items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="multi-document YAML files, - for stdin")
    ap.add_argument("--name", default="manifests", help="prefix for messages (e.g. the overlay)")
    ap.add_argument("--external-secret", action="append", default=[],
                    help="a Secret the manifests use but do not contain (created out of band)")
    args = ap.parse_args()
    if kv is None:
        print("validate-k8s.py: kubernetes-validate is missing; run scripts/validate-setup.sh", file=sys.stderr)
        return 2
    objs = []
    for f in args.files:
        text = sys.stdin.read() if f == "-" else Path(f).read_text()
        objs.extend(d for d in yaml.safe_load_all(text) if d is not None)
    if not objs:
        print(f"{args.name}: no objects", file=sys.stderr)
        return 1
    problems = validate(objs, args.name, set(args.external_secret))
    for line in problems:
        print(line)
    kinds = sorted({o.get("kind", "?") for o in objs if isinstance(o, dict)})
    pods = sum(1 for o in objs if isinstance(o, dict) for _ in pod_templates(o))
    print(f"{args.name}: {len(objs)} objects ({', '.join(kinds)}), {pods} pod templates, "
          f"Kubernetes {K8S_VERSION} schemas + restricted PSS: {len(problems)} problems",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
