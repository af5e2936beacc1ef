"""The Grafana dashboard (deploy/grafana/gatewayd-dashboard.json) against a live gatewayd.

Starts the echo and bookstore backends, a redis-server, gatewayd with every optional part that
has metrics (HTTP front end, admin listener, metrics listener, a quota shared through Redis),
and Debian's prometheus (its own config and storage in a temporary directory, 127.0.0.1, a
free port, scraping gatewayd every second). Then drives traffic of every kind the dashboard
charts: gRPC and REST calls that succeed and fail, a 5xx, a quota rejection on each front end,
a call to an unknown method, a service registered through the admin listener. Every `expr`
of every panel, with the dashboard's variables substituted, must then return data through
Prometheus's HTTP API (instant query: at least one number that is not NaN; range query: at
least one series), and every `label_values` variable must list values.

Both ways between the dashboard and the metrics reference: every metric a query names is in
docs/config.md's table, and every metric of that table is charted.
"""

import http.client
import json
import math
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.parse

import grpc

import harness
from grpc_proxy_test import Req, StatsReq, Stubs
from metrics_test import metrics_address

DASHBOARD = "deploy/grafana/gatewayd-dashboard.json"
CONFIG_DOC = "docs/config.md"
GATEWAYCTL = os.path.join(harness.ROOT, "tools/gatewayctl/gatewayctl")
PROMETHEUS = "/usr/bin/prometheus"
TIMEOUT = 20  # seconds; the bound of any call or wait below
# What Grafana puts in place of the dashboard's variables ("All" selected for the others).
VARIABLES = {"__rate_interval": "1m", "__interval": "1s", "__range": "5m"}
# Queries whose right answer after the test's traffic is 0: what they chart (overload,
# failures of connections, of Redis, of the access log writer, calls still in flight) is
# absent from a healthy gateway. Each still has to return a number (its series exist).
# Every other query must show a value above 0.
ZERO_IS_RIGHT = {
    ("Access log lines dropped", "A"),  # the queue never fills at this rate
    ("Shared quota store (Redis)", "B"),  # Redis answers every check
    ("Shared quota store (Redis)", "C"),  # so the failure mode decides nothing
    ("Endpoint health", "B"),  # no endpoint fails: outlier detection ejects none
    ("Connect failures and ejections", "A"),  # the backends accept every connection
    ("Connect failures and ejections", "B"),
    ("In flight and waiting", "A"),  # the traffic is over when the queries run
    ("In flight and waiting", "B"),
    ("In flight and waiting", "C"),
    ("In flight and waiting", "D"),
    ("Retries by outcome", "A"),  # no retry policy is configured
    ("Circuit breaker overflows", "A"),  # no circuit breaker is anywhere near its limit
}
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")
_METRIC = re.compile(r"\bgateway_[a-z0-9_]+")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.S)


def source_file(path):
    """A file of the repository: in Bazel's runfiles, or beside GATEWAY_ROOT=bazel-bin."""
    for root in (harness.ROOT, os.path.dirname(harness.ROOT)):
        full = os.path.join(root, path)
        if os.path.exists(full):
            return full
    raise FileNotFoundError(path)


def load_dashboard():
    with open(source_file(DASHBOARD)) as f:
        return json.load(f)


def panels(dashboard):
    """Every panel, those nested in collapsed rows included."""
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def queries(dashboard):
    """(panel title, refId, expr) of every panel target."""
    return [(p["title"], t["refId"], t["expr"]) for p in panels(dashboard)
            for t in p.get("targets", [])]


def substitute(expr):
    """expr with Grafana's variables replaced: built-in intervals by VARIABLES, the
    dashboard's own (instance, method, backend: regex matchers) by ".*" as for "All"."""
    def value(m):
        name = m.group(1) or m.group(2)
        return VARIABLES.get(name, ".*")
    return _VARIABLE.sub(value, expr)


def documented_metrics():
    """The metric names of the table in docs/config.md's "Metrics" section."""
    with open(source_file(CONFIG_DOC)) as f:
        text = f.read()
    section = text[text.index("\n## Metrics\n"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    return set(re.findall(r"^\| `(gateway_[a-z0-9_]+)` \|", section, re.M))


def family(name):
    return re.sub(r"_(bucket|sum|count)$", "", name)


class Prometheus:
    """Debian's prometheus scraping `targets` every second, on 127.0.0.1 and a free port,
    with its storage in `ws`."""

    def __init__(self, ws, targets):
        self.port = harness.free_port()
        config = ws.write("prometheus.yml", json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "gatewayd", "scrape_interval": "1s",
                                "scrape_timeout": "1s",
                                "static_configs": [{"targets": targets}]}]}))
        storage = os.path.join(ws.dir, "prometheus-data")
        self.process = ws.start(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            "prometheus", announce=False)

    def get(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request("GET", f"{path}?{query}" if query else path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def api(self, path, **params):
        """The `data` of a successful API answer; raises with Prometheus's error otherwise."""
        status, body = self.get(path, **params)
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: HTTP {status}: {body}")
        return answer["data"]

    def wait_scraped(self, scrapes_after=None):
        """Waits until every target is up and was scraped (after `scrapes_after`, a Unix
        time, when given); returns the time of the oldest last scrape."""
        deadline = time.monotonic() + TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError("prometheus exited:\n" + self.process.output())
            try:
                targets = self.api("/api/v1/targets")["activeTargets"]
            except (OSError, ValueError, AssertionError) as e:
                last = e
                time.sleep(0.1)
                continue
            last = targets
            if targets and all(t["health"] == "up" for t in targets):
                times = [_rfc3339(t["lastScrape"]) for t in targets]
                if scrapes_after is None or min(times) > scrapes_after:
                    return min(times)
            time.sleep(0.1)
        raise AssertionError(f"prometheus did not scrape in {TIMEOUT}s: {last}\n"
                             + self.process.output())


def _rfc3339(text):
    """Unix seconds of Prometheus's lastScrape ("2026-12-05T21:40:01.123456789Z")."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(f"not a timestamp: {text}")
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return base.timestamp() + float(m.group(2) or 0)


def finite_values(result):
    """The numbers (not NaN, not infinite) of an instant query's vector or scalar result."""
    if result["resultType"] == "scalar":
        samples = [result["result"]]
    else:
        samples = [s["value"] for s in result["result"]]
    return [float(v) for _, v in samples if math.isfinite(float(v))]


class DashboardFileTest(unittest.TestCase):
    """The dashboard JSON on its own: a Grafana dashboard whose queries use the metrics
    reference's names."""

    def setUp(self):
        self.dashboard = load_dashboard()

    def test_is_a_grafana_dashboard_on_a_datasource_variable(self):
        d = self.dashboard
        self.assertEqual(d["uid"], "gatewayd")
        self.assertIsInstance(d["schemaVersion"], int)
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        ids = [p["id"] for p in panels(d)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for p in panels(d):
            self.assertTrue(p.get("title"), p)
            for key in ("h", "w", "x", "y"):
                self.assertIn(key, p["gridPos"], p["title"])
            self.assertLessEqual(p["gridPos"]["x"] + p["gridPos"]["w"], 24, p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(p["targets"], p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"], p["datasource"], p["title"])
                self.assertTrue(t["expr"].strip(), p["title"])
        # Panels of the same row do not overlap.
        cells = set()
        for p in panels(d):
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps another panel")
                    cells.add((x, y))
        # Every variable other than the data source is used by some query.
        exprs = " ".join(e for _, _, e in queries(d))
        for name, v in variables.items():
            if name != "datasource":
                self.assertIn(f"${name}", exprs, f"variable {name} is not used")
                self.assertEqual(v["datasource"], {"type": "prometheus", "uid": "${datasource}"})

    def test_queries_name_documented_metrics_and_chart_all_of_them(self):
        documented = documented_metrics()
        self.assertGreater(len(documented), 30, "the metrics table of docs/config.md moved?")
        charted = set()
        for title, ref, expr in queries(self.dashboard):
            for name in _METRIC.findall(expr):
                with self.subTest(panel=title, ref=ref):
                    self.assertIn(family(name), documented,
                                  f"{title} {ref}: {name} is not in {CONFIG_DOC}")
                charted.add(family(name))
        self.assertEqual(sorted(documented - charted), [],
                         "documented metrics that no panel charts")


class DashboardQueriesTest(unittest.TestCase):
    """Every query of the dashboard returns data from Prometheus scraping a live gatewayd."""

    def setUp(self):
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        f"{PROMETHEUS} is missing: tools/install_deps.sh installs Debian's "
                        "prometheus")
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.echo = self.ws.echo_backend()
        self.bookstore = harness.bookstore_backend(self.ws)
        _, self.redis = harness.redis_server(self.ws)
        self.gateway = self.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  transcoding: {{expose_grpc_paths: true}}
metrics_listener: {{address: "127.0.0.1:0"}}
admin_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - {{name: echo, target: "ipv4:{self.echo.address}"}}
  - {{name: bookstore, target: "ipv4:{self.bookstore.address}"}}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
quotas:
  redis: {{address: "{self.redis}", timeout: 1s}}
  rules:
    - {{name: two-stats, selectors: ["gateway.test.v1.Echo.Stats"], key: GLOBAL,
       requests: 2, per: 1h, shared: true}}
runtime: {{shutdown_grace: 2s, worker_threads: 2}}
""")
        self.metrics = metrics_address(self.gateway)
        self.http = harness.http_address(self.gateway)
        self.admin = re.search(r"admin listening on (\S+)", self.gateway.output()).group(1)
        self.prometheus = Prometheus(self.ws, [self.metrics])

    def rest(self, method, path, body=None):
        host, port = self.http.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {} if body is None else {"Content-Type": "application/json"}
            conn.request(method, path, body=payload, headers=headers)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def drive_traffic(self, first):
        """Calls of every kind the dashboard charts; asserts each ended as intended, so a
        panel without data is the dashboard's fault, not the traffic's. The first round
        creates the series (a counter appears at its first event), the second makes them
        grow between two scrapes, so rates are above zero."""
        stubs = Stubs(self.gateway.address)
        self.addCleanup(stubs.close)

        def code(fn, request):
            try:
                fn(request, timeout=TIMEOUT)
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

        C = grpc.StatusCode
        unknown = stubs.channel.unary_unary("/gateway.test.v1.Echo/Nope",
                                            request_serializer=Req.SerializeToString)
        # gRPC: successes, backend errors, an unknown method, a quota of two then rejections.
        self.assertEqual([code(stubs.unary, Req(payload=b"ok")) for _ in range(5)], [C.OK] * 5)
        self.assertEqual(code(stubs.unary, Req(fail_code=5, fail_message="no")), C.NOT_FOUND)
        self.assertEqual(code(unknown, Req()), C.UNIMPLEMENTED)
        self.assertEqual([code(stubs.stats, StatsReq(tag="t")) for _ in range(3)],
                         [C.OK, C.OK, C.RESOURCE_EXHAUSTED] if first
                         else [C.RESOURCE_EXHAUSTED] * 3)
        self.assertEqual(len(list(stubs.server_stream(Req(count=3), timeout=TIMEOUT))), 3)
        # A config reload (the file is unchanged: applied), for the reload panels.
        applied = self.gateway.output().count("reload applied")
        self.gateway.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while self.gateway.output().count("reload applied") == applied:
            self.assertLess(time.monotonic(), deadline, "no reload after SIGHUP:\n"
                            + self.gateway.output()[-2000:])
            time.sleep(0.05)
        if first:
            # The bookstore, registered at run time, served to REST clients by the upstream.
            r = subprocess.run([GATEWAYCTL, f"--admin={self.admin}", "register",
                                "bookstore.v1.Bookstore",
                                f"--descriptor-set={harness.BOOKSTORE_SET}",
                                "--backend=bookstore", "--owner=dashboard-test"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # REST: successes on both backends, a 404 of the backend and of the router, a 503
        # (UNAVAILABLE from the backend), and a quota rejection (429).
        statuses = [self.rest("POST", "/gateway.test.v1.Echo/Unary", {"payload": "aGk="})
                    for _ in range(3)]
        statuses += [self.rest("GET", "/v1/shelves") for _ in range(3)]
        statuses += [self.rest("GET", "/v1/shelves/999"), self.rest("GET", "/nope"),
                     self.rest("POST", "/gateway.test.v1.Echo/Unary",
                               {"failCode": 14, "failMessage": "down"}),
                     self.rest("POST", "/gateway.test.v1.Echo/Stats", {"tag": "t"})]
        self.assertEqual(statuses, [200] * 6 + [404, 404, 503, 429])

    def test_every_query_returns_data(self):
        dashboard = load_dashboard()
        self.prometheus.wait_scraped()
        self.drive_traffic(first=True)
        self.prometheus.wait_scraped(scrapes_after=time.time())
        self.drive_traffic(first=False)
        # Two scrapes after the traffic.
        self.prometheus.wait_scraped(scrapes_after=time.time())
        self.prometheus.wait_scraped(scrapes_after=time.time())

        failures = []
        checked = 0
        for title, ref, expr in queries(dashboard):
            query = substitute(expr)
            now = time.time()
            try:
                instant = self.prometheus.api("/api/v1/query", query=query, time=f"{now:.3f}")
                values = finite_values(instant)
                ranged = self.prometheus.api("/api/v1/query_range", query=query,
                                             start=f"{now - 60:.3f}", end=f"{now:.3f}",
                                             step="1")
            except AssertionError as e:
                failures.append(f"{title} {ref}: {e}")
                continue
            if not values:
                failures.append(f"{title} {ref}: no number from {query!r}: {instant}")
            elif (title, ref) not in ZERO_IS_RIGHT and max(values) <= 0:
                failures.append(f"{title} {ref}: only zeros from {query!r}: {instant}")
            elif not ranged["result"]:
                failures.append(f"{title} {ref}: no series in the range query {query!r}")
            checked += 1
        self.assertEqual(failures, [], "\n".join(failures) + "\n\ngatewayd's metrics:\n"
                         + self.scrape_for_report())
        self.assertEqual(checked, len(queries(dashboard)))
        self.assertGreaterEqual(checked, 40)

        # The variables' label_values queries list what the variables offer.
        for v in dashboard["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = _LABEL_VALUES.match(v["definition"])
            self.assertIsNotNone(m, f"variable {v['name']}: {v['definition']}")
            selector, label = substitute(m.group(1)), m.group(2)
            values = self.prometheus.api(f"/api/v1/label/{label}/values",
                                         **{"match[]": selector})
            self.assertTrue(values, f"variable {v['name']}: no {label} for {selector}")
            if v["name"] == "method":
                self.assertIn("/gateway.test.v1.Echo/Unary", values)
                self.assertIn("/bookstore.v1.Bookstore/ListShelves", values)
            if v["name"] == "backend":
                self.assertEqual(sorted(values), ["bookstore", "echo"])

        # A query that cannot find its metric returns nothing, so the check above can fail.
        empty = self.prometheus.api("/api/v1/query", query="gateway_no_such_metric_total")
        self.assertEqual(finite_values(empty), [])

    def scrape_for_report(self):
        host, port = self.metrics.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        except OSError as e:
            return f"(scrape failed: {e})"
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
