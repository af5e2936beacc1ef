"""The metrics endpoint: gatewayd with a metrics_listener serves GET /metrics in the
Prometheus text format; the counts of gRPC calls (by method and code), interceptor
rejections, the route table and the Redis quota store (with a real redis-server killed
mid-test) are exact."""

import http.client
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, SERVICE, StatsReq, Stubs, TIMEOUT, gateway_config

GATEWAYCTL = os.path.join(harness.ROOT, "tools/gatewayctl/gatewayctl")
UNARY = SERVICE + "Unary"
STATS = SERVICE + "Stats"
STREAM = SERVICE + "ServerStream"
_METRICS_LISTEN = re.compile(rb"metrics listening on (\S+)")
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def metrics_address(process, timeout=20.0):
    """The HOST:PORT of "metrics listening on ..." in gatewayd's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = _METRICS_LISTEN.search(process.output().encode())
        if m:
            return m.group(1).decode()
        if not process.alive():
            raise RuntimeError("gatewayd exited:\n" + process.output())
        time.sleep(0.02)
    raise RuntimeError("gatewayd did not announce a metrics address:\n" + process.output())


def get(address, path):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def checked_page(test, address):
    """The metrics page at `address`, asserted (on `test`) to be served with 200 and to pass
    `promtool check metrics` (Debian's prometheus package)."""
    status, _, body = get(address, "/metrics")
    test.assertEqual(status, 200)
    promtool = shutil.which("promtool")
    test.assertIsNotNone(promtool, "promtool not found (Debian package prometheus, "
                         "tools/install_deps.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=60)
    test.assertEqual(r.returncode, 0, "promtool check metrics: " + r.stdout + r.stderr)
    return Page(body)


class Page:
    """A parsed exposition: samples by (name, sorted label pairs), and each family's type."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.helps = {}
        self.samples = {}
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, help_text = line[7:].partition(" ")
                self.helps[name] = help_text
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                self.types[name] = kind
            else:
                m = _SAMPLE.match(line)
                assert m, f"not a sample line: {line!r}"
                labels = []
                rest = m.group(2) or ""
                while rest:
                    lm = _LABEL.match(rest)
                    assert lm, f"bad labels in {line!r}"
                    value = (lm.group(2).replace("\\n", "\n").replace('\\"', '"')
                             .replace("\\\\", "\\"))
                    labels.append((lm.group(1), value))
                    rest = rest[lm.end():]
                key = (m.group(1), tuple(sorted(labels)))
                assert key not in self.samples, f"sample twice: {line!r}"
                self.samples[key] = float(m.group(3))

    def get(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name, **labels):
        """The sum of every sample of `name` whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= set(ls))


def code_of(fn, *args, **kwargs):
    try:
        fn(*args, timeout=TIMEOUT, **kwargs)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


class MetricsTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.backend = self.ws.echo_backend()

    def tearDown(self):
        self.ws.close()

    def scrape(self, address):
        status, content_type, body = get(address, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        page = Page(body)
        # Every sample belongs to a family with HELP and TYPE lines.
        for name, _ in page.samples:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            family = family if family in page.types else name
            self.assertIn(family, page.types, name)
            self.assertIn(family, page.helps, name)
        return page

    def test_grpc_calls_rejections_and_process_are_counted_exactly(self):
        started = time.time()
        gw = self.ws.gatewayd(gateway_config(self.backend.address, """
metrics_listener: {address: "127.0.0.1:0"}
quotas:
  rules:
    - {name: two-stats, selectors: ["gateway.test.v1.Echo.Stats"], key: GLOBAL,
       requests: 2, per: 1h}
"""))
        address = metrics_address(gw)
        self.assertTrue(address.startswith("127.0.0.1:"), address)
        stubs = Stubs(gw.address)
        unknown = stubs.channel.unary_unary("/gateway.test.v1.Echo/Nope",
                                            request_serializer=Req.SerializeToString)
        page = self.scrape(address)
        # Before any call: the families exist, nothing counted.
        self.assertEqual(page.types["gateway_grpc_calls_started_total"], "counter")
        self.assertEqual(page.types["gateway_grpc_call_duration_seconds"], "histogram")
        self.assertEqual(page.total("gateway_grpc_calls_started_total"), 0)

        codes = [code_of(stubs.unary, Req(payload=b"ok")) for _ in range(5)]
        codes += [code_of(stubs.unary, Req(fail_code=5, fail_message="no")) for _ in range(3)]
        codes += [code_of(unknown, Req()) for _ in range(2)]
        codes += [code_of(stubs.stats, StatsReq(tag="t")) for _ in range(4)]
        self.assertEqual(len(list(stubs.server_stream(Req(count=3), timeout=TIMEOUT))), 3)
        C = grpc.StatusCode
        self.assertEqual(codes, [C.OK] * 5 + [C.NOT_FOUND] * 3 + [C.UNIMPLEMENTED] * 2
                         + [C.OK] * 2 + [C.RESOURCE_EXHAUSTED] * 2)

        page = self.scrape(address)
        started_total = "gateway_grpc_calls_started_total"
        finished = "gateway_grpc_calls_finished_total"
        self.assertEqual(page.get(started_total, method=UNARY), 8)
        self.assertEqual(page.get(started_total, method=STATS), 4)
        self.assertEqual(page.get(started_total, method=STREAM), 1)
        self.assertEqual(page.get(started_total, method="unknown"), 2)
        self.assertEqual(page.total(started_total), 15)
        self.assertEqual(page.get(finished, method=UNARY, code="OK"), 5)
        self.assertEqual(page.get(finished, method=UNARY, code="NOT_FOUND"), 3)
        self.assertEqual(page.get(finished, method="unknown", code="UNIMPLEMENTED"), 2)
        self.assertEqual(page.get(finished, method=STATS, code="OK"), 2)
        self.assertEqual(page.get(finished, method=STATS, code="RESOURCE_EXHAUSTED"), 2)
        self.assertEqual(page.get(finished, method=STREAM, code="OK"), 1)
        self.assertEqual(page.total(finished), 15)
        # Rejections by the interceptor chain, by front end and code.
        self.assertEqual(page.get("gateway_interceptor_rejections_total", front_end="grpc",
                                  code="RESOURCE_EXHAUSTED"), 2)
        self.assertEqual(page.total("gateway_interceptor_rejections_total"), 2)
        # The duration histogram: cumulative buckets ending in +Inf == _count.
        h = "gateway_grpc_call_duration_seconds"
        self.assertEqual(page.get(h + "_count", method=UNARY), 8)
        self.assertEqual(page.get(h + "_bucket", method=UNARY, le="+Inf"), 8)
        buckets = sorted((float(dict(ls)["le"]), v) for (n, ls), v in page.samples.items()
                         if n == h + "_bucket" and dict(ls)["method"] == UNARY)
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertGreater(page.get(h + "_sum", method=UNARY), 0)
        self.assertLess(page.get(h + "_sum", method=UNARY), 8 * TIMEOUT)
        # The route table and the process.
        self.assertEqual(page.get("gateway_route_table_services"), 1)
        self.assertEqual(page.get("gateway_route_table_methods"), 5)
        self.assertEqual(page.get("gateway_build_info", version="0.1.0"), 1)
        start_time = page.get("gateway_start_time_seconds")
        self.assertGreaterEqual(start_time, started - 1)
        self.assertLessEqual(start_time, time.time())
        # No registry without an admin listener; no Redis store without shared rules.
        self.assertNotIn("gateway_registry_swaps_total", page.types)
        self.assertNotIn("gateway_quota_redis_up", page.types)

        # Only /metrics is served.
        self.assertEqual(get(address, "/")[0], 404)
        self.assertEqual(get(address, "/metrics/x")[0], 404)
        stubs.close()

    def test_http_responses_durations_and_rejections_are_counted(self):
        bookstore = harness.bookstore_backend(self.ws)
        gw = self.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2}}
metrics_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
quotas:
  rules:
    - {{name: two-lists, selectors: ["bookstore.v1.Bookstore.ListShelves"], key: GLOBAL,
       requests: 2, per: 1h}}
""")
        address = metrics_address(gw)
        host, port = harness.http_address(gw).rsplit(":", 1)

        def status_of(path):
            conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                return resp.status
            finally:
                conn.close()

        statuses = [status_of("/v1/shelves") for _ in range(3)]
        statuses += [status_of("/v1/shelves/1") for _ in range(2)]
        statuses += [status_of("/v1/shelves/999"), status_of("/nope"), status_of("/nope")]
        self.assertEqual(statuses, [200, 200, 429, 200, 200, 404, 404, 404])
        # A request refused while it was read (malformed) counts under "unknown".
        import socket
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            self.assertIn(b" 400 ", sock.recv(4096))

        page = self.scrape(address)
        responses = "gateway_http_responses_total"
        lists = "/bookstore.v1.Bookstore/ListShelves"
        get_shelf = "/bookstore.v1.Bookstore/GetShelf"
        self.assertEqual(page.get(responses, method=lists, status="200"), 2)
        self.assertEqual(page.get(responses, method=lists, status="429"), 1)
        self.assertEqual(page.get(responses, method=get_shelf, status="200"), 2)
        self.assertEqual(page.get(responses, method=get_shelf, status="404"), 1)
        self.assertEqual(page.get(responses, method="unknown", status="404"), 2)
        self.assertEqual(page.get(responses, method="unknown", status="400"), 1)
        self.assertEqual(page.total(responses), 9)
        self.assertEqual(page.get("gateway_interceptor_rejections_total", front_end="http",
                                  code="RESOURCE_EXHAUSTED"), 1)
        h = "gateway_http_request_duration_seconds"
        self.assertEqual(page.get(h + "_count", method=lists), 3)
        self.assertEqual(page.get(h + "_count", method=get_shelf), 3)
        self.assertEqual(page.get(h + "_bucket", method=lists, le="+Inf"), 3)
        self.assertGreater(page.get(h + "_sum", method=get_shelf), 0)
        self.assertLess(page.get(h + "_sum", method=get_shelf), 3 * TIMEOUT)

    def test_registry_changes_and_swaps_are_counted(self):
        gw = self.ws.gatewayd(gateway_config(self.backend.address, """
metrics_listener: {address: "127.0.0.1:0"}
admin_listener: {address: "127.0.0.1:0"}
"""))
        address = metrics_address(gw)
        admin = re.search(r"admin listening on (\S+)", gw.output()).group(1)
        page = self.scrape(address)
        self.assertEqual(page.types["gateway_registry_swaps_total"], "counter")
        self.assertEqual(page.get("gateway_registry_swaps_total"), 1)  # the start
        for op in ("register", "remove", "rollback"):
            self.assertEqual(page.get("gateway_registry_changes_total", operation=op), 0)
        self.assertGreaterEqual(page.get("gateway_registry_last_swap_duration_seconds"), 0)
        self.assertLess(page.get("gateway_registry_last_swap_duration_seconds"), 10)
        self.assertGreater(page.get("gateway_registry_last_swap_timestamp_seconds"),
                           time.time() - 60)
        # The config's service, and server reflection (routed to the admin server).
        services = page.get("gateway_route_table_services")
        methods = page.get("gateway_route_table_methods")
        self.assertEqual(services, 2)

        def ctl(*args):
            r = subprocess.run([GATEWAYCTL, f"--admin={admin}", *args], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The echo backend does not serve the bookstore: registered anyway (--force).
        register = ("register", "bookstore.v1.Bookstore",
                    f"--descriptor-set={harness.BOOKSTORE_SET}", "--backend=echo",
                    "--owner=team-books", "--force")
        ctl(*register, "--dry-run")
        ctl(*register)
        page = self.scrape(address)
        self.assertEqual(page.get("gateway_registry_changes_total", operation="register"), 1)
        self.assertEqual(page.get("gateway_registry_swaps_total"), 2)
        self.assertEqual(page.get("gateway_route_table_services"), services + 1)
        self.assertGreater(page.get("gateway_route_table_methods"), methods)
        ctl("remove", "bookstore.v1.Bookstore", "--owner=team-books")
        page = self.scrape(address)
        self.assertEqual(page.get("gateway_registry_changes_total", operation="remove"), 1)
        self.assertEqual(page.get("gateway_registry_changes_total", operation="rollback"), 0)
        self.assertEqual(page.get("gateway_registry_swaps_total"), 3)
        self.assertEqual(page.get("gateway_route_table_services"), services)
        self.assertEqual(page.get("gateway_route_table_methods"), methods)

    def test_redis_failures_and_failure_decisions_are_counted(self):
        redis_proc, redis = harness.redis_server(self.ws)

        def start(mode):
            gw = self.ws.gatewayd(gateway_config(self.backend.address, f"""
metrics_listener: {{address: "127.0.0.1:0"}}
quotas:
  redis: {{address: "{redis}", failure_mode: {mode}, timeout: 200ms}}
  rules:
    - name: shared-stats
      selectors: ["gateway.test.v1.Echo.Stats"]
      key: GLOBAL
      requests: 1000
      per: 1h
      shared: true
"""), f"gw-{mode}")
            return gw, Stubs(gw.address), metrics_address(gw)

        open_gw, open_stubs, open_metrics = start("FAIL_OPEN")
        closed_gw, closed_stubs, closed_metrics = start("FAIL_CLOSED")
        for stubs in (open_stubs, closed_stubs):
            self.assertEqual([code_of(stubs.stats, StatsReq(tag="s")) for _ in range(3)],
                             [grpc.StatusCode.OK] * 3)
        before = {}
        for name, address in (("open", open_metrics), ("closed", closed_metrics)):
            page = self.scrape(address)
            self.assertEqual(page.get("gateway_quota_redis_checks_total"), 3)
            self.assertEqual(page.total("gateway_quota_redis_failures_total"), 0)
            self.assertEqual(page.get("gateway_quota_redis_up"), 1)
            self.assertEqual(page.total("gateway_quota_redis_failure_decisions_total"), 0)
            before[name] = page

        redis_proc.stop(signal.SIGKILL)
        self.assertEqual([code_of(open_stubs.stats, StatsReq(tag="s")) for _ in range(5)],
                         [grpc.StatusCode.OK] * 5)
        self.assertEqual([code_of(closed_stubs.stats, StatsReq(tag="s")) for _ in range(5)],
                         [grpc.StatusCode.UNAVAILABLE] * 5)

        for address, decision, other in ((open_metrics, "fail_open", "fail_closed"),
                                         (closed_metrics, "fail_closed", "fail_open")):
            page = self.scrape(address)
            self.assertEqual(page.get("gateway_quota_redis_checks_total"), 8)
            # Every check of a call after the kill failed, counted once by its kind.
            self.assertEqual(page.total("gateway_quota_redis_failures_total"), 5, page.text)
            self.assertEqual(
                sorted(dict(ls)["kind"] for (n, ls), _ in page.samples.items()
                       if n == "gateway_quota_redis_failures_total"),
                ["connect", "error", "timeout"])
            self.assertEqual(page.get("gateway_quota_redis_up"), 0)
            self.assertEqual(page.get("gateway_quota_redis_failure_decisions_total",
                                      decision=decision), 5)
            self.assertEqual(page.get("gateway_quota_redis_failure_decisions_total",
                                      decision=other), 0)
        closed_page = self.scrape(closed_metrics)
        self.assertEqual(closed_page.get("gateway_interceptor_rejections_total",
                                         front_end="grpc", code="UNAVAILABLE"), 5)
        self.assertEqual(closed_page.get("gateway_grpc_calls_finished_total", method=STATS,
                                         code="UNAVAILABLE"), 5)
        # The log line is still there beside the metrics.
        self.assertIn("quota store unavailable", open_gw.output())

        # Redis back on the same port: the idle check (every 5 s) or the next call
        # reconnects, and the gauge says so without any call.
        harness.redis_server(self.ws, port=int(redis.rsplit(":", 1)[1]))
        deadline = time.monotonic() + 15
        while self.scrape(open_metrics).get("gateway_quota_redis_up") != 1:
            self.assertLess(time.monotonic(), deadline, "the up gauge never returned to 1")
            time.sleep(0.2)
        while code_of(closed_stubs.stats, StatsReq(tag="s")) != grpc.StatusCode.OK:
            self.assertLess(time.monotonic(), deadline, "fail-closed gateway never recovered")
            time.sleep(0.2)
        self.assertEqual(self.scrape(closed_metrics).get("gateway_quota_redis_up"), 1)
        open_stubs.close()
        closed_stubs.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
