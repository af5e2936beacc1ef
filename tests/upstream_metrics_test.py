"""The gateway's own upstream in the metrics: gatewayd with an http_listener and a
metrics_listener in front of real bookstore backends; REST calls are counted per endpoint,
a dead endpoint's connect failures and the calls tried again past it show, the retry policy's
retries and exhausted attempts are exact, the gauges of calls in flight and waiting are back
at 0 once the calls ended, and `promtool check metrics` accepts the page."""

import http.client
import unittest

import harness
from grpc_proxy_test import TIMEOUT
from metrics_test import checked_page, metrics_address

GET_SHELF = "/bookstore.v1.Bookstore/GetShelf"


def config(target, extra_backend="", extra=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2}}
metrics_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends:
  - name: bookstore
    target: "{target}"
{extra_backend}
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
{extra}
"""


class UpstreamMetricsTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.a = harness.bookstore_backend(self.ws)
        self.b = harness.bookstore_backend(self.ws)

    def tearDown(self):
        self.ws.close()

    def start(self, *args, **kwargs):
        gw = self.ws.gatewayd(config(*args, **kwargs))
        self.metrics = metrics_address(gw)
        self.http = harness.http_address(gw)
        return gw

    def call(self, path):
        host, port = self.http.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def scrape(self):
        return checked_page(self, self.metrics)

    def assert_idle(self, page, endpoints):
        """Nothing in flight or waiting any more, on the backend and on each endpoint."""
        for gauge in ("gateway_upstream_active_requests", "gateway_upstream_pending_requests",
                      "gateway_upstream_active_retries"):
            self.assertEqual(page.get(gauge, backend="bookstore"), 0, gauge)
        for e in endpoints:
            self.assertEqual(page.get("gateway_upstream_endpoint_active_requests",
                                      backend="bookstore", endpoint=e), 0, e)

    def test_calls_are_counted_per_endpoint_and_timed(self):
        a, b = self.a.address, self.b.address
        self.start(f"ipv4:{a},{b}")
        page = self.scrape()
        # Before any call: every endpoint has its series, at 0.
        self.assertEqual(page.types["gateway_upstream_requests_total"], "counter")
        self.assertEqual(page.types["gateway_upstream_endpoint_healthy"], "gauge")
        self.assertEqual(page.types["gateway_upstream_request_duration_seconds"], "histogram")
        for e in (a, b):
            self.assertEqual(page.get("gateway_upstream_requests_total", backend="bookstore",
                                      endpoint=e), 0)
        self.assertEqual(page.get("gateway_upstream_connections", backend="bookstore"), 0)

        calls = 10
        self.assertEqual([self.call("/v1/shelves/1") for _ in range(calls)], [200] * calls)
        page = self.scrape()
        requests = {e: page.get("gateway_upstream_requests_total", backend="bookstore",
                                endpoint=e) for e in (a, b)}
        self.assertEqual(sum(requests.values()), calls, requests)
        self.assertEqual(page.total("gateway_upstream_requests_total"), calls)
        # Round robin on each of the 2 workers: both endpoints got calls.
        self.assertGreater(requests[a], 0, requests)
        self.assertGreater(requests[b], 0, requests)
        for e in (a, b):
            labels = dict(backend="bookstore", endpoint=e)
            self.assertEqual(page.get("gateway_upstream_connect_failures_total", **labels), 0)
            self.assertEqual(page.get("gateway_upstream_ejections_total", **labels), 0)
            self.assertEqual(page.get("gateway_upstream_endpoint_healthy", **labels), 1)
            self.assertEqual(page.get("gateway_upstream_endpoint_ejected", **labels), 0)
        self.assert_idle(page, (a, b))
        # Connections stay open for the next calls: at least one, at most one per endpoint
        # and worker (one call at a time needs no second one).
        connections = page.get("gateway_upstream_connections", backend="bookstore")
        self.assertGreaterEqual(connections, 1)
        self.assertLessEqual(connections, 4)
        h = "gateway_upstream_request_duration_seconds"
        self.assertEqual(page.get(h + "_count", backend="bookstore"), calls)
        self.assertEqual(page.get(h + "_bucket", backend="bookstore", le="+Inf"), calls)
        self.assertGreater(page.get(h + "_sum", backend="bookstore"), 0)
        self.assertLess(page.get(h + "_sum", backend="bookstore"), calls * TIMEOUT)
        self.assertEqual(page.total("gateway_upstream_overflows_total"), 0)
        self.assertEqual(page.total("gateway_upstream_retries_total"), 0)
        # The HTTP front end's own count agrees.
        self.assertEqual(page.get("gateway_http_responses_total", method=GET_SHELF,
                                  status="200"), calls)

    def test_dead_endpoint_counts_connect_failures_and_calls_go_past_it(self):
        live, dead = self.a.address, f"127.0.0.1:{harness.free_port()}"
        self.start(f"ipv4:{live},{dead}")
        calls = 10
        self.assertEqual([self.call("/v1/shelves/1") for _ in range(calls)], [200] * calls)
        page = self.scrape()
        failures = page.get("gateway_upstream_connect_failures_total", backend="bookstore",
                            endpoint=dead)
        self.assertGreaterEqual(failures, 1)
        self.assertEqual(page.get("gateway_upstream_connect_failures_total",
                                  backend="bookstore", endpoint=live), 0)
        # Every call ended OK on the live endpoint; a call that met the dead one was tried
        # again there (the backend never saw it) and counts as succeeded after a retry.
        self.assertEqual(page.get("gateway_upstream_requests_total", backend="bookstore",
                                  endpoint=live), calls)
        retries = "gateway_upstream_retries_total"
        transparent = page.get(retries, backend="bookstore", outcome="transparent")
        succeeded = page.get(retries, backend="bookstore", outcome="succeeded_after_retry")
        self.assertGreaterEqual(transparent, 1)
        self.assertGreaterEqual(succeeded, 1)
        self.assertLessEqual(succeeded, transparent)
        self.assertEqual(page.get(retries, backend="bookstore", outcome="retried"), 0)
        self.assertEqual(page.get("gateway_upstream_request_duration_seconds_count",
                                  backend="bookstore"), calls)
        self.assert_idle(page, (live, dead))

    def test_policy_retries_and_exhausted_attempts_are_counted(self):
        a = self.a.address
        self.start(f"ipv4:{a}", extra="""
retries:
  rules:
    - {selectors: ["bookstore.v1.Bookstore.GetShelf"], max_attempts: 3, retry_on: [NOT_FOUND],
       backoff_base: 1ms, backoff_max: 2ms}
""")
        calls = 4
        self.assertEqual([self.call("/v1/shelves/999") for _ in range(calls)], [404] * calls)
        page = self.scrape()
        retries = "gateway_upstream_retries_total"
        # Each call: 3 attempts (2 retries), then the attempt limit.
        self.assertEqual(page.get(retries, backend="bookstore", outcome="retried"), 2 * calls)
        self.assertEqual(page.get(retries, backend="bookstore", outcome="exhausted"), calls)
        self.assertEqual(page.get(retries, backend="bookstore", outcome="budget_exceeded"), 0)
        self.assertEqual(page.get(retries, backend="bookstore", outcome="succeeded_after_retry"),
                         0)
        self.assertEqual(page.get("gateway_upstream_requests_total", backend="bookstore",
                                  endpoint=a), 3 * calls)
        self.assertEqual(page.get("gateway_upstream_request_duration_seconds_count",
                                  backend="bookstore"), calls)
        self.assert_idle(page, (a,))


if __name__ == "__main__":
    unittest.main()
