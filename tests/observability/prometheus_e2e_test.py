#!/usr/bin/env python3
"""End to end: the services' metrics through a real Prometheus.

Starts auth, presence, message, history and the gateway (the real binaries)
on free loopback ports with a database of its own on the MariaDB named by
IM_TEST_MYSQL_HOST/PORT/USER/PASSWORD, starts Debian's prometheus with the
project's deploy/prometheus/prometheus.yml (targets rewritten to the test's
ports, scrape and rule evaluation every second), drives traffic with
traffic_main, and asserts through Prometheus' HTTP API that
  - every scrape target is up,
  - every metric name the Grafana dashboard and the rules use returns data
    (names extracted from the files by deploy/tools/promql_names.py, so the
    check follows the files),
  - the RPC and domain counters show exactly the traffic that was driven.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.join(os.environ.get("TEST_SRCDIR", ""),
                    os.environ.get("TEST_WORKSPACE", ""))
if not os.path.isdir(os.path.join(ROOT, "deploy")):
    ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "deploy", "tools"))
import promql_names  # noqa: E402

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
MARIADB = os.environ.get("MARIADB_CLIENT", "/usr/bin/mariadb")
PROMETHEUS_DIR = os.path.join(ROOT, "deploy", "prometheus")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "dashboards",
                         "im-backend.json")
RULE_FILES = ["rules/recording.yml", "rules/alerts.yml"]

# Scrape job (deploy/prometheus/prometheus.yml) -> service started here.
JOBS = {
    "im-auth": "auth",
    "im-presence": "presence",
    "im-message": "message",
    "im-history": "history",
    "im-gateway": "gateway",
}
HEALTH_NAMES = {
    "auth": "im.auth.v1.AuthService",
    "presence": "im.presence.v1.PresenceService",
    "message": "im.message.v1.MessageService",
    "history": "im.history.v1.HistoryService",
}
DEADLINE_SECONDS = 120


class Failure(Exception):
    pass


def log(message):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def binary(path):
    full = os.path.join(ROOT, path)
    if not os.access(full, os.X_OK):
        raise Failure(f"missing binary {path} (a data dependency)")
    return full


def free_ports(count):
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def eventually(what, check, timeout=DEADLINE_SECONDS, interval=0.5):
    """Calls check() until it returns (ok, detail) with ok true."""
    deadline = time.monotonic() + timeout
    detail = None
    while True:
        ok, detail = check()
        if ok:
            return detail
        if time.monotonic() > deadline:
            raise Failure(f"{what} not reached within {timeout}s: {detail}")
        time.sleep(interval)


class MySql:
    """The test's own database on the shared MariaDB."""

    def __init__(self):
        missing = [v for v in ("IM_TEST_MYSQL_HOST", "IM_TEST_MYSQL_PORT",
                               "IM_TEST_MYSQL_USER", "IM_TEST_MYSQL_PASSWORD")
                   if v not in os.environ]
        if missing:
            raise Failure(
                "set " + ", ".join(missing) + " (bazel test --test_env=...): "
                "this test needs a MariaDB to run the services on")
        self.host = os.environ["IM_TEST_MYSQL_HOST"]
        self.port = os.environ["IM_TEST_MYSQL_PORT"]
        self.user = os.environ["IM_TEST_MYSQL_USER"]
        self.password = os.environ["IM_TEST_MYSQL_PASSWORD"]
        self.database = f"im_obs_e2e_{secrets.token_hex(4)}"

    def execute(self, sql):
        result = subprocess.run(
            [MARIADB, "--no-defaults", "--protocol=TCP", f"-h{self.host}",
             f"-P{self.port}", f"-u{self.user}", f"-p{self.password}",
             "-e", sql], capture_output=True, text=True)
        if result.returncode != 0:
            raise Failure(f"{sql}: {result.stderr.strip()}")

    def create(self):
        self.execute(f"CREATE DATABASE `{self.database}`")

    def drop(self):
        self.execute(f"DROP DATABASE IF EXISTS `{self.database}`")

    def dsn(self):
        return (f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/"
                f"{self.database}")


class Processes:
    """Children started by the test; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, work_dir):
        self.work_dir = work_dir
        self.children = {}

    def start(self, name, argv):
        log_path = os.path.join(self.work_dir, f"{name}.log")
        log_file = open(log_path, "w")
        self.children[name] = (subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL), log_path)

    def check_running(self):
        for name, (process, log_path) in self.children.items():
            if process.poll() is not None:
                raise Failure(f"{name} exited with {process.returncode}:\n"
                              + self.tail(log_path))

    def stop_all(self):
        for process, _ in self.children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, (process, _) in self.children.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing it")
                process.kill()
                process.wait()

    @staticmethod
    def tail(path, lines=30):
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def dump_logs(self):
        for name, (_, log_path) in self.children.items():
            print(f"----- {name} ({log_path}) -----")
            print(self.tail(log_path), end="")


class Prometheus:

    def __init__(self, address):
        self.base = f"http://{address}"

    def get(self, path, **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    def query(self, expr):
        body = self.get("/api/v1/query", query=expr)
        if body.get("status") != "success":
            raise Failure(f"query {expr}: {body}")
        return body["data"]["result"]

    def value(self, expr):
        """The single sample of `expr` as a float; None when empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) != 1:
            raise Failure(f"{expr}: {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                return r.status == 200, "ready"
        except OSError as e:
            return False, str(e)


def write_prometheus_config(work_dir, metrics):
    """The project's config with the test's targets and fast intervals."""
    with open(os.path.join(PROMETHEUS_DIR, "prometheus.yml")) as f:
        config = yaml.safe_load(f)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    if jobs != set(JOBS):
        raise Failure(f"prometheus.yml scrapes {sorted(jobs)}; this test "
                      f"starts {sorted(JOBS)}: update one or the other")
    if sorted(config["rule_files"]) != sorted(RULE_FILES):
        raise Failure(f"prometheus.yml loads {config['rule_files']}, "
                      f"expected {RULE_FILES}")
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [os.path.join(PROMETHEUS_DIR, f)
                            for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [
            {"targets": [metrics[JOBS[job["job_name"]]]]}]
    path = os.path.join(work_dir, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def used_metric_names():
    exprs = [promql_names.grafana_to_promql(e)
             for e in promql_names.dashboard_exprs(DASHBOARD)]
    rule_exprs, recorded = promql_names.rules(
        [os.path.join(PROMETHEUS_DIR, f) for f in RULE_FILES])
    names = set()
    for expr in exprs + rule_exprs:
        names |= promql_names.series_names(expr)
    if len(names) < 20:
        raise Failure(f"only {len(names)} metric names found: {names}")
    return sorted(names), recorded


def start_services(processes, mysql, key_file):
    grpc_ports = free_ports(5)
    metric_ports = free_ports(5)
    names = ["auth", "presence", "message", "history", "gateway"]
    listen = {n: f"127.0.0.1:{p}" for n, p in zip(names, grpc_ports)}
    metrics = {n: f"127.0.0.1:{p}" for n, p in zip(names, metric_ports)}
    peers = {
        "auth": [],
        "presence": [f"--auth_addr={listen['auth']}"],
        "message": [f"--auth_addr={listen['auth']}",
                    f"--presence_addr={listen['presence']}"],
        "history": [f"--auth_addr={listen['auth']}",
                    f"--message_addr={listen['message']}"],
        "gateway": [f"--auth_addr={listen['auth']}",
                    f"--presence_addr={listen['presence']}",
                    f"--message_addr={listen['message']}",
                    f"--history_addr={listen['history']}"],
    }
    healthcheck = binary("tools/healthcheck/healthcheck")
    for name in names:
        argv = [binary(f"services/{name}/{name}_main"),
                f"--listen={listen[name]}",
                f"--metrics_listen={metrics[name]}",
                f"--token_key_file={key_file}",
                "--log_level=warn"] + peers[name]
        if name != "gateway":
            argv.append(f"--mysql_dsn={mysql.dsn()}")
        processes.start(name, argv)
        if name in HEALTH_NAMES:
            result = subprocess.run(
                [healthcheck, f"--addr={listen[name]}",
                 f"--service={HEALTH_NAMES[name]}", "--wait=60s"],
                capture_output=True, text=True)
            if result.returncode != 0:
                processes.check_running()
                raise Failure(f"{name} not SERVING: {result.stdout}"
                              f"{result.stderr}")
        else:
            def gateway_ready():
                processes.check_running()
                try:
                    with urllib.request.urlopen(
                            f"http://{listen[name]}/healthz", timeout=2) as r:
                        return r.status == 200, r.status
                except OSError as e:
                    return False, str(e)
            eventually("gateway /healthz", gateway_ready, timeout=60)
        log(f"{name} serving on {listen[name]}, metrics on {metrics[name]}")
    return listen, metrics


def grpc_web_failed_login(gateway_address):
    """One grpc-web call through the gateway: a Login that fails."""
    def field(number, text):
        data = text.encode()
        return bytes([number << 3 | 2, len(data)]) + data
    message = field(1, "nobody") + field(2, "wrong password!")
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    request = urllib.request.Request(
        f"http://{gateway_address}/im.auth.v1.AuthService/Login", data=body,
        headers={"content-type": "application/grpc-web+proto",
                 "x-grpc-web": "1"})
    with urllib.request.urlopen(request, timeout=20) as response:
        headers = dict(response.headers)
        payload = response.read()
    # grpc-status arrives in the headers (no message) or a trailer frame.
    status = headers.get("grpc-status")
    if status is None and payload[:1] == b"\x80":
        trailers = payload[5:].decode(errors="replace")
        for line in trailers.split("\r\n"):
            if line.lower().startswith("grpc-status:"):
                status = line.split(":", 1)[1].strip()
    if status != "16":
        raise Failure(f"grpc-web Login through the gateway: grpc-status "
                      f"{status}, expected 16 (UNAUTHENTICATED)")


def check_targets_up(prometheus):
    def all_up():
        targets = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        detail = health
        if set(health) != set(JOBS):
            return False, f"targets {sorted(health)}"
        down = {j: t.get("lastError", "") for j, t in
                ((t["labels"]["job"], t) for t in targets)
                if t["health"] != "up"}
        return not down, down or detail
    eventually("every target up", all_up)
    log(f"all {len(JOBS)} targets up")


def check_names_return_data(prometheus, names, recorded):
    def all_present():
        missing = [n for n in names
                   if not prometheus.query(f'count({{__name__="{n}"}})')]
        return not missing, f"no data for {missing}"
    eventually("data for every metric of the dashboard and rules",
               all_present)
    log(f"{len(names)} metric names return data "
        f"({len(recorded & set(names))} of them recorded by rules)")


def check_exact_counts(prometheus):
    """The counters show exactly what traffic_main did (final values)."""
    expectations = {
        # RPC interceptor, go-grpc-prometheus labels. One of the failed
        # logins came through the gateway.
        'grpc_server_handled_total{job="im-auth", grpc_method="Register", '
        'grpc_code="OK"}': 2,
        'grpc_server_handled_total{job="im-auth", grpc_method="Login", '
        'grpc_code="OK"}': 2,
        'grpc_server_handled_total{job="im-auth", grpc_method="Login", '
        'grpc_code="Unauthenticated"}': 2,
        'grpc_server_handled_total{job="im-gateway", grpc_method="Login", '
        'grpc_code="Unauthenticated"}': 1,
        'gateway_http_requests_total{job="im-gateway", kind="grpc_web", '
        'code="200"}': 1,
        'grpc_server_handled_total{job="im-message", grpc_method="Send", '
        'grpc_code="OK", grpc_type="unary"}': 6,
        'grpc_server_started_total{job="im-message", grpc_method="Chat", '
        'grpc_type="bidi_stream"}': 2,
        'grpc_server_msg_received_total{job="im-message", grpc_method="Send"}':
            6,
        'grpc_server_handled_total{job="im-history", '
        'grpc_method="GetHistory", grpc_code="OK"}': 1,
        'grpc_server_started_total{job="im-presence", '
        'grpc_method="Subscribe", grpc_type="server_stream"}': 1,
        # Domain metrics.
        'im_auth_logins_total{job="im-auth", result="ok"}': 2,
        'im_auth_logins_total{job="im-auth", result="failed"}': 2,
        'im_auth_sessions_revoked_total{job="im-auth", reason="logout"}': 1,
        'im_message_accepted_total{job="im-message"}': 8,
        'im_message_duplicates_total{job="im-message"}': 1,
        'im_message_send_failures_total{job="im-message"}': 0,
        'im_message_commit_batch_size_sum{job="im-message"}': 9,
        'im_message_send_commit_seconds_count{job="im-message"}': 9,
        # Bob's stream: the conversation's creation and 8 messages; alice's
        # Chat stream: her 3 Chat messages. All published live.
        'im_message_delivered_total{job="im-message"}': 12,
        'im_message_commit_deliver_seconds_count{job="im-message"}': 12,
        'im_message_overflow_cuts_total{job="im-message"}': 0,
    }

    def all_match():
        wrong = {}
        for expr, expected in expectations.items():
            value = prometheus.value(f"sum({expr})")
            if value != expected:
                wrong[expr] = value
        return not wrong, f"expected {expectations}, differing: {wrong}"
    eventually("exact traffic counts", all_match)
    log("traffic counts match exactly")


def main():
    for tool in (PROMETHEUS, MARIADB):
        if not os.access(tool, os.X_OK):
            raise Failure(f"{tool} missing (apt-get install prometheus "
                          "mariadb-client)")
    names, recorded = used_metric_names()
    work_dir = tempfile.mkdtemp(prefix="im-obs-e2e-",
                                dir=os.environ.get("TEST_TMPDIR"))
    mysql = MySql()
    processes = Processes(work_dir)
    mysql.create()
    ok = False
    try:
        key_file = os.path.join(work_dir, "token_keys")
        with open(key_file, "w") as f:
            f.write(f"1 {base64.b64encode(os.urandom(32)).decode()}\n")
        os.chmod(key_file, 0o600)
        listen, metrics = start_services(processes, mysql, key_file)

        (prometheus_port,) = free_ports(1)
        prometheus_address = f"127.0.0.1:{prometheus_port}"
        config = write_prometheus_config(work_dir, metrics)
        processes.start("prometheus", [
            PROMETHEUS, f"--config.file={config}",
            f"--storage.tsdb.path={os.path.join(work_dir, 'tsdb')}",
            f"--web.listen-address={prometheus_address}",
            "--log.level=warn"])
        prometheus = Prometheus(prometheus_address)
        eventually("prometheus ready", prometheus.ready, timeout=60)
        log(f"prometheus on {prometheus_address}")

        traffic = subprocess.run(
            [binary("tests/observability/traffic"),
             f"--auth_addr={listen['auth']}",
             f"--presence_addr={listen['presence']}",
             f"--message_addr={listen['message']}",
             f"--history_addr={listen['history']}"],
            capture_output=True, text=True, timeout=120)
        if traffic.returncode != 0:
            raise Failure(f"traffic: {traffic.stdout}{traffic.stderr}")
        grpc_web_failed_login(listen["gateway"])
        log("traffic done")

        check_targets_up(prometheus)
        check_exact_counts(prometheus)
        check_names_return_data(prometheus, names, recorded)
        processes.check_running()
        ok = True
    finally:
        processes.stop_all()
        if not ok:
            processes.dump_logs()
        mysql.drop()
        if ok:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print("PASS")
