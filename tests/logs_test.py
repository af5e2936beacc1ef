"""Integration tests of the process log: the JSON format and the level filter, and the
events logged once each (a backend's health changes, a shared quota store's outage and its
end), however many probes and calls happen meanwhile. Real gatewayd, echo backend and
redis-server on loopback; every call and wait is bounded."""

import json
import re
import signal
import time
import unittest

import grpc

import harness

MSGS = harness.load_messages(harness.ECHO_SET)
Req = MSGS["gateway.test.v1.EchoRequest"]
Resp = MSGS["gateway.test.v1.EchoResponse"]
UNARY = "/gateway.test.v1.Echo/Unary"
TIMEOUT = 10


def config(backend, extra="", backend_extra=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend}"
{backend_extra}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 1s, worker_threads: 1}}
{extra}
"""


def wait_for(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def json_lines(process):
    """The gateway's log lines as JSON objects (complete lines only)."""
    return [json.loads(line) for line in process.output().split("\n")[:-1]
            if line.startswith("{")]


class LogsTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def call(self, address, payload=b"x"):
        with grpc.insecure_channel(address) as channel:
            unary = channel.unary_unary(UNARY, request_serializer=Req.SerializeToString,
                                        response_deserializer=Resp.FromString)
            try:
                unary(Req(payload=payload), timeout=TIMEOUT)
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

    def test_json_lines_and_health_changes_logged_once(self):
        backend = self.ws.echo_backend(extra_args=["--health"])
        gateway = self.ws.gatewayd(config(
            backend.address, extra="logging: {format: JSON, level: INFO}\n"
                                   "access_log: {enabled: false}",
            backend_extra="    health_check: {interval: 0.05s, timeout: 1s, "
                          "healthy_threshold: 1, unhealthy_threshold: 1}"))
        endpoint = backend.address

        def count(state):
            return sum(1 for line in json_lines(gateway)
                       if line["msg"].startswith(f'backend "echo": endpoint {endpoint} is {state}'))
        # An endpoint starts healthy: a passing first probe changes nothing, logs nothing.
        self.assertEqual(self.call(gateway.address), grpc.StatusCode.OK)
        time.sleep(0.3)
        self.assertEqual(count("healthy"), 0, gateway.output())
        # Every line is one JSON object with time, level and msg.
        lines = json_lines(gateway)
        self.assertGreaterEqual(len(lines), 2)
        for line in lines:
            self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(line["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(line["msg"], str)
        self.assertTrue(any(l["msg"].startswith("grpc listening on ") for l in lines), lines)
        self.assertNotRegex(gateway.output(), r"Z (debug|info|warn|error) gatewayd: ")

        backend.proc.send_signal(signal.SIGUSR1)  # NOT_SERVING
        wait_for(lambda: count("unhealthy") == 1, "the unhealthy line")
        for _ in range(5):
            self.call(gateway.address)
        time.sleep(0.6)  # a dozen probes, all failing
        self.assertEqual(count("unhealthy"), 1, gateway.output())
        (line,) = [l for l in json_lines(gateway) if " is unhealthy" in l["msg"]]
        self.assertEqual(line["level"], "warn")

        backend.proc.send_signal(signal.SIGUSR2)  # SERVING again
        wait_for(lambda: count("healthy") == 1, "the healthy-again line")
        time.sleep(0.5)
        self.assertEqual(count("healthy"), 1, gateway.output())
        self.assertEqual(count("unhealthy"), 1, gateway.output())

    def test_level_warn_drops_info_lines(self):
        dead = f"127.0.0.1:{harness.free_port()}"
        gateway = self.ws.start(
            [harness.GATEWAYD, "--config=" + self.ws.write("gw.yaml", config(
                dead, extra="logging: {level: WARN}",
                backend_extra="    health_check: {interval: 0.05s, timeout: 0.5s, "
                              "unhealthy_threshold: 1}"))],
            "gatewayd", announce=False)
        wait_for(lambda: re.search(r"Z warn gatewayd: backend \"echo\": endpoint \S+ is "
                                   r"unhealthy", gateway.output()), "the unhealthy line")
        out = gateway.output()
        self.assertNotIn(" info gatewayd:", out)
        self.assertNotIn("listening on", out)

    def test_quota_store_outage_and_recovery_logged_once_each(self):
        backend = self.ws.echo_backend()
        port = harness.free_port()
        redis_proc, redis = harness.redis_server(self.ws, port=port)
        gateway = self.ws.gatewayd(config(backend.address, extra=f"""
quotas:
  redis: {{address: "{redis}", failure_mode: FAIL_OPEN, timeout: 200ms}}
  rules:
    - {{name: shared, selectors: ["gateway.test.v1.Echo.Unary"], key: GLOBAL,
       requests: 100000, per: 1h, shared: true}}
"""))
        self.assertEqual(self.call(gateway.address), grpc.StatusCode.OK)
        redis_proc.stop(signal.SIGKILL)
        for _ in range(10):
            self.assertEqual(self.call(gateway.address), grpc.StatusCode.OK)  # fails open

        def down():
            return gateway.output().count("quota store unavailable")

        def up():
            return gateway.output().count("quota store answers again")
        wait_for(lambda: down() == 1, "the outage line")
        self.assertEqual(down(), 1, gateway.output())
        self.assertRegex(gateway.output(), r"Z warn gatewayd: quota store unavailable")
        self.assertEqual(up(), 0)

        harness.redis_server(self.ws, port=port)

        def call_until_up():
            self.call(gateway.address)
            return up() >= 1
        wait_for(call_until_up, "the recovery line", timeout=15)
        for _ in range(10):
            self.assertEqual(self.call(gateway.address), grpc.StatusCode.OK)
        self.assertEqual((down(), up()), (1, 1), gateway.output())


if __name__ == "__main__":
    unittest.main()
