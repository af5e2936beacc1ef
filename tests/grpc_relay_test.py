"""Integration tests of native gRPC calls on gatewayd's HTTP listener.

A gRPC call (HTTP/2, content-type application/grpc) sent to the http_listener address is
relayed to its backend by the HTTP front end's own workers. Real processes on loopback:
the echo backend (tests/backend), gatewayd, Python grpcio clients and curl for requests
grpcio cannot make. Every call carries a deadline; every loop is bounded.
"""

import http.client
import json
import queue
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

import grpc

import harness
from grpc_hostile_h2_test import RawH2, ended, grpc_frame, grpc_request_headers
from grpc_proxy_test import Req, SERVICE, StatsReq, Stubs

TIMEOUT = 20  # seconds; the bound of any single call below
MAX_MESSAGE = 8 * 1024 * 1024  # limits.max_message_bytes of the gateway under test


def gateway_config(backend_address, extra="", http_limits=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
limits: {{max_message_bytes: {MAX_MESSAGE}}}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
{extra}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  limits: {{max_body_bytes: 1048576{http_limits}}}
  transcoding: {{expose_grpc_paths: true}}
"""


def code_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as e:
        return e.code(), e
    return grpc.StatusCode.OK, None


def wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def curl_grpc(address, body, headers=(), method="POST", path=SERVICE + "Unary"):
    """A raw HTTP/2 (prior knowledge) request with curl; returns the response head as a
    dict of lower-case names (the last value of each) and the HTTP status."""
    argv = ["curl", "-sS", "--http2-prior-knowledge", "-m", "10", "-o", "/dev/null",
            "-D", "-", "-X", method, f"http://{address}{path}",
            "-H", "content-type: application/grpc"]
    for h in headers:
        argv += ["-H", h]
    if body is not None:
        argv += ["--data-binary", "@-"]
    out = subprocess.run(argv, input=body, capture_output=True, timeout=15)
    head = {}
    status = None
    for line in out.stdout.decode(errors="replace").splitlines():
        if line.startswith("HTTP/"):
            status = int(line.split()[1])
        elif ":" in line:
            k, v = line.split(":", 1)
            head[k.strip().lower()] = v.strip()
    return status, head


def frame(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class GrpcRelayTest(unittest.TestCase):
    """What is particular to the relay (tests/grpc_proxy_test.py's GrpcProxyOnTheRelayTest
    runs every test of the gRPC front end through it as well)."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.backend = cls.ws.echo_backend()
            cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address))
            cls.http = harness.http_address(cls.gateway)
        except Exception:
            cls.ws.close()  # no process outlives a failed start
            raise
        cls.stubs = Stubs(cls.http)
        cls.direct = Stubs(cls.backend.address)

    @classmethod
    def tearDownClass(cls):
        cls.stubs.close()
        cls.direct.close()
        code = cls.gateway.stop()
        cls.ws.close()
        assert code == 0, f"gatewayd exited with {code}:\n{cls.gateway.output()}"

    def test_per_call_response_headers_stay_out_of_the_hpack_table(self):
        # x-request-id differs on every call: sent never-indexed, it does not push the
        # fields that repeat (content-type, ...) out of the client's HPACK dynamic table.
        raw = RawH2(self.http)
        self.addCleanup(raw.close)
        body = grpc_frame(Req(payload=b"hpack").SerializeToString())
        ids = set()
        for stream in (1, 3, 5):
            self.assertTrue(raw.request(stream, grpc_request_headers(), body, end_stream=True))
            self.assertIsNotNone(raw.read_until(ended(stream)))
            self.assertEqual(raw.grpc_status(stream), ("0", ""))
            ids.add(raw.of_kind(0x1, stream)[0].headers["x-request-id"])
        self.assertEqual(len(ids), 3)
        table = [(bytes(k).decode(), bytes(v).decode())
                 for k, v in raw.decoder.header_table.dynamic_entries]
        self.assertIn(("content-type", "application/grpc"), table)
        self.assertNotIn("x-request-id", [k for k, _ in table])

    def test_client_stream_without_messages(self):
        resp = self.stubs.client_stream(iter(()), timeout=TIMEOUT)
        self.assertEqual(resp.index, 0)

    def test_bidi_interactive(self):
        requests = queue.Queue()

        def gen():
            while True:
                item = requests.get(timeout=TIMEOUT)
                if item is None:
                    return
                yield item

        responses = self.stubs.bidi(gen(), timeout=TIMEOUT)
        for i in range(100):
            payload = f"round-{i}".encode()
            requests.put(Req(payload=payload))
            resp = next(responses)  # answered before the next request is sent
            self.assertEqual(resp.payload, payload)
            self.assertEqual(resp.index, i)
        requests.put(None)
        self.assertEqual(list(responses), [])

    def test_metadata_both_ways(self):
        binary = bytes(range(256))
        resp, call = self.stubs.unary.with_call(
            Req(payload=b"abc"), timeout=TIMEOUT,
            metadata=[("x-echo-color", "blue"), ("x-echo-data-bin", binary),
                      ("authorization", "Bearer t0k3n")])
        seen = dict(m.split("=", 1) for m in resp.metadata)
        self.assertEqual(seen["x-echo-color"], "blue")
        self.assertEqual(seen["authorization"], "Bearer t0k3n")
        import base64
        self.assertEqual(base64.b64decode(seen["x-echo-data-bin"]), binary)
        # The client's hop's own headers do not reach the backend.
        self.assertNotIn("te", seen)
        self.assertNotIn("content-type", seen)
        self.assertFalse(any(k.startswith("grpc-") and k != "grpc-accept-encoding"
                             for k in seen), seen)
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        self.assertEqual(initial["x-echo-initial"], "3")
        self.assertEqual(initial["x-reflect-color"], "blue")
        self.assertEqual(initial["x-reflect-data-bin"], binary)
        self.assertEqual(trailing["x-echo-trailing"], "done")
        self.assertIn("x-request-id", initial)

    def test_error_status_with_details(self):
        req = Req(payload=b"why", fail_code=grpc.StatusCode.NOT_FOUND.value[0],
                  fail_message="no such shelf: 7 (100% gone)")
        code, err = code_of(self.stubs.unary, req, timeout=TIMEOUT)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(err.details(), "no such shelf: 7 (100% gone)")
        _, direct = code_of(self.direct.unary, req, timeout=TIMEOUT)
        details = dict(err.trailing_metadata()).get("grpc-status-details-bin")
        self.assertIsNotNone(details)
        self.assertEqual(details, dict(direct.trailing_metadata())["grpc-status-details-bin"])
        self.assertEqual(dict(err.trailing_metadata())["x-echo-trailing"], "done")

    def test_4mb_message_both_ways(self):
        payload = bytes(i % 251 for i in range(4 * 1024 * 1024))
        resp = self.stubs.unary(Req(payload=payload), timeout=TIMEOUT)
        self.assertEqual(resp.payload, payload)

    def test_message_over_the_limit_is_resource_exhausted(self):
        code, err = code_of(self.stubs.unary, Req(payload=b"x" * (MAX_MESSAGE + 1)),
                            timeout=TIMEOUT)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"{err and err.debug_error_string()}\n{self.gateway.output()[-4000:]}")
        self.assertIn("limits.max_message_bytes", err.details())
        # The gateway still serves.
        self.assertEqual(self.stubs.unary(Req(payload=b"ok"), timeout=TIMEOUT).payload, b"ok")

    def test_declared_4gb_message_is_refused_at_its_prefix(self):
        status, head = curl_grpc(self.http, b"\x00\xff\xff\xff\xff" + b"x" * 100,
                                 headers=["te: trailers"])
        self.assertEqual(status, 200)
        # RESOURCE_EXHAUSTED (8), in the trailers-only head or the trailers curl prints.
        self.assertEqual(head.get("grpc-status"), "8", head)

    def test_deadline_reaches_the_backend(self):
        resp = self.stubs.unary(Req(payload=b"d"), timeout=2)
        # The backend's gRPC reads the time it received the call from a cached clock.
        self.assertTrue(1000 < resp.deadline_ms <= 2100, resp.deadline_ms)
        self.assertEqual(self.stubs.unary(Req(payload=b"n"), timeout=None).deadline_ms, -1)
        code, _ = code_of(self.stubs.unary, Req(sleep_ms=3000), timeout=0.5)
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_malformed_grpc_timeout_is_invalid_argument(self):
        # No body: curl 7.88 may wait for its upload when the answer comes first.
        status, head = curl_grpc(self.http, None, headers=["grpc-timeout: 5x"])
        self.assertEqual(status, 200)
        self.assertEqual(head.get("grpc-status"), "3", head)
        self.assertIn("grpc-timeout", head.get("grpc-message", ""))

    def test_method_other_than_post_is_405(self):
        status, head = curl_grpc(self.http, None, method="GET")
        self.assertEqual(status, 405)
        self.assertEqual(head.get("grpc-status"), "13", head)

    def test_call_without_te_header_is_served(self):
        status, head = curl_grpc(self.http, frame(Req(payload=b"t").SerializeToString()))
        self.assertEqual(status, 200)
        self.assertEqual(head.get("content-type"), "application/grpc")
        self.assertEqual(head.get("grpc-status"), "0", head)

    def test_access_log_line(self):
        request_id = f"relay-{time.monotonic_ns()}"
        self.stubs.unary(Req(payload=b"log"), timeout=TIMEOUT,
                         metadata=[("x-request-id", request_id)])
        lines = []

        def logged():
            lines[:] = [l for l in self.gateway.output().splitlines() if request_id in l]
            return bool(lines)

        self.assertTrue(wait_for(logged), "no access log line for the call")
        # Front end, protocol, method, path, gRPC method, HTTP status, gRPC status.
        self.assertIn('"grpc" "HTTP/2" "POST" "/gateway.test.v1.Echo/Unary" '
                      '"/gateway.test.v1.Echo/Unary" 200 0 ', lines[0])

    def test_rest_and_grpc_on_the_same_port(self):
        body = json.dumps({"payload": "aGk="}).encode()
        request = urllib.request.Request(
            f"http://{self.http}{SERVICE}Unary", data=body,
            headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["payload"], "aGk=")
        self.assertEqual(self.stubs.unary(Req(payload=b"hi"), timeout=TIMEOUT).payload, b"hi")


    def test_grpc_over_http11_is_refused_naming_http2(self):
        host, port = self.http.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request("POST", f"{SERVICE}Unary", body=b"\x00\x00\x00\x00\x00",
                         headers={"content-type": "application/grpc", "te": "trailers"})
            resp = conn.getresponse()
            body = json.loads(resp.read())
        finally:
            conn.close()
        self.assertEqual(resp.status, 415)
        self.assertIn("need HTTP/2", body["message"])


class GrpcRelayLongConnectionTest(unittest.TestCase):
    """An HTTP/2 connection lives past header_read_timeout, with calls in flight or not."""

    def test_connection_outlives_the_header_read_timeout(self):
        ws = harness.Workspace()
        try:
            backend = ws.echo_backend()
            gw = ws.gatewayd(gateway_config(backend.address,
                                             http_limits=", header_read_timeout: 1s"))
            stubs = Stubs(harness.http_address(gw))
            self.assertEqual(stubs.unary(Req(payload=b"a"), timeout=TIMEOUT).payload, b"a")
            # About 2 s of streaming on the same connection.
            got = list(stubs.server_stream(Req(count=5, sleep_ms=400), timeout=TIMEOUT))
            self.assertEqual([r.index for r in got], list(range(5)))
            self.assertEqual(stubs.unary(Req(payload=b"b"), timeout=TIMEOUT).payload, b"b")
            stubs.close()
        finally:
            ws.close()


class GrpcRelayAuthTest(unittest.TestCase):
    """An auth rule refuses and admits relayed calls as it does on every front end."""

    @classmethod
    def setUpClass(cls):
        import jwt_util
        cls.ws = harness.Workspace()
        keys_file = cls.ws.write("api-keys.txt",
                                 f"# id  sha256\nci-bot {jwt_util.sha256_hex('s3cret-key')}\n")
        cls.backend = cls.ws.echo_backend()
        extra = f"""
auth:
  api_keys:
    keys_file: "{keys_file}"
  rules:
    - selectors: ["gateway.test.v1.Echo.Unary"]
      providers: [api_key]
"""
        try:
            cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address, extra))
            cls.stubs = Stubs(harness.http_address(cls.gateway))
        except Exception:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stubs.close()
        cls.ws.close()

    def test_api_key_refused_and_admitted(self):
        resp = self.stubs.unary(Req(payload=b"k"), timeout=TIMEOUT,
                                metadata=[("x-api-key", "s3cret-key")])
        self.assertEqual(resp.payload, b"k")
        code, err = code_of(self.stubs.unary, Req(), timeout=TIMEOUT,
                            metadata=[("x-api-key", "wrong-key")])
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("unknown API key", err.details())
        code, _ = code_of(self.stubs.unary, Req(), timeout=TIMEOUT)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)


class GrpcRelayBackendDownTest(unittest.TestCase):

    def test_backend_down_is_unavailable(self):
        ws = harness.Workspace()
        try:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()  # nothing listens there any more
            gw = ws.gatewayd(gateway_config(f"127.0.0.1:{port}"))
            stubs = Stubs(harness.http_address(gw))
            code, err = code_of(stubs.unary, Req(payload=b"x"), timeout=TIMEOUT)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn('backend "echo"', err.details())
            stubs.close()
        finally:
            ws.close()


if __name__ == "__main__":
    unittest.main()
