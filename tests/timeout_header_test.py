"""The REST timeout header (deadlines.http_timeout_header) on gatewayd's HTTP listener.

Real processes on loopback: the echo backend (its Unary reports the deadline it received, in
milliseconds), gatewayd, and real clients: http.client (REST) and the project's gRPC-Web
client. Checks that the header sets the backend's deadline on REST and gRPC-Web calls, that a
bad value is refused naming the header, and how it combines with grpc-timeout, the deadline
rule's default and cap, and the listener's default. Every call is bounded in time.
"""

import base64
import http.client
import json
import os
import sys
import unittest

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tools/grpcweb"))
# Outside Bazel (GATEWAY_ROOT=bazel-bin) the client is beside this file's folder.
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools/grpcweb"))
import grpc_web_client as gw  # noqa: E402

TIMEOUT = 20
MSGS = harness.load_messages(harness.ECHO_SET)
EchoRequest = MSGS["gateway.test.v1.EchoRequest"]
EchoResponse = MSGS["gateway.test.v1.EchoResponse"]
UNARY = "/gateway.test.v1.Echo/Unary"


def config(echo, header_line=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - {{name: echo, target: "ipv4:{echo}"}}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
deadlines:
  {header_line}
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], default_timeout: 4s, max_timeout: 6s}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  default_deadline: 10s
  transcoding: {{expose_grpc_paths: true}}
"""


class TimeoutHeaderTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.echo.address))
        cls.http = harness.http_address(cls.gateway)
        cls.custom = cls.ws.gatewayd(
            config(cls.echo.address, "http_timeout_header: X-Call-Timeout"), name="custom")
        cls.custom_http = harness.http_address(cls.custom)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def rest(self, headers, address=None):
        """POSTs Echo.Unary; returns (HTTP status, JSON body)."""
        conn = http.client.HTTPConnection(*(address or self.http).rsplit(":", 1),
                                          timeout=TIMEOUT)
        self.addCleanup(conn.close)
        body = json.dumps({"payload": base64.b64encode(b"x").decode()}).encode()
        conn.request("POST", UNARY, body=body,
                     headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    def rest_deadline_ms(self, headers, address=None):
        status, body = self.rest(headers, address)
        self.assertEqual(status, 200, body)
        return int(body["deadlineMs"])

    def web(self, headers):
        client = gw.Client(self.http, timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client.call(UNARY, EchoRequest(payload=b"x").SerializeToString(),
                           metadata=headers)

    # gRPC sends the deadline rounded up a little; the backend sees what is left.
    def assert_about(self, ms, expected_ms):
        self.assertGreater(ms, expected_ms - 500)
        self.assertLessEqual(ms, expected_ms + 100)

    def test_rest_header_sets_the_backend_deadline(self):
        self.assert_about(self.rest_deadline_ms({"X-Request-Timeout": "1.5s"}), 1500)
        self.assert_about(self.rest_deadline_ms({"x-request-timeout": "800ms"}), 800)

    def test_grpc_web_header_sets_the_backend_deadline(self):
        reply = self.web({"x-request-timeout": "1.5s"})
        self.assertEqual(reply.status, 0, reply.message)
        self.assert_about(EchoResponse.FromString(reply.messages[0]).deadline_ms, 1500)

    def test_bad_value_is_400_naming_the_header(self):
        status, body = self.rest({"x-request-timeout": "soon"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["code"], 3)
        self.assertIn('x-request-timeout "soon"', body["message"])
        reply = self.web({"x-request-timeout": "-1s"})
        self.assertEqual(reply.status, 3)
        self.assertIn('x-request-timeout "-1s"', reply.message)

    def test_earlier_of_grpc_timeout_and_header(self):
        self.assert_about(
            self.rest_deadline_ms({"x-request-timeout": "3s", "grpc-timeout": "700m"}), 700)
        self.assert_about(
            self.rest_deadline_ms({"x-request-timeout": "700ms", "grpc-timeout": "3S"}), 700)

    def test_rule_caps_the_header(self):
        self.assert_about(self.rest_deadline_ms({"x-request-timeout": "60s"}), 6000)

    def test_without_client_timeout_the_earlier_default_applies(self):
        # The rule's default (4s) and the listener's default (10s): the earlier wins, and
        # neither is taken for the client's own deadline (which would skip the rule's).
        self.assert_about(self.rest_deadline_ms({}), 4000)

    def test_configured_header_name(self):
        self.assert_about(
            self.rest_deadline_ms({"X-Call-Timeout": "1.5s"}, self.custom_http), 1500)
        # The default name means nothing there.
        self.assert_about(
            self.rest_deadline_ms({"x-request-timeout": "1.5s"}, self.custom_http), 4000)


if __name__ == "__main__":
    unittest.main()
