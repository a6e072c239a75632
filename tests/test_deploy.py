"""The Kubernetes manifests in deploy/, as an operator applies them.

Each kustomization is rendered with ``kubectl kustomize`` (the binary in ``DFGUARD_KUBECTL``, else ``kubectl`` on
PATH; CI installs Debian's 1.20, whose kustomize v2.0.3 is the oldest the folders must render with), every object
is checked offline against the Kubernetes schemas by kubernetes-validate in strict mode (an unknown field fails),
then the settings an operator relies on are checked one by one. No cluster, no server. With
``DFGUARD_KUBECTL_LEGACY`` pointing at a second kubectl, both must render the same objects.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helpers import REPO

DEPLOY = REPO / "deploy"
OVERLAYS = ("overlays/gpu", "overlays/cpu", "overlays/s3")
KUSTOMIZATIONS = ("base", *OVERLAYS, "monitoring", "storage", "watch")
PLAIN_MANIFESTS = ("jobs/score-job.yaml", "jobs/export-job.yaml", "monitoring/prometheus-adapter-rules.yaml")
# 1.31 (every kubernetes-validate >= 1.31 ships its schemas) and the newest this one ships (catches removed APIs)
SCHEMA_VERSIONS = tuple(dict.fromkeys(("1.31", kubernetes_validate.latest_version())))
CRD_GROUPS = ("monitoring.coreos.com",)  # no schema in kubernetes-validate: checked by hand below
ADMIN_KEY_SECRET = "dfguard-admin-key"
CLIENT_LABEL = {"deepfake-guard/client": "true"}

Doc = dict[str, Any]


def kubectl(variable: str = "DFGUARD_KUBECTL") -> str:
    """The kubectl to render with: ``$DFGUARD_KUBECTL`` or ``kubectl`` on PATH. Without one the test is skipped,
    except in CI (``CI`` set), where it fails: CI must render the manifests."""
    name = os.environ.get(variable, "kubectl")
    path = shutil.which(name)
    if path is None:
        message = (f"no kubectl ({name!r}) to render deploy/ with: install one (Debian: apt-get install "
                   f"kubernetes-client) or point {variable} at it")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@functools.cache
def render(folder: str, binary: str | None = None) -> tuple[Doc, ...]:
    """The objects ``kubectl kustomize deploy/<folder>`` renders (cached: treat them as read-only)."""
    result = subprocess.run([binary or kubectl(), "kustomize", str(DEPLOY / folder)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize deploy/{folder} failed:\n{result.stderr}"
    docs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    assert docs, f"deploy/{folder} renders nothing"
    return docs


def load(relative: str) -> tuple[Doc, ...]:
    """The objects of a plain manifest file under deploy/."""
    return tuple(doc for doc in yaml.safe_load_all((DEPLOY / relative).read_text(encoding="utf-8")) if doc)


def one(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> Doc:
    """The single object of ``kind`` (and ``name``, if given) among ``docs``."""
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    """The pod spec of a Deployment or Job."""
    return workload["spec"]["template"]["spec"]


def container(workload: Doc) -> Doc:
    """The workload's only (main) container."""
    (main,) = pod_spec(workload)["containers"]
    return main


def server(folder: str) -> Doc:
    """The server Deployment of a rendered overlay."""
    return one(render(folder), "Deployment", "deepfake-guard")


def option(args: list[str], name: str) -> str:
    """The value following ``name`` in a command line."""
    assert args.count(name) == 1, f"{name} given {args.count(name)} times in {args}"
    return args[args.index(name) + 1]


def is_crd(doc: Doc) -> bool:
    """Whether ``doc`` is a custom resource (no schema in kubernetes-validate)."""
    return doc["apiVersion"].split("/")[0] in CRD_GROUPS


def validate(doc: Doc) -> None:
    """Schema-check one object, strictly, against every version in ``SCHEMA_VERSIONS``."""
    for version in SCHEMA_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version}: "
                        f"{path}: {error.message}")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector (non-empty) matches ``labels``."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def walk(node: Any) -> Iterator[Any]:
    """Every value nested in ``node`` (dicts, lists, scalars), keys included."""
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def adapter_rule(metric: str) -> Doc:
    """The prometheus-adapter rule that exposes ``metric``, from the ConfigMap in deploy/monitoring."""
    (config_map,) = load("monitoring/prometheus-adapter-rules.yaml")
    rules = yaml.safe_load(config_map["data"]["config.yaml"])["rules"]
    found = [rule for rule in rules if rule["name"]["as"] == metric]
    assert len(found) == 1, f"no single adapter rule names {metric}: {[r['name'] for r in rules]}"
    return found[0]


def score_command() -> str:
    """The shell command each pod of the scoring Job runs (``sh -c COMMAND``)."""
    job = one(load("jobs/score-job.yaml"), "Job")
    args = container(job).get("command", []) + container(job)["args"]
    assert args[:2] == ["sh", "-c"] and len(args) == 3, args
    return args[2]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_every_kustomization_renders_and_passes_the_schemas(folder: str) -> None:
    """Each folder renders, and every object in it but the custom resources passes the strict schemas."""
    docs = render(folder)
    for doc in docs:
        if not is_crd(doc):
            validate(doc)
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret belongs in the repository"


@pytest.mark.parametrize("relative", PLAIN_MANIFESTS)
def test_plain_manifests_pass_the_schemas(relative: str) -> None:
    """The Jobs and the adapter's ConfigMap (applied with kubectl apply -f) pass the strict schemas."""
    for doc in load(relative):
        validate(doc)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_legacy_kubectl_renders_the_same_objects(folder: str) -> None:
    """With DFGUARD_KUBECTL_LEGACY (e.g. Debian's kubectl 1.20, kustomize v2.0.3), it renders what kubectl does."""
    if not os.environ.get("DFGUARD_KUBECTL_LEGACY"):
        pytest.skip("set DFGUARD_KUBECTL_LEGACY to a second kubectl to compare renders")

    def key(doc: Doc) -> str:
        """Sort key: the object as canonical JSON."""
        return json.dumps(doc, sort_keys=True)

    legacy = render(folder, kubectl("DFGUARD_KUBECTL_LEGACY"))
    assert sorted(map(key, legacy)) == sorted(map(key, render(folder)))


def test_schema_validation_can_fail() -> None:
    """A misspelt field or a wrong type in the rendered Deployment is rejected: the schema check has teeth."""
    misspelt = copy.deepcopy(server("overlays/gpu"))
    container(misspelt)["imagePullPolicyy"] = "Always"
    wrong_type = copy.deepcopy(server("overlays/gpu"))
    wrong_type["spec"]["replicas"] = "two"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, SCHEMA_VERSIONS[0], strict=True)


def test_gpu_overlay_runs_the_gpu_variant_on_one_gpu() -> None:
    """The default overlay requests and limits one nvidia.com/gpu, tolerates the GPU taint and serves --target gpu."""
    deployment = server("overlays/gpu")
    resources = container(deployment)["resources"]
    assert int(resources["requests"]["nvidia.com/gpu"]) == 1 and int(resources["limits"]["nvidia.com/gpu"]) == 1
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in pod_spec(deployment)["tolerations"]
    args = container(deployment)["args"]
    assert args[:2] == ["dfguard", "serve"] and option(args, "--target") == "gpu"
    assert option(args, "--repository") == "/models" and option(args, "--host") == "0.0.0.0"
    assert container(deployment)["image"].startswith("deepfake-guard:gpu")
    assert not [a for a in args if a.startswith("--model-control")], "dfguard serve fixes model control to none"


def test_cpu_overlay_has_no_gpu_anywhere() -> None:
    """The CPU overlay serves --target cpu and mentions no GPU resource or toleration at all."""
    docs = render("overlays/cpu")
    assert not [v for v in walk(list(docs)) if isinstance(v, str) and "nvidia.com/gpu" in v]
    deployment = server("overlays/cpu")
    assert option(container(deployment)["args"], "--target") == "cpu"
    assert "tolerations" not in pod_spec(deployment)
    assert container(deployment)["resources"]["limits"]["cpu"], "a CPU limit"


def test_s3_overlay_reads_the_repository_from_the_object_store() -> None:
    """The s3 overlay passes an s3:// repository, mounts no models volume and takes AWS credentials from a Secret."""
    deployment = server("overlays/s3")
    main, spec = container(deployment), pod_spec(deployment)
    assert option(main["args"], "--repository").startswith("s3://")
    assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert "/models" not in [m["mountPath"] for m in main["volumeMounts"]]
    env = {e["name"]: e for e in main["env"]}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["key"] == name
    assert int(main["resources"]["limits"]["nvidia.com/gpu"]) == 1


@pytest.mark.parametrize("folder", OVERLAYS)
def test_every_mount_has_its_volume_and_the_environment(folder: str) -> None:
    """Each volumeMount names a volume of the pod; the cache, HOME and Numba's cache are on the writable /tmp."""
    deployment = server(folder)
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= set(volumes)
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"
    env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
    assert env["DFGUARD_CACHE"].startswith("/tmp/") and env["HOME"] == "/tmp"
    assert env["NUMBA_CACHE_DIR"].startswith("/tmp/")


@pytest.mark.parametrize("folder", OVERLAYS)
def test_probes_reach_triton_health_on_the_http_port(folder: str) -> None:
    """Readiness and liveness use Triton's health endpoints on port 8000; the startup probe allows >= 10 min."""
    main = container(server(folder))
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        get = main[probe]["httpGet"]
        assert get["path"] == path and ports.get(get["port"], get["port"]) == 8000
    startup = main["startupProbe"]
    assert ports.get(startup["httpGet"]["port"], startup["httpGet"]["port"]) == 8000
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600


WORKLOADS = (*((folder, None) for folder in OVERLAYS), (None, "jobs/score-job.yaml"), (None, "jobs/export-job.yaml"))


@pytest.mark.parametrize(("folder", "relative"), [*WORKLOADS, ("watch", None)])
def test_pods_run_as_non_root_on_a_read_only_root(folder: str | None, relative: str | None) -> None:
    """Every pod runs as uid 1000, non-root, with no privilege escalation, no capabilities, read-only root."""
    workload = (one(render(folder), "StatefulSet") if folder == "watch" else server(folder) if folder else
                one(load(relative), "Job"))
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    assert spec.get("automountServiceAccountToken") is False
    for each in spec["containers"] + spec.get("initContainers", []):
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_admin_key_comes_from_a_secret_file_never_the_manifest(folder: str) -> None:
    """--admin-key-file points into a read-only mount of the dfguard-admin-key Secret (0400); no literal key."""
    deployment = server(folder)
    main = container(deployment)
    key_file = PurePosixPath(option(main["args"], "--admin-key-file"))
    (secret,) = [v for v in pod_spec(deployment)["volumes"] if "secret" in v]
    assert secret["secret"]["secretName"] == ADMIN_KEY_SECRET and secret["secret"]["defaultMode"] == 0o400
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == secret["name"]]
    assert mount["readOnly"] is True and key_file.parent == PurePosixPath(mount["mountPath"])
    assert key_file.name in [item["path"] for item in secret["secret"]["items"]]
    assert pod_spec(deployment)["securityContext"]["fsGroup"] == 1000, "uid 1000 must read the 0400 key file"
    assert not [a for a in main["args"] if re.match(r"--(admin-key|http-restricted-api|grpc-restricted)", a)
                and a != "--admin-key-file"]
    assert not [e for e in main["env"] if "KEY" in e["name"] and "value" in e]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_services_select_the_server_pods(folder: str) -> None:
    """The gRPC ClusterIP Service and the headless one select the pods and target ports they have."""
    docs = render(folder)
    deployment = server(folder)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    port_names = {p["name"] for p in container(deployment)["ports"]}
    grpc, headless = one(docs, "Service", "deepfake-guard"), one(docs, "Service", "deepfake-guard-headless")
    assert grpc["spec"].get("type", "ClusterIP") == "ClusterIP" and grpc["spec"].get("clusterIP") != "None"
    assert headless["spec"]["clusterIP"] == "None"
    for service in (grpc, headless):
        assert selects(service["spec"]["selector"], labels)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
        assert {"name": "grpc", "port": 8001} in [{k: p[k] for k in ("name", "port")} for p in service["spec"]["ports"]]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_disruption_budget_and_network_policy_select_the_pods(folder: str) -> None:
    """The PDB and the NetworkPolicy select the server pods; gRPC is open to client pods, metrics to monitoring."""
    docs = render(folder)
    labels = server(folder)["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1
    policy = one(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], labels)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    allowed: dict[int, list[Doc]] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            allowed.setdefault(port["port"], []).extend(rule["from"])
    assert {"podSelector": {"matchLabels": CLIENT_LABEL}} in allowed[8001]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in allowed[8002]
    assert 8000 in allowed
    job_labels = one(load("jobs/score-job.yaml"), "Job")["spec"]["template"]["metadata"]["labels"]
    assert selects(CLIENT_LABEL, job_labels), "the scoring Job's pods must be let in"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_prometheus_annotations_name_the_metrics_port(folder: str) -> None:
    """The pod template tells an annotation-scraping Prometheus to read :8002/metrics."""
    annotations = server(folder)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8002"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_autoscaler_uses_the_adapter_metric(folder: str) -> None:
    """The HPA (autoscaling/v2) scales the Deployment on the Pods metric the adapter rule exposes."""
    hpa = one(render(folder), "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", server(folder)["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["target"]["type"] == "AverageValue"
    assert int(metric["pods"]["target"]["averageValue"]) > 0
    adapter_rule(metric["pods"]["metric"]["name"])


def test_adapter_rule_divides_queue_time_by_requests_of_face_finder() -> None:
    """The rule maps the pod and namespace labels and averages face_finder's queue time per request."""
    (config_map,) = load("monitoring/prometheus-adapter-rules.yaml")
    assert config_map["kind"] == "ConfigMap"
    hpa = one(render("overlays/gpu"), "HorizontalPodAutoscaler")
    rule = adapter_rule(hpa["spec"]["metrics"][0]["pods"]["metric"]["name"])
    assert "nv_inference_queue_duration_us" in rule["seriesQuery"] and 'model="face_finder"' in rule["seriesQuery"]
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert re.fullmatch(rule["name"]["matches"], "nv_inference_queue_duration_us")
    query = rule["metricsQuery"]
    for needed in ("nv_inference_queue_duration_us", "nv_inference_request_success", 'model="face_finder"',
                   "<<.LabelMatchers>>", "<<.GroupBy>>", "rate("):
        assert needed in query, needed
    queue, success = query.index("nv_inference_queue_duration_us"), query.index("nv_inference_request_success")
    assert queue < query.index("/") < success, "queue time divided by requests"


def test_service_monitor_scrapes_the_headless_service_metrics_port() -> None:
    """The ServiceMonitor (a CRD: checked by hand) selects a Service of the overlay that has its port name."""
    monitor = one(render("monitoring"), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    services = [s for s in render("overlays/gpu") if s["kind"] == "Service"
                and selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
    assert [s["metadata"]["name"] for s in services] == ["deepfake-guard-headless"]
    port_names = {p["name"]: p["port"] for p in services[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert port_names[endpoint["port"]] == 8002 and endpoint["path"] == "/metrics"


def test_score_job_shards_the_manifest_over_an_indexed_job() -> None:
    """Indexed, N completions = the N of --shard and of the results name; resumable restarts; writable results."""
    job = one(load("jobs/score-job.yaml"), "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] <= spec["completions"]
    assert pod_spec(job)["restartPolicy"] == "OnFailure" and "backoffLimitPerIndex" not in spec  # it needs Never
    words = shlex.split(score_command().split(";")[0])
    assert words[:2] == ["dfguard", "score"] and "--no-progress" in words
    shard = re.fullmatch(r"\$\{JOB_COMPLETION_INDEX\}/(\d+)", option(words, "--shard"))
    out = re.fullmatch(r"/results/shard-\$\{JOB_COMPLETION_INDEX\}-of-(\d+)\.jsonl", option(words, "--out"))
    assert shard and out and int(shard[1]) == int(out[1]) == spec["completions"]
    assert re.search(r'rc=\$\?; \[ "\$rc" -le 1 \]$', score_command()), "exit 1 (some error records) is a success"
    url = option(words, "--url")
    assert url.startswith("dns:///") and url.removeprefix("dns:///").split(".")[0].split(":")[0] in [
        s["metadata"]["name"] for s in render("overlays/gpu") if s["kind"] == "Service" and
        s["spec"].get("clusterIP") == "None"]
    volumes = {v["name"]: v["persistentVolumeClaim"] for v in pod_spec(job)["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: m for m in container(job)["volumeMounts"]}
    assert not mounts["/results"].get("readOnly") and not volumes[mounts["/results"]["name"]].get("readOnly")
    assert mounts["/data"]["readOnly"] is True and words[2].startswith("/data/")


def test_export_job_builds_plans_on_a_gpu_into_the_models_volume() -> None:
    """The export Job runs dfguard export --target gpu on one GPU, writing the models volume the servers read."""
    job = one(load("jobs/export-job.yaml"), "Job")
    main = container(job)
    assert main["args"][:2] == ["dfguard", "export"] and option(main["args"], "--target") == "gpu"
    assert int(main["resources"]["limits"]["nvidia.com/gpu"]) == 1
    repository = option(main["args"], "--repository")
    (mount,) = [m for m in main["volumeMounts"] if m["mountPath"] == repository]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == mount["name"]]
    server_claims = [v["persistentVolumeClaim"]["claimName"] for v in pod_spec(server("overlays/gpu"))["volumes"]
                     if "persistentVolumeClaim" in v]
    assert not mount.get("readOnly") and volume["persistentVolumeClaim"]["claimName"] in server_claims
    (init,) = pod_spec(job)["initContainers"]
    assert [m["name"] for m in init["volumeMounts"]] == [mount["name"]], "the configs are copied in first"


def test_storage_has_every_claim_the_workloads_mount() -> None:
    """deploy/storage defines each PersistentVolumeClaim the overlays and Jobs mount; the models one is RWX."""
    claims = {d["metadata"]["name"]: d for d in render("storage") if d["kind"] == "PersistentVolumeClaim"}
    workloads = [server(folder) for folder in OVERLAYS] + [one(load(f), "Job") for f in PLAIN_MANIFESTS[:2]]
    used = {v["persistentVolumeClaim"]["claimName"] for w in workloads for v in pod_spec(w)["volumes"]
            if "persistentVolumeClaim" in v}
    assert used <= set(claims)
    assert "ReadWriteMany" in claims["dfguard-models"]["spec"]["accessModes"], "every replica mounts it"


def test_grafana_dashboard_panels_all_have_queries() -> None:
    """The dashboard is valid JSON and every panel queries Prometheus, the throughput one the video ensemble."""
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    assert panels and len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in ('nv_inference_request_success{model="deepfake_video"}', "nv_inference_compute_infer_duration_us",
                   "nv_inference_queue_duration_us", "nv_inference_request_failure", "nv_gpu_utilization",
                   'nv_inference_request_summary_us{quantile="0.95"}'):
        assert metric in exprs, metric


def test_nothing_in_deploy_points_outside_the_repository() -> None:
    """No file under deploy/ refers to a path outside the repository."""
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "shared/" not in text and "/work/" not in text, path
            for reference in re.findall(r"(?:\.\./)+[\w./-]*", text):
                assert (path.parent / reference).resolve().is_relative_to(REPO), (path, reference)


def parses(words: list[str]) -> Any:
    """``dfguard WORDS`` parsed by dfguard's own command line (argparse exits on an unknown or malformed flag)."""
    from dfguard.cli import build_parser

    assert words[0] == "dfguard", words
    try:
        return build_parser(words[1:]).parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"dfguard's command line refuses what a manifest runs: {shlex.join(words)}")


def test_every_dfguard_command_in_the_manifests_is_one_dfguard_accepts() -> None:
    """The servers', the scoring Job's and the export Job's commands parse with today's flags, so a renamed flag
    fails here, not in a pod; the server waits for its models as long as the startup probe does."""
    for folder in OVERLAYS:
        main = container(server(folder))
        served = parses(main["args"])
        startup = main["startupProbe"]
        assert served.startup_timeout >= startup["failureThreshold"] * startup["periodSeconds"]
    shard = score_command().split(";")[0].replace("${JOB_COMPLETION_INDEX}", "3")
    scored = parses(shlex.split(shard))
    assert scored.shard == "3/4" and scored.url[0].startswith("dns:///")
    parses(container(one(load("jobs/export-job.yaml"), "Job"))["args"])


def test_watch_pods_each_watch_their_share_of_the_listed_streams_and_alert_the_webhook_service() -> None:
    """The watch StatefulSet's pods run ``dfguard watch`` on the ConfigMap's stream list, pod I taking shard I of
    as many as the replicas (the ConfigMap says how many, and agrees with the StatefulSet), against the headless
    Service; they may reach the server (client label), and their webhook is the alert Service."""
    docs = render("watch")
    watch, streams = one(docs, "StatefulSet", "dfguard-watch"), one(docs, "ConfigMap", "dfguard-watch-streams")
    main = container(watch)
    env = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in main["env"] if "valueFrom" in e}
    assert {ref["name"] for ref in env.values()} == {"dfguard-watch-streams"}
    values = {name: streams["data"][ref["key"]] for name, ref in env.items()}
    assert int(values["REPLICAS"]) == watch["spec"]["replicas"]
    alerts = one(docs, "Service", "dfguard-alerts")
    assert values["WEBHOOK"].startswith(f"http://{alerts['metadata']['name']}.")
    (volume,) = [v for v in pod_spec(watch)["volumes"] if "configMap" in v]
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == volume["name"]]
    assert volume["configMap"]["name"] == "dfguard-watch-streams" and "streams.txt" in streams["data"]
    args = main["args"]
    assert args[:2] == ["sh", "-c"] and len(args) == 3
    command = (args[2].removeprefix("exec ").replace("${HOSTNAME##*-}", "1").replace("${REPLICAS}", values["REPLICAS"])
               .replace("${WEBHOOK}", values["WEBHOOK"]))
    watched = parses(shlex.split(command))
    assert watched.shard == "1/2" and str(watched.sources_file) == f"{mount['mountPath']}/streams.txt"
    assert watched.url.startswith("dns:///deepfake-guard-headless:") and watched.webhook == values["WEBHOOK"]
    labels = watch["spec"]["template"]["metadata"]["labels"]
    assert selects(watch["spec"]["selector"]["matchLabels"], labels) and labels.get("deepfake-guard/client") == "true"
