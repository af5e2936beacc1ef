"""The Connect protocol on the HTTP listener: the real connect-node client (tools/npm,
dynamic types from the echo descriptor set) makes every call kind over HTTP/1.1 and HTTP/2,
JSON and proto; raw requests check what the client does not show (error JSON and HTTP
status, GET, envelopes, limits, precedence over REST on the same path); with a metrics
listener, quota and CORS policy, the calls in gateway_http_* (checked by promtool) and the
CORS answers of preflights and responses.

Real processes on loopback (echo backend, gatewayd, node); every call has a deadline.
"""

import base64
import gzip
import http.client
import json
import os
import struct
import subprocess
import unittest
import urllib.parse

import harness
from metrics_test import checked_page, metrics_address

TIMEOUT = 30
CLIENT = os.path.join(harness.ROOT, "tests/connect/client.mjs")
if not os.path.exists(CLIENT):
    CLIENT = os.path.join(os.path.dirname(os.path.realpath(__file__)), "connect/client.mjs")


def node_modules():
    for base in (os.path.join(harness.ROOT, "tools/npm"),
                 os.path.join(os.path.dirname(os.path.realpath(__file__)), "../tools/npm")):
        d = os.path.join(base, "node_modules")
        if os.path.isdir(os.path.join(d, "@connectrpc", "connect-node")):
            return os.path.realpath(d)
    return None


def config(backend_address, listener_extra="", extra=""):
    return f"""
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  transcoding: {{expose_grpc_paths: true}}
{listener_extra}
limits: {{max_message_bytes: 65536}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
{extra}
"""


def envelope(flags, data):
    return struct.pack(">BI", flags, len(data)) + data


class ConnectTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.backend.address))
        cls.address = harness.http_address(cls.gateway)
        cls.host, port = cls.address.rsplit(":", 1)
        cls.port = int(port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    # --- the real client ---

    def run_client(self, http_version, fmt):
        modules = node_modules()
        if modules is None:
            self.fail("tools/npm/node_modules has no @connectrpc/connect-node: run "
                      "tools/install_deps.sh (npm ci in tools/npm)")
        result = subprocess.run(
            ["node", CLIENT, f"http://{self.address}", http_version, fmt, harness.ECHO_SET,
             modules], capture_output=True, text=True, timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr + "\n" + self.gateway.output()[-3000:])
        return json.loads(result.stdout)

    def check_client(self, http_version, fmt):
        out = self.run_client(http_version, fmt)
        unary = out["unary"]["ok"]
        self.assertEqual(unary["payload"], "hello")
        self.assertTrue(0 < unary["deadlineMs"] <= 5000, unary)  # connect-timeout-ms
        self.assertIn("x-echo-color=blue", unary["metadata"])
        self.assertFalse([m for m in unary["metadata"] if m.startswith("connect-")], unary)
        self.assertEqual(unary["headers"].get("x-reflect-color"), "blue")
        self.assertEqual(unary["trailers"].get("x-echo-trailing"), "done")
        self.assertEqual(out["unaryError"]["error"]["code"], "NotFound")
        self.assertEqual(out["unaryError"]["error"]["message"], "no such book")
        self.assertEqual(out["unaryError"]["error"]["details"], ["gateway.test.v1.EchoResponse"])
        stream = out["serverStream"]["ok"]
        self.assertEqual(stream["got"], [["s", 0], ["s", 1], ["s", 2]])
        self.assertEqual(stream["trailers"].get("x-echo-trailing"), "done")
        err = out["serverStreamError"]["ok"]
        self.assertEqual((err["got"], err["code"], err["message"]),
                         ([0, 1], "ResourceExhausted", "quota gone"))
        self.assertEqual(out["get"]["ok"], {"finished": False, "calls": 0})
        self.assertEqual(out["gzip"]["ok"], {"unary": True, "stream": [True, True]})
        if http_version == "2":
            self.assertEqual(out["clientStream"]["ok"], {"index": 4, "payload": "m3"})
            self.assertEqual(out["bidi"]["ok"], [["m0", 0], ["m1", 1], ["m2", 2]])

    def test_connect_node_http1_json(self):
        self.check_client("1.1", "json")

    def test_connect_node_http1_proto(self):
        self.check_client("1.1", "proto")

    def test_connect_node_http2_json(self):
        self.check_client("2", "json")

    def test_connect_node_http2_proto(self):
        self.check_client("2", "proto")

    # --- the wire, as the spec has it ---

    def test_unary_error_json_and_http_status(self):
        for code, http_status, name in [(3, 400, "invalid_argument"), (5, 404, "not_found"),
                                        (7, 403, "permission_denied"),
                                        (8, 429, "resource_exhausted"),
                                        (12, 501, "unimplemented"), (14, 503, "unavailable"),
                                        (16, 401, "unauthenticated")]:
            body = json.dumps({"failCode": code, "failMessage": "why"})
            status, headers, data = self.request(
                "POST", "/gateway.test.v1.Echo/Unary", body,
                {"content-type": "application/json", "connect-protocol-version": "1"})
            self.assertEqual(status, http_status, data)
            self.assertEqual(headers["content-type"], "application/json")
            # The backend's grpc-status-details-bin: google.rpc.Status details as
            # {type, value} (value: the Any's bytes in base64, here an empty message).
            self.assertEqual(json.loads(data), {
                "code": name, "message": "why",
                "details": [{"type": "gateway.test.v1.EchoResponse", "value": ""}]})

    def test_json_post_without_protocol_version_stays_rest(self):
        body = json.dumps({"failCode": 5, "failMessage": "why"})
        status, _, data = self.request("POST", "/gateway.test.v1.Echo/Unary", body,
                                       {"content-type": "application/json"})
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(data)["code"], 5)  # REST's error body: numeric code

    def test_unknown_method_and_bad_headers(self):
        status, _, data = self.request("POST", "/gateway.test.v1.Echo/Nope", b"",
                                       {"content-type": "application/connect+proto"})
        self.assertEqual(status, 200)
        (flags, end), = harness.split_frames(data)
        self.assertEqual(flags, 2)
        self.assertEqual(json.loads(end)["error"]["code"], "unimplemented")
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/Unary", b"",
            {"content-type": "application/proto", "connect-timeout-ms": "soon"})
        self.assertEqual(status, 400)
        self.assertIn("connect-timeout-ms", json.loads(data)["message"])
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/Unary", b"\x1f\x8b",
            {"content-type": "application/proto", "content-encoding": "br"})
        self.assertEqual(status, 501)
        self.assertEqual(json.loads(data)["code"], "unimplemented")

    def test_get_only_for_no_side_effects_methods(self):
        message = base64.urlsafe_b64encode(b"\x0a\x02hi").decode().rstrip("=")
        status, headers, data = self.request(
            "GET", f"/gateway.test.v1.Echo/Stats?connect=v1&encoding=proto&base64=1&message={message}")
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["content-type"], "application/proto")
        query = urllib.parse.urlencode({"connect": "v1", "encoding": "json",
                                        "message": json.dumps({"payload": "aGk="})})
        status, _, data = self.request("GET", f"/gateway.test.v1.Echo/Unary?{query}")
        self.assertEqual(status, 405, data)
        self.assertIn("NO_SIDE_EFFECTS", json.loads(data)["message"])
        status, _, data = self.request(
            "GET", "/gateway.test.v1.Echo/Stats?connect=v1&encoding=xml&message=x")
        self.assertEqual(status, 400)
        self.assertIn("encoding", json.loads(data)["message"])

    def test_stream_envelopes_end_stream_and_limits(self):
        req = json.dumps({"payload": "YQ==", "count": 2}).encode()
        status, headers, data = self.request(
            "POST", "/gateway.test.v1.Echo/ServerStream", envelope(0, req),
            {"content-type": "application/connect+json"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/connect+json")
        got = harness.split_frames(data)
        self.assertEqual([f for f, _ in got], [0, 0, 2])
        self.assertEqual(json.loads(got[1][1]), {"payload": "YQ==", "index": 1})
        end = json.loads(got[2][1])
        self.assertNotIn("error", end)
        self.assertEqual(end["metadata"]["x-echo-trailing"], ["done"])
        # An envelope announcing more than limits.max_message_bytes, refused before its data.
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/Bidi", struct.pack(">BI", 0, 1 << 30) + b"x",
            {"content-type": "application/connect+proto"})
        self.assertEqual(status, 200)
        error = json.loads(harness.split_frames(data)[-1][1])["error"]
        self.assertEqual(error["code"], "resource_exhausted")
        self.assertIn("limits.max_message_bytes", error["message"])
        # Unknown flags, a truncated envelope, a compressed one without an encoding.
        for body, want in [(envelope(0x80, b""), "unknown flags"),
                           (envelope(0, req)[:-1], "ends inside an envelope"),
                           (envelope(1, req), "compressed")]:
            status, _, data = self.request(
                "POST", "/gateway.test.v1.Echo/ServerStream", body,
                {"content-type": "application/connect+json"})
            self.assertEqual(status, 200)
            error = json.loads(harness.split_frames(data)[-1][1])["error"]
            self.assertEqual(error["code"], "invalid_argument", error)
            self.assertIn(want, error["message"])

    def test_gzip_both_ways_and_bomb_refused(self):
        payload = b"z" * 20000
        req = gzip.compress(json.dumps({"payload": base64.b64encode(payload).decode()}).encode())
        status, headers, data = self.request(
            "POST", "/gateway.test.v1.Echo/Unary", req,
            {"content-type": "application/json", "connect-protocol-version": "1",
             "content-encoding": "gzip", "accept-encoding": "br, gzip"})
        self.assertEqual(status, 200, data)
        self.assertEqual(headers.get("content-encoding"), "gzip")
        self.assertEqual(base64.b64decode(json.loads(gzip.decompress(data))["payload"]), payload)
        # Streams: compressed envelopes (flag 1) both ways.
        msg = json.dumps({"payload": base64.b64encode(payload).decode(), "count": 2}).encode()
        status, headers, data = self.request(
            "POST", "/gateway.test.v1.Echo/ServerStream", envelope(1, gzip.compress(msg)),
            {"content-type": "application/connect+json", "connect-content-encoding": "gzip",
             "connect-accept-encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("connect-content-encoding"), "gzip")
        got = harness.split_frames(data)
        self.assertEqual([f for f, _ in got], [1, 1, 2])
        self.assertEqual(json.loads(gzip.decompress(got[1][1]))["index"], 1)
        # A bomb: 16 KiB of gzip inflating to 16 MiB, over limits.max_message_bytes (64 KiB).
        bomb = gzip.compress(b"\0" * (16 << 20))
        self.assertLess(len(bomb), 65536)
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/Unary", bomb,
            {"content-type": "application/proto", "content-encoding": "gzip"})
        self.assertEqual(status, 429, data)
        error = json.loads(data)
        self.assertEqual(error["code"], "resource_exhausted")
        self.assertIn("limits.max_message_bytes", error["message"])
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/Bidi", envelope(1, bomb),
            {"content-type": "application/connect+proto", "connect-content-encoding": "gzip"})
        self.assertEqual(json.loads(harness.split_frames(data)[-1][1])["error"]["code"],
                         "resource_exhausted")

    def test_unary_streaming_method_mismatch(self):
        status, _, data = self.request("POST", "/gateway.test.v1.Echo/ServerStream", b"",
                                       {"content-type": "application/proto"})
        self.assertEqual(status, 415)
        self.assertIn("streaming method", json.loads(data)["message"])


class ConnectMetricsAndCorsTest(unittest.TestCase):
    """Connect calls in the front-end metrics (gateway_http_*: the HTTP status each was
    answered with, interceptor rejections under front_end="http"), and the CORS answers a
    browser client of Connect needs."""

    ORIGIN = "http://page.test:8000"

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(
            cls.backend.address,
            f'  cors: {{allowed_origins: ["{cls.ORIGIN}"], allowed_methods: [GET, POST]}}',
            """
metrics_listener: {address: "127.0.0.1:0"}
quotas:
  rules:
    - {name: two-unary, selectors: ["gateway.test.v1.Echo.Unary"], key: HEADER,
       header: x-quota-key, requests: 2, per: 1h}
"""))
        cls.metrics = metrics_address(cls.gateway)
        cls.address = harness.http_address(cls.gateway)
        cls.host, port = cls.address.rsplit(":", 1)
        cls.port = int(port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    request = ConnectTest.request

    def scrape(self):
        return checked_page(self, self.metrics)

    def test_calls_are_counted_with_their_http_status(self):
        unary = "/gateway.test.v1.Echo/Unary"
        proto = {"content-type": "application/proto", "x-quota-key": "metrics"}
        before = self.scrape()

        def count(page, method, status):
            return page.get("gateway_http_responses_total", 0, method=method, status=status)

        # Two unary calls pass the quota, the third is refused: 429 and one rejection.
        for _ in range(2):
            status, _, data = self.request("POST", unary, b"\x0a\x02hi", proto)
            self.assertEqual(status, 200, data)
        status, _, data = self.request("POST", unary, b"\x0a\x02hi", proto)
        self.assertEqual(status, 429, data)
        self.assertEqual(json.loads(data)["code"], "resource_exhausted")
        # A stream is answered 200 whatever its end; an unknown method lands in "unknown".
        status, _, data = self.request(
            "POST", "/gateway.test.v1.Echo/ServerStream", envelope(0, b"\x0a\x01s\x30\x02"),
            {"content-type": "application/connect+proto"})
        self.assertEqual(status, 200, data)
        self.assertEqual(len(harness.split_frames(data)), 3, data)
        status, _, _ = self.request("POST", "/gateway.test.v1.Echo/Nope", b"", proto)
        self.assertEqual(status, 404)

        page = self.scrape()
        self.assertEqual(count(page, unary, "200") - count(before, unary, "200"), 2, page.text)
        self.assertEqual(count(page, unary, "429") - count(before, unary, "429"), 1, page.text)
        stream = "/gateway.test.v1.Echo/ServerStream"
        self.assertEqual(count(page, stream, "200") - count(before, stream, "200"), 1)
        self.assertEqual(count(page, "unknown", "404") - count(before, "unknown", "404"), 1)
        durations = page.get("gateway_http_request_duration_seconds_count", 0, method=unary)
        self.assertEqual(
            durations - before.get("gateway_http_request_duration_seconds_count", 0,
                                   method=unary), 3)
        rejected = page.get("gateway_interceptor_rejections_total", 0, front_end="http",
                            code="RESOURCE_EXHAUSTED")
        self.assertEqual(rejected - before.get("gateway_interceptor_rejections_total", 0,
                                               front_end="http", code="RESOURCE_EXHAUSTED"), 1)

    def test_preflight_allows_connect_headers_on_method_paths(self):
        asked = "connect-protocol-version,connect-timeout-ms,content-type"
        status, headers, _ = self.request("OPTIONS", "/gateway.test.v1.Echo/Stats", headers={
            "origin": self.ORIGIN, "access-control-request-method": "POST",
            "access-control-request-headers": asked})
        self.assertEqual(status, 204)
        self.assertEqual(headers["access-control-allow-origin"], self.ORIGIN)
        allowed = [h.strip() for h in headers["access-control-allow-headers"].split(",")]
        for h in asked.split(","):
            self.assertIn(h, allowed)
        # Not on other paths: there the Connect headers are not the protocol's.
        status, _, data = self.request("OPTIONS", "/v1/anything", headers={
            "origin": self.ORIGIN, "access-control-request-method": "POST",
            "access-control-request-headers": asked})
        self.assertEqual(status, 403)
        self.assertIn(b"connect-protocol-version", data)

    def test_responses_carry_cors_headers(self):
        for method, body, headers, want in [
                ("Stats", b"\x0a\x02hi", {"content-type": "application/proto"}, 200),
                ("Unary", json.dumps({"failCode": 5, "failMessage": "why"}),
                 {"content-type": "application/json", "connect-protocol-version": "1",
                  "x-quota-key": "cors"}, 404)]:
            status, got, data = self.request("POST", "/gateway.test.v1.Echo/" + method, body,
                                             {**headers, "origin": self.ORIGIN})
            self.assertEqual(status, want, data)
            self.assertEqual(got.get("access-control-allow-origin"), self.ORIGIN, got)
            self.assertEqual(got.get("access-control-expose-headers"),
                             "content-encoding, connect-content-encoding", got)
            self.assertEqual(got.get("vary"), "Origin", got)
        # Another origin gets none.
        _, got, _ = self.request("POST", "/gateway.test.v1.Echo/Stats", b"",
                                 {"content-type": "application/proto",
                                  "origin": "http://evil.test"})
        self.assertNotIn("access-control-allow-origin", got)


if __name__ == "__main__":
    unittest.main()
