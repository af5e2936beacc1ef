"""What clients see when a backend fails, on every front end of gatewayd.

Real processes on loopback: gatewayd with two backends, "echo" (the echo backend, running)
and "bookstore" (configured at a port where nothing listens), and real clients: http.client
(REST), the project's gRPC-Web client, grpcio (gRPC). A backend that cannot be reached gives
UNAVAILABLE / 503 naming the backend by its config name, never its address (which goes to
the gateway's log); a status the backend application sent passes through as it is, even
when it names an address. Every call is bounded in time.
"""

import base64
import http.client
import json
import os
import sys
import time
import unittest

import grpc

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tools/grpcweb"))
# Outside Bazel (GATEWAY_ROOT=bazel-bin) the client is beside this file's folder.
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools/grpcweb"))
import grpc_web_client as gw  # noqa: E402

TIMEOUT = 20
MSGS = harness.load_messages(harness.ECHO_SET)
EchoRequest = MSGS["gateway.test.v1.EchoRequest"]
UNARY = "/gateway.test.v1.Echo/Unary"
GET_SHELF = "/bookstore.v1.Bookstore/GetShelf"
DOWN_MESSAGE = 'backend "bookstore" is unavailable: failed to connect'


def config(echo, down_port):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}", "{harness.ECHO_SET}"]
backends:
  - {{name: bookstore, target: "ipv4:127.0.0.1:{down_port}"}}
  - {{name: echo, target: "ipv4:{echo}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  default_deadline: 10s
  transcoding: {{expose_grpc_paths: true}}
"""


class BackendErrorsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.echo = cls.ws.echo_backend()
        cls.down_port = harness.free_port()
        cls.gateway = cls.ws.gatewayd(config(cls.echo.address, cls.down_port))
        cls.http = harness.http_address(cls.gateway)
        cls.channel = grpc.insecure_channel(cls.gateway.address)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.ws.close()

    def rest(self, method, path, body=None):
        conn = http.client.HTTPConnection(*self.http.rsplit(":", 1), timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    def grpc_web(self, path, message):
        client = gw.Client(self.http, timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client.call(path, message)

    def grpc_call(self, path, message):
        call = self.channel.unary_unary(path)
        with self.assertRaises(grpc.RpcError) as caught:
            call(message, timeout=TIMEOUT)
        return caught.exception

    def assert_hides_address(self, text):
        self.assertNotIn("127.0.0.1", text)
        self.assertNotIn(str(self.down_port), text)
        self.assertNotIn("ipv4", text)

    # --- a backend that is not running ---

    def test_rest_gets_503_naming_the_backend(self):
        status, body = self.rest("GET", "/v1/shelves/1")
        self.assertEqual(status, 503, body)
        self.assertEqual(body["code"], 14)
        self.assertEqual(body["message"], DOWN_MESSAGE)
        self.assert_hides_address(json.dumps(body))

    def test_grpc_web_gets_unavailable_naming_the_backend(self):
        reply = self.grpc_web(GET_SHELF, b"\x08\x01")
        self.assertEqual(reply.status, grpc.StatusCode.UNAVAILABLE.value[0], reply.message)
        self.assertEqual(reply.message, DOWN_MESSAGE)
        self.assert_hides_address(repr(reply.headers) + reply.message)

    def test_grpc_gets_unavailable_naming_the_backend(self):
        error = self.grpc_call(GET_SHELF, b"\x08\x01")
        self.assertEqual(error.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(error.details(), DOWN_MESSAGE)
        self.assert_hides_address(error.details())

    def test_the_log_has_the_address(self):
        self.rest("GET", "/v1/shelves/1")
        wanted = f"127.0.0.1:{self.down_port}"
        deadline = time.monotonic() + TIMEOUT
        while wanted not in self.gateway.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in self.gateway.output().splitlines() if wanted in line]
        self.assertTrue(lines, self.gateway.output())
        self.assertIn('backend "bookstore"', lines[0])
        self.assertIn(f"connect to {wanted} failed", lines[0])

    # --- a status the backend application sent ---

    def test_backend_status_passes_through_on_every_front_end(self):
        text = "database at 127.0.0.1:5432 is down"
        request = EchoRequest(payload=b"x", fail_code=14, fail_message=text)
        status, body = self.rest("POST", UNARY,
                                 {"payload": base64.b64encode(b"x").decode(), "failCode": 14,
                                  "failMessage": text})
        self.assertEqual((status, body["code"], body["message"]), (503, 14, text))
        reply = self.grpc_web(UNARY, request.SerializeToString())
        self.assertEqual((reply.status, reply.message), (14, text))
        error = self.grpc_call(UNARY, request.SerializeToString())
        self.assertEqual((error.code(), error.details()), (grpc.StatusCode.UNAVAILABLE, text))


if __name__ == "__main__":
    unittest.main()
