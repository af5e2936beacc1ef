"""A config reload keeps the backends it did not change: their upstream clusters (connections,
health and outlier state, counters) live on, and only a changed or new backend starts afresh.

gatewayd with a metrics_listener in front of an echo backend; gRPC calls through the relay.
The counter gateway_upstream_requests_total of the echo backend's endpoint tells a kept
cluster (it goes on counting) from a new one (it starts again from 0). Bounded in time.
"""

import os
import signal
import time
import unittest

import harness
from grpc_proxy_test import Req, Stubs, TIMEOUT
from metrics_test import Page, get, metrics_address


def config_text(echo, extra_backend="", connect_timeout=None, deadline_rule=False):
    echo_extra = f", connect_timeout: {connect_timeout}" if connect_timeout else ""
    rules = ""
    if deadline_rule:
        rules = """
deadlines:
  rules:
    - {selectors: ["gateway.test.v1.Echo.Stats"], default_timeout: 5s}
"""
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
metrics_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - {{name: echo, target: "ipv4:{echo}"{echo_extra}}}
{extra_backend}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{worker_threads: 1}}
{rules}
"""


class ReloadKeepsBackendsTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.echo = self.ws.echo_backend()
        self.config_path = os.path.join(self.ws.dir, "gateway.yaml")
        with open(self.config_path, "w") as f:
            f.write(config_text(self.echo.address))
        self.gw = self.ws.start([harness.GATEWAYD, f"--config={self.config_path}"], "gatewayd")
        self.metrics = metrics_address(self.gw)
        self.stubs = Stubs(self.gw.address)

    def tearDown(self):
        self.stubs.close()
        self.ws.close()

    def calls(self, n):
        for _ in range(n):
            self.stubs.unary(Req(payload=b"k"), timeout=TIMEOUT, wait_for_ready=True)

    def requests_total(self):
        status, _, body = get(self.metrics, "/metrics")
        self.assertEqual(status, 200)
        return Page(body).total("gateway_upstream_requests_total", backend="echo")

    def reload(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)
        applied = self.gw.output().count("reload applied")
        self.gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while self.gw.output().count("reload applied") == applied:
            self.assertLess(time.monotonic(), deadline, self.gw.output()[-2000:])
            self.assertNotIn("reload refused", self.gw.output())
            time.sleep(0.05)

    def test_unchanged_backend_keeps_its_cluster_and_a_changed_one_starts_afresh(self):
        self.calls(5)
        self.assertEqual(self.requests_total(), 5)
        # A new backend and a new rule; the echo backend's entry is the same.
        other = self.ws.echo_backend()
        self.reload(config_text(self.echo.address,
                                extra_backend=f'  - {{name: other, target: "ipv4:{other.address}"}}',
                                deadline_rule=True))
        self.calls(1)
        self.assertEqual(self.requests_total(), 6, "the echo backend's cluster was kept")
        # Its entry changes: a new cluster, counting from 0 again.
        self.reload(config_text(self.echo.address, connect_timeout="3s", deadline_rule=True))
        self.calls(2)
        self.assertEqual(self.requests_total(), 2, "a changed backend gets a new cluster")


if __name__ == "__main__":
    unittest.main()
