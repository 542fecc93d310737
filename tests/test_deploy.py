"""The deployment files in deploy/: nothing else runs them before a cluster
does, and what goes wrong there (a metric name the agent does not export, a
join that loses the culprit labels, a PodMonitor on another port than the
DaemonSet's, a unit that does not start ``serve``) fails silently, as empty
dashboards and alerts that never fire. Prometheus' own promtool checks the
configuration and rules and runs the rules' unit tests; the rest is checked
against the agent's metric names and its command line.

promtool comes from Debian's ``prometheus`` package. Without it those tests
are skipped, or fail when ``NN_REQUIRE_BPF=1`` says that the environment is
meant to be complete (as the BPF tests do). One test runs the real agent with
only the capabilities each deployment grants, and checks that it serves every
metric the deploy files use."""

import grp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from noisy_neighbor.views.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
UNIT = DEPLOY / "systemd" / "noisy-neighbor.service"
DASHBOARD = DEPLOY / "grafana" / "noisy-neighbor.json"

#: The series ``noisy-neighbor serve`` exports, as Prometheus names them;
#: the deploy files may use no other (checked against the real agent below).
EXPORTED = {
    "noisy_neighbor_runqueue_wait_seconds_total",
    "noisy_neighbor_runqueue_waits_total",
    "noisy_neighbor_runqueue_latency_seconds_bucket",
    "noisy_neighbor_runqueue_latency_seconds_sum",
    "noisy_neighbor_runqueue_latency_seconds_count",
    "noisy_neighbor_culprit_wait_seconds_total",
    "noisy_neighbor_switch_outs_total",
    "noisy_neighbor_cpu_throttled_seconds_total",
    "noisy_neighbor_verdict",
    "noisy_neighbor_lost_total",
    "noisy_neighbor_agent_errors_total",
    "noisy_neighbor_build_info",
}
#: Labels of those series: the cgroup's, the culprit's, and one per family.
CGROUP_LABELS = {"cgroup", "service", "container", "container_id", "pod", "namespace"}
LABELS = (
    CGROUP_LABELS
    | {"culprit_" + name for name in CGROUP_LABELS}
    | {"le", "cause", "kind", "reason", "where", "version", "method", "kernel"}
)
#: Labels Prometheus adds: the target's, and the node the PodMonitor adds.
TARGET_LABELS = {"job", "instance", "node"}
#: Series of kube-state-metrics the alerts read (a DaemonSet short of pods).
KUBE_STATE_METRICS = {"kube_daemonset_status_number_unavailable"}
NAME = re.compile(r"\bnoisy_neighbor[a-z0-9_:]*")
#: The label of each matcher in a selector: {label="...", label!~"..."}.
MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"')
PORT = 9847


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"needs {name}: apt-get install {package}"
    if os.environ.get("NN_REQUIRE_BPF") == "1":
        pytest.fail(f"NN_REQUIRE_BPF=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (set NN_REQUIRE_BPF=1 to fail instead)")


def _run(*argv: object) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _rules() -> dict:
    return yaml.safe_load((PROMETHEUS / "rules.yml").read_text())


def _records() -> set[str]:
    return {
        rule["record"]
        for group in _rules()["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def _unknown_names(text: str) -> set[str]:
    return set(NAME.findall(text)) - EXPORTED - _records()


def _manifests() -> dict[str, list[dict]]:
    """Every Kubernetes document, by file name."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(KUBERNETES.glob("*.yaml"))
    }


def _one(kind: str) -> dict:
    (doc,) = [d for docs in _manifests().values() for d in docs if d["kind"] == kind]
    return doc


def _agent_container() -> dict:
    (container,) = _one("DaemonSet")["spec"]["template"]["spec"]["containers"]
    return container


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _readme_queries() -> list[str]:
    return re.findall(r"```promql\n(.*?)```", (DEPLOY / "README.md").read_text(), re.S)


def _grafana_variables_filled(expr: str) -> str:
    return expr.replace("$instance", ".*").replace("$namespace", ".*")


def _unit_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key, []).append(value)
    return directives


def test_promtool_accepts_the_scrape_config_and_its_rule_file() -> None:
    out = _run(_tool("promtool", "prometheus"), "check", "config", PROMETHEUS / "prometheus.yml")
    assert "1 rule files found" in out


def test_promtool_accepts_the_rules() -> None:
    _run(_tool("promtool", "prometheus"), "check", "rules", PROMETHEUS / "rules.yml")


def test_the_rules_unit_tests_pass() -> None:
    """rules_test.yml: the recording rules' values, the culprit labels kept
    through the joins, and each alert firing when it should and not before."""
    _run(_tool("promtool", "prometheus"), "test", "rules", PROMETHEUS / "rules_test.yml")


def test_every_rule_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    tested_exprs = " ".join(t["expr"] for case in tests for t in case.get("promql_expr_test", []))
    tested_alerts = {t["alertname"] for case in tests for t in case.get("alert_rule_test", [])}
    for group in _rules()["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                assert rule["record"] in tested_exprs, rule["record"]
            else:
                assert rule["alert"] in tested_alerts, rule["alert"]


def test_the_rules_read_only_exported_metrics() -> None:
    """Expressions and the queries inside annotations alike."""
    assert _unknown_names((PROMETHEUS / "rules.yml").read_text()) == set()
    for record in _records():
        assert re.fullmatch(r"noisy_neighbor:[a-z0-9_]+:[a-z0-9_]+", record), record


def test_the_unit_tests_feed_series_shaped_like_the_agents() -> None:
    """Otherwise the rules could pass their tests on names or labels the
    agent never exports."""
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    for case in tests:
        for series in case["input_series"]:
            shape = re.fullmatch(r"(\w+)\{(.*)\}", series["series"])
            assert shape is not None, series["series"]
            name, labels = shape.groups()
            if name in KUBE_STATE_METRICS:
                continue  # kube-state-metrics' own series, for the DaemonSet's alert
            assert name in EXPORTED or name == "up", name
            assert set(re.findall(r"(\w+)=", labels)) <= LABELS | TARGET_LABELS, series


def test_the_dashboard_uses_its_data_source_variable_and_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert (variable["name"], variable["query"]) == ("DS_PROMETHEUS", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    exprs = _dashboard_exprs()
    assert exprs
    assert _unknown_names("\n".join(exprs)) == set()
    for label in MATCHER.findall("\n".join(exprs)):
        assert label in LABELS | TARGET_LABELS, label


def test_the_readme_queries_use_known_metrics_and_labels() -> None:
    queries = _readme_queries()
    assert len(queries) >= 3
    assert _unknown_names("\n".join(queries)) == set()
    for label in MATCHER.findall("\n".join(queries)):
        assert label in LABELS | TARGET_LABELS, label


def test_the_dashboard_and_readme_queries_parse(tmp_path) -> None:
    """promtool has no command that parses a bare expression; as recording
    rules, ``check rules`` parses them."""
    exprs = [_grafana_variables_filled(e) for e in _dashboard_exprs()] + _readme_queries()
    rules = [{"record": f"query:{i}:parse", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    _run(_tool("promtool", "prometheus"), "check", "rules", path)


def test_the_kubernetes_manifests_name_and_place_every_object() -> None:
    manifests = _manifests()
    kustomization = manifests.pop("kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(manifests)
    for name, docs in manifests.items():
        assert docs, name
        for doc in docs:
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], name
            if doc["kind"] == "Namespace":
                assert doc["metadata"]["name"] == "noisy-neighbor"
            else:
                assert doc["metadata"]["namespace"] == "noisy-neighbor", name


def test_the_operator_and_sidecar_objects_carry_the_rules_and_dashboard_as_they_are() -> None:
    generate = subprocess.run(
        [sys.executable, str(KUBERNETES / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert generate.returncode == 0, generate.stderr
    assert _one("PrometheusRule")["spec"]["groups"] == _rules()["groups"]
    configmap = _one("ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["noisy-neighbor.json"]) == json.loads(DASHBOARD.read_text())


def test_the_daemonset_serves_where_the_service_and_podmonitor_look() -> None:
    daemonset, service, monitor = _one("DaemonSet"), _one("Service"), _one("PodMonitor")
    pod = daemonset["spec"]["template"]
    container = _agent_container()
    assert container["args"][0] == "serve"
    assert container["args"][container["args"].index("--listen") + 1] == f"0.0.0.0:{PORT}"
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", PORT)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"

    selected = daemonset["spec"]["selector"]["matchLabels"]
    assert selected.items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["clusterIP"] == "None"
    (service_port,) = service["spec"]["ports"]
    assert (service_port["name"], service_port["port"]) == ("metrics", PORT)
    assert service_port["targetPort"] == "metrics"

    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # The job the alerts select on.
    assert pod["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "noisy-neighbor"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        "metrics",
        "/metrics",
        "15s",
    )
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_node_name"],
        "targetLabel": "node",
    } in endpoint["relabelings"]


def test_the_daemonset_reads_the_host_and_holds_only_the_capabilities_it_needs() -> None:
    spec = _one("DaemonSet")["spec"]["template"]["spec"]
    container = _agent_container()
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) <= {"BPF", "PERFMON", "SYS_RESOURCE"}
    assert {toleration["operator"] for toleration in spec["tolerations"]} == {"Exists"}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["readOnly"] is True, mount["name"]
        assert volumes[mount["name"]]["hostPath"]["path"] == mount["mountPath"], mount["name"]
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/sys/fs/cgroup", "/sys/kernel/btf", "/var/log/pods"} <= mounted


def test_the_daemonset_runs_the_packages_version() -> None:
    image = _agent_container()["image"]
    assert image == f"ghcr.io/noisy-neighbor/noisy-neighbor:{version('noisy-neighbor')}"


def test_the_systemd_unit_serves_what_the_scrape_config_scrapes() -> None:
    directives = _unit_directives()
    (exec_start,) = directives["ExecStart"]
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "noisy-neighbor"
    assert argv[1] == "serve"
    listen = argv[argv.index("--listen") + 1]
    assert listen == f"127.0.0.1:{PORT}"
    (state_directory,) = directives["StateDirectory"]
    assert argv[argv.index("--record") + 1] == f"/var/lib/{state_directory}"

    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["job_name"] == "noisy-neighbor"
    (targets,) = [config["targets"] for config in job["static_configs"]]
    assert targets == [f"localhost:{PORT}"]


def _commented_socket_args() -> list[str]:
    """The DaemonSet's commented-out args with the socket, as YAML."""
    text = (DEPLOY / "kubernetes" / "daemonset.yaml").read_text()
    found = re.search(r"^\s*# args: (\[.*?\])$", text, re.M | re.S)
    assert found is not None, "the DaemonSet no longer shows how to serve the socket"
    return yaml.safe_load(re.sub(r"\n\s*#", "", found.group(1)))


def test_the_deployments_command_lines_parse() -> None:
    """With the agent's own parser, so that an option renamed or removed
    there cannot go unnoticed here."""
    parser = build_parser()
    (exec_start,) = _unit_directives()["ExecStart"]
    deployments = (
        _agent_container()["args"],
        shlex.split(exec_start)[1:],
        _commented_socket_args(),
    )
    for argv in deployments:
        args = parser.parse_args(argv)
        assert args.command == "serve"
        assert args.listen[1] == PORT


def test_systemd_accepts_the_unit(tmp_path) -> None:
    """systemd-analyze verify warns about unknown directives and bad values
    but exits 0, so its output must be empty. The binary is not installed
    here: the copy runs one that exists, the rest is as written."""
    analyze = _tool("systemd-analyze", "systemd")
    text = UNIT.read_text().replace("/usr/local/bin/noisy-neighbor", shutil.which("true") or "")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def _granted_capabilities() -> dict[str, list[str]]:
    """What each deployment lets the agent hold, in setpriv's spelling."""
    added = _agent_container()["securityContext"]["capabilities"]["add"]
    (bounding,) = _unit_directives()["CapabilityBoundingSet"]
    return {
        "daemonset": [name.lower() for name in added],
        "systemd": [name.removeprefix("CAP_").lower() for name in bounding.split()],
    }


def _serve_with_only(
    deployment: str, *setpriv_args: str, serve_args: tuple[str, ...] = ()
) -> list[str]:
    """``serve`` on a free loopback port, under setpriv with the bounding set
    cut to what ``deployment`` grants, and nothing inherited or ambient."""
    keep = ",".join("+" + name for name in _granted_capabilities()[deployment])
    return [
        _tool("setpriv", "util-linux"),
        "--inh-caps=-all",
        "--ambient-caps=-all",
        f"--bounding-set=-all,{keep}",
        *setpriv_args,
        "--",
        *(sys.executable, "-m", "noisy_neighbor", "serve", "--listen", "127.0.0.1:0"),
        *serve_args,
    ]


@pytest.mark.needs_bpf
@pytest.mark.parametrize("deployment", ["daemonset", "systemd"])
def test_the_agent_serves_every_metric_with_only_the_granted_capabilities(deployment) -> None:
    """The bounding set is cut to what the DaemonSet adds or the unit's
    CapabilityBoundingSet= keeps, as in those deployments: the probe must
    attach (/healthz 200), and /metrics must name every family in EXPORTED."""
    process = subprocess.Popen(
        _serve_with_only(deployment),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    health, exposition = 0, ""
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"http://[\d.]+:(\d+)/metrics", line)
        if found is not None:
            url = f"http://127.0.0.1:{found.group(1)}"
            with urllib.request.urlopen(url + "/healthz", timeout=30) as answer:
                health = answer.status
            with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
                exposition = answer.read().decode()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert found is not None, f"the agent did not start: {line!r}\n{err[-2000:]}"
    assert (health, process.returncode) == (200, 0), err[-2000:]
    served = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        served |= {name + suffix for suffix in suffixes}
    assert served >= EXPORTED, EXPORTED - served


@pytest.mark.needs_bpf
def test_the_units_socket_works_with_only_the_units_capabilities(tmp_path) -> None:
    """The unit's socket options, its bounding set, and its socket group as
    a supplementary group (SupplementaryGroups=): the agent gives the socket
    to that group without CAP_CHOWN, and a client reads through it."""
    import secrets

    import noisy_neighbor as nn

    (exec_start,) = _unit_directives()["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[argv.index("--socket-group") + 1] == _unit_directives()["SupplementaryGroups"][0]
    group = f"nnunit{secrets.token_hex(3)}"
    subprocess.run(["groupadd", group], check=True)
    try:
        gid = grp.getgrnam(group).gr_gid
        socket_path = str(tmp_path / "agent.sock")
        process = subprocess.Popen(
            _serve_with_only(
                "systemd",
                f"--groups={gid}",
                serve_args=("--socket", socket_path, "--socket-group", group),
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            info = os.stat(socket_path) if "metrics" in line else None
            if info is not None:
                with nn.connect(socket_path) as client:
                    time.sleep(0.2)
                    client.histograms()
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
    finally:
        subprocess.run(["groupdel", group], check=False)
    assert info is not None, f"the agent did not start: {line!r}\n{err[-2000:]}"
    assert (info.st_mode & 0o777, info.st_gid) == (0o660, gid)
    assert process.returncode == 0, err[-2000:]
