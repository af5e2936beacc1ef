"""Integration tests of the access log: real gatewayd and echo backend on loopback, real
REST (HTTP/1.1 and h2c), gRPC-Web and gRPC clients. Every call and wait is bounded."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import grpc

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tools/grpcweb"))
import grpc_web_client as gw  # noqa: E402

MSGS = harness.load_messages(harness.ECHO_SET)
Req = MSGS["gateway.test.v1.EchoRequest"]
Resp = MSGS["gateway.test.v1.EchoResponse"]
UNARY = "/gateway.test.v1.Echo/Unary"
TIMEOUT = 20
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
_METRICS_LISTEN = re.compile(rb"metrics listening on (\S+)")


def config(backend, access_log="", extra=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - {{name: echo, target: "ipv4:{backend}"}}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 2s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  transcoding: {{expose_grpc_paths: true}}
{access_log}
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


def read_json_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    # Only complete lines: the writer may be mid-line.
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def rest_call(address, body, headers=None, path=UNARY):
    conn = http.client.HTTPConnection(*address.rsplit(":", 1), timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body,
                     headers={"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def backend_saw(metadata_list, key):
    return [m.split("=", 1)[1] for m in metadata_list if m.split("=", 1)[0] == key]


class AccessLogTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.backend_port = cls.backend.address.rsplit(":", 1)[1]
        cls.log_path = os.path.join(cls.ws.dir, "access.json")
        cls.gateway = cls.ws.gatewayd(config(
            cls.backend.address,
            access_log=f'access_log: {{format: JSON, path: "{cls.log_path}"}}',
            extra='metrics_listener: {address: "127.0.0.1:0"}'), name="gatewayd")
        cls.http = harness.http_address(cls.gateway)
        cls.channel = grpc.insecure_channel(cls.gateway.address)
        cls.unary = cls.channel.unary_unary(UNARY, request_serializer=Req.SerializeToString,
                                            response_deserializer=Resp.FromString)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.ws.close()

    def line_for(self, request_id, path=None):
        path = path or self.log_path

        def find():
            for line in read_json_lines(path):
                if line["request_id"] == request_id:
                    return line
            return None
        return wait_for(find, f"an access log line with request_id {request_id} in {path}")

    def test_rest_call_line_and_generated_request_id(self):
        body = json.dumps({"payload": "aGVsbG8="}).encode()
        status, headers, out = rest_call(self.http, body, {
            "user-agent": 'evil "agent" \\ with quotes', "traceparent":
            f"00-{TRACE}-00f067aa0ba902b7-01"})
        self.assertEqual(status, 200, out)
        request_id = headers["x-request-id"]
        self.assertRegex(request_id, HEX32)
        # The backend received the generated id, once.
        self.assertEqual(backend_saw(json.loads(out)["metadata"], "x-request-id"), [request_id])
        line = self.line_for(request_id)
        self.assertEqual(line["front_end"], "http")
        self.assertEqual(line["protocol"], "HTTP/1.1")
        self.assertEqual(line["method"], "POST")
        self.assertEqual(line["path"], UNARY)
        self.assertEqual(line["grpc_method"], UNARY)
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["grpc_status"], 0)
        self.assertEqual(line["bytes_in"], len(body))
        self.assertEqual(line["bytes_out"], len(out))
        self.assertEqual(line["attempts"], 1)
        self.assertEqual(line["upstream"], self.backend.address)
        self.assertEqual(line["trace_id"], TRACE)
        self.assertEqual(line["user_agent"], 'evil "agent" \\ with quotes')
        self.assertIn("127.0.0.1", line["peer"])
        self.assertGreater(line["duration"], 0)
        self.assertLessEqual(line["ttfb"], line["duration"])
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_rest_client_request_id_kept_and_error_status(self):
        body = json.dumps({"fail_code": 5, "fail_message": "no such thing"}).encode()
        status, headers, _ = rest_call(self.http, body, {"x-request-id": "client-id-1"})
        self.assertEqual(status, 404)
        self.assertEqual(headers["x-request-id"], "client-id-1")
        line = self.line_for("client-id-1")
        self.assertEqual(line["status"], 404)
        self.assertEqual(line["grpc_status"], 5)
        self.assertEqual(line["attempts"], 1)
        # The backend saw the client's id once (not a generated one besides it).
        status, headers, out = rest_call(self.http, b"{}", {"x-request-id": "client-id-2"})
        self.assertEqual(status, 200)
        self.assertEqual(backend_saw(json.loads(out)["metadata"], "x-request-id"),
                         ["client-id-2"])

    def test_rest_over_h2c_and_rejection_before_backend(self):
        out = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", "-m", "10", "-D", "-", "-o", "/dev/null",
             "-H", "content-type: application/json", "-H", "x-request-id: h2-call",
             "--data", "{}", f"http://{self.http}{UNARY}"],
            capture_output=True, timeout=TIMEOUT, check=True)
        self.assertIn(b"x-request-id: h2-call", out.stdout)
        line = self.line_for("h2-call")
        self.assertEqual(line["protocol"], "HTTP/2")
        self.assertEqual(line["status"], 200)
        # A route that does not exist: no backend, no upstream, gRPC status NOT_FOUND.
        status, headers, _ = rest_call(self.http, b"{}", {"x-request-id": "no-route"},
                                       path="/v1/nothing/here?secret=1")
        self.assertEqual(status, 404)
        line = self.line_for("no-route")
        self.assertEqual(line["path"], "/v1/nothing/here")  # the query is never logged
        self.assertEqual(line["attempts"], 0)
        self.assertEqual(line["upstream"], "")
        self.assertEqual(line["grpc_status"], 5)

    def test_grpc_web_call_line(self):
        client = gw.Client(self.http)
        try:
            reply = client.call(UNARY, Req(payload=b"web").SerializeToString())
        finally:
            client.close()
        self.assertEqual(reply.status, 0)
        request_id = reply.headers["x-request-id"]
        self.assertRegex(request_id, HEX32)
        self.assertEqual(backend_saw(Resp.FromString(reply.messages[0]).metadata,
                                     "x-request-id"), [request_id])
        line = self.line_for(request_id)
        self.assertEqual(line["front_end"], "grpc-web")
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["grpc_status"], 0)
        self.assertEqual(line["bytes_in"], 5 + len(Req(payload=b"web").SerializeToString()))
        self.assertEqual(line["attempts"], 1)
        self.assertIn(self.backend_port, line["upstream"])

    def test_grpc_call_line_and_request_ids(self):
        request = Req(payload=b"x" * 100)
        response, call = self.unary.with_call(request, timeout=TIMEOUT)
        initial = dict(call.initial_metadata())
        request_id = initial["x-request-id"]
        self.assertRegex(request_id, HEX32)
        self.assertEqual(backend_saw(response.metadata, "x-request-id"), [request_id])
        line = self.line_for(request_id)
        self.assertEqual(line["front_end"], "grpc")
        self.assertEqual(line["protocol"], "HTTP/2")
        self.assertEqual(line["grpc_method"], UNARY)
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["grpc_status"], 0)
        self.assertEqual(line["bytes_in"], len(request.SerializeToString()))
        self.assertEqual(line["bytes_out"], len(response.SerializeToString()))
        self.assertEqual(line["attempts"], 1)
        self.assertEqual(line["upstream"], self.backend.address)
        self.assertIn("grpc-python", line["user_agent"])
        # The client's id is kept, sent on once and returned; an error is logged with its code.
        response, call = self.unary.with_call(Req(), timeout=TIMEOUT,
                                              metadata=(("x-request-id", "grpc-client-1"),))
        self.assertEqual(dict(call.initial_metadata())["x-request-id"], "grpc-client-1")
        self.assertEqual(backend_saw(response.metadata, "x-request-id"), ["grpc-client-1"])
        with self.assertRaises(grpc.RpcError) as failed:
            self.unary(Req(fail_code=9, fail_message="nope"), timeout=TIMEOUT,
                       metadata=(("x-request-id", "grpc-fail"),))
        self.assertEqual(failed.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(self.line_for("grpc-fail")["grpc_status"], 9)

    def test_reopen_on_sigusr1_after_rename(self):
        rest_call(self.http, b"{}", {"x-request-id": "before-rotation"})
        self.line_for("before-rotation")
        rotated = self.log_path + ".1"
        os.rename(self.log_path, rotated)
        rest_call(self.http, b"{}", {"x-request-id": "while-renamed"})
        self.line_for("while-renamed", rotated)  # still the open (renamed) file
        self.gateway.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(self.log_path), "the reopened file")
        rest_call(self.http, b"{}", {"x-request-id": "after-rotation"})
        self.line_for("after-rotation")
        self.assertTrue(self.gateway.alive())
        ids = [line["request_id"] for line in read_json_lines(self.log_path)]
        self.assertNotIn("before-rotation", ids)

    def test_dropped_metric_is_served(self):
        address = wait_for(lambda: _METRICS_LISTEN.search(self.gateway.output().encode()),
                           "the metrics listener").group(1).decode()
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=TIMEOUT) as resp:
            page = resp.read().decode()
        self.assertIn("# TYPE gateway_access_log_dropped_total counter", page)
        self.assertRegex(page, r"\ngateway_access_log_dropped_total 0\n")


class AccessLogCallerTest(unittest.TestCase):
    """The caller the auth interceptors identified is on the line, for gRPC and REST."""

    def test_caller_id_of_an_api_key(self):
        ws = harness.Workspace()
        try:
            import hashlib
            digest = hashlib.sha256(b"s3cret-key").hexdigest()
            keys = ws.write("api-keys.txt", f"ci-bot {digest}\n")
            backend = ws.echo_backend()
            path = os.path.join(ws.dir, "caller.json")
            gateway = ws.gatewayd(config(
                backend.address,
                access_log=f'access_log: {{format: JSON, path: "{path}"}}',
                extra=f"""
auth:
  api_keys: {{keys_file: "{keys}"}}
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], providers: [api_key]}}
"""))
            with grpc.insecure_channel(gateway.address) as channel:
                unary = channel.unary_unary(UNARY, request_serializer=Req.SerializeToString,
                                            response_deserializer=Resp.FromString)
                unary(Req(), timeout=TIMEOUT, metadata=(("x-api-key", "s3cret-key"),
                                                        ("x-request-id", "grpc-caller")))
            status, _, _ = rest_call(harness.http_address(gateway), b"{}",
                                     {"x-api-key": "s3cret-key", "x-request-id": "rest-caller"})
            self.assertEqual(status, 200)
            status, _, _ = rest_call(harness.http_address(gateway), b"{}",
                                     {"x-request-id": "anonymous"})
            self.assertEqual(status, 401)

            def lines():
                found = {l["request_id"]: l for l in read_json_lines(path)}
                return found if len(found) >= 3 else None
            found = wait_for(lines, "three lines")
            self.assertEqual(found["grpc-caller"]["caller_id"], "ci-bot")
            self.assertEqual(found["rest-caller"]["caller_id"], "ci-bot")
            self.assertEqual(found["anonymous"]["caller_id"], "")
            self.assertEqual(found["anonymous"]["grpc_status"], 16)
            self.assertEqual(found["anonymous"]["attempts"], 0)
        finally:
            ws.close()


class AccessLogDefaultsTest(unittest.TestCase):
    """Text lines on stdout by default; the off switch; sampling."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_text_to_stdout_by_default(self):
        gateway = self.ws.gatewayd(config(self.backend.address), name="default")
        http_address = harness.http_address(gateway)
        status, headers, _ = rest_call(http_address, b"{}", {"user-agent": "tab\there \xe9"})
        self.assertEqual(status, 200)
        request_id = headers["x-request-id"]

        def find():
            for line in gateway.output().splitlines():
                if f'"{request_id}"' in line:
                    return line
            return None
        line = wait_for(find, "a text access log line on stdout")
        self.assertRegex(
            line, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "http" "HTTP/1.1" "POST" '
                  + re.escape(f'"{UNARY}" "{UNARY}" 200 0 2 ') + r'\d+ [0-9.]+ [0-9.]+ "[^"]+" 1 - '
                  + re.escape(f'"{request_id}" - "tab\\x09here \\xe9" "') + r'[^"]+"$')
        gateway.stop()

    def test_off_switch(self):
        gateway = self.ws.gatewayd(config(self.backend.address,
                                          access_log="access_log: {enabled: false}"),
                                   name="off")
        http_address = harness.http_address(gateway)
        status, headers, _ = rest_call(http_address, b"{}", {"x-request-id": "silent-call"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-request-id"], "silent-call")
        status, headers, _ = rest_call(http_address, b"{}")
        self.assertRegex(headers["x-request-id"], HEX32)  # ids are independent of logging
        time.sleep(0.5)  # the writer would have written within 20 ms
        self.assertNotIn("silent-call", gateway.output())
        gateway.stop()

    def test_sampling_keeps_errors(self):
        path = os.path.join(self.ws.dir, "sampled.json")
        gateway = self.ws.gatewayd(config(
            self.backend.address,
            access_log=f'access_log: {{format: JSON, path: "{path}", sample_rate: 0}}'),
            name="sampled")
        http_address = harness.http_address(gateway)
        for i in range(5):
            rest_call(http_address, b"{}", {"x-request-id": f"ok-{i}"})
        rest_call(http_address, json.dumps({"fail_code": 14}).encode(),
                  {"x-request-id": "failed"})
        lines = wait_for(lambda: read_json_lines(path), "the failed call's line")
        self.assertEqual([line["request_id"] for line in lines], ["failed"])
        self.assertEqual(lines[0]["grpc_status"], 14)
        gateway.stop()

    def test_bad_sample_rate_is_refused(self):
        path = self.ws.write("bad.yaml", config(self.backend.address,
                                                access_log="access_log: {sample_rate: 1.5}"))
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn("access_log.sample_rate: must be between 0 and 1, got 1.5", result.stderr)


if __name__ == "__main__":
    unittest.main()
