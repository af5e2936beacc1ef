"""Hostile request headers against a live gatewayd: names and values that gRPC forbids as
metadata (upper case, spaces, non-ASCII, control bytes, empty, "-bin" values that are not
base64, very long values), sent with raw HTTP/2 (python3-h2) to the gRPC listener and to
the HTTP listener (gRPC-Web and REST), and with raw HTTP/1.1 sockets to the HTTP listener.

gRPC core aborts the process when it is handed invalid metadata, so each request must be
answered (a grpc-status, an HTTP status, or a stream reset by the HTTP/2 layer) and the
process must stay alive and serve a normal call afterwards. Invalid names never reach the
backend (the echo backend reports the metadata it received); invalid values of headers
that would be forwarded are refused with INVALID_ARGUMENT / 400 naming the header.
"""

import base64
import json
import socket
import struct
import time
import unittest

import grpc
import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.exceptions

import harness
from grpc_proxy_test import Req, Resp, Stubs, gateway_config

TIMEOUT = 10  # seconds; the bound of any single request below
UNARY = "/gateway.test.v1.Echo/Unary"
OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED = "0", "3", "8"


def grpc_frame(message):
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


class H2Reply:
    """What came back on one HTTP/2 stream."""

    def __init__(self):
        self.headers = {}
        self.trailers = {}
        self.data = b""
        self.reset = None  # the RST_STREAM error code, if the stream was reset
        self.ended = False

    def grpc_status(self):
        return self.trailers.get("grpc-status", self.headers.get("grpc-status"))

    def grpc_message(self):
        return self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))

    def answered(self):
        return self.ended or self.reset is not None


def h2_request(address, headers, body, timeout=TIMEOUT):
    """Sends one request on a fresh h2c connection, with no validation of the header block
    by the client library; returns an H2Reply (bounded by `timeout`)."""
    host, port = address.rsplit(":", 1)
    config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                       validate_outbound_headers=False,
                                       normalize_outbound_headers=False,
                                       validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    conn.send_headers(1, headers)
    conn.send_data(1, body, end_stream=True)
    reply = H2Reply()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + timeout
        while not reply.answered() and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            try:
                events = conn.receive_data(chunk)
            except h2.exceptions.StreamClosedError:
                # A frame for a stream the server already reset (gRPC core refuses some
                # header blocks itself: RST_STREAM right after its answer).
                reply.reset = "closed"
                break
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    reply.headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h2.events.TrailersReceived):
                    reply.trailers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h2.events.DataReceived):
                    reply.data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    reply.ended = True
                elif isinstance(event, h2.events.StreamReset):
                    reply.reset = event.error_code
                elif isinstance(event, h2.events.ConnectionTerminated):
                    reply.reset = event.error_code
            data = conn.data_to_send()
            if data:
                sock.sendall(data)
    return reply


def http1_request(address, head, body=b"", timeout=TIMEOUT):
    """Sends raw HTTP/1.1 bytes (`head` without the final CRLF, Connection: close added);
    returns (status, headers dict, body)."""
    host, port = address.rsplit(":", 1)
    request = (head + b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
               + b"\r\n\r\n" + body)
    data = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode(errors="replace")
    return status, headers, rest


# (name, value, what the gateway must do with it): "drop" = the call succeeds and the
# backend never sees the name; "refuse" = INVALID_ARGUMENT naming the header; "answer" =
# any answer (the transport itself may refuse it); "too large" = RESOURCE_EXHAUSTED naming
# limits.max_metadata_bytes (the backend never sees the call).
HOSTILE = [
    # RFC 9113 8.2.1: a request with an upper-case field name is malformed; the stream is
    # reset with PROTOCOL_ERROR (other streams and the connection live on).
    (b"X-Upper", b"1", "reset"),
    (b"x-sp ace", b"1", "drop"),
    (b"x-caf\xc3\xa9", b"1", "drop"),
    (b"", b"1", "drop"),
    (b"x:colon", b"1", "drop"),
    (b"x-non-ascii", b"caf\xc3\xa9", "refuse"),
    (b"x-control", b"a\x01b", "refuse"),
    (b"x-del", b"a\x7fb", "refuse"),
    (b"x-empty", b"", "pass"),
    (b"x-data-bin", b"!!!not base64", "answer"),
    (b"x-long", b"a" * 20000, "too large"),
    (b"x-medium", b"b" * 4000, "pass"),
]


class HostileMetadataTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        http = """
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  forwarded_request_headers: [x-tenant]
  transcoding: {expose_grpc_paths: true}
"""
        cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address, http))
        cls.http = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def assert_alive_and_serving(self):
        self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
        stubs = Stubs(self.gateway.address)
        try:
            resp = stubs.unary(Req(payload=b"still here"), timeout=TIMEOUT)
            self.assertEqual(resp.payload, b"still here")
        finally:
            stubs.close()

    def grpc_headers(self, extra):
        return [(b":method", b"POST"), (b":scheme", b"http"), (b":path", UNARY.encode()),
                (b":authority", b"gateway"), (b"content-type", b"application/grpc"),
                (b"te", b"trailers")] + extra

    # --- gRPC listener ---

    def test_grpc_listener_survives_and_answers_every_hostile_header(self):
        for name, value, expect in HOSTILE:
            with self.subTest(name=name, value=value[:20]):
                reply = h2_request(self.gateway.address,
                                   self.grpc_headers([(name, value), (b"x-seen", b"yes")]),
                                   grpc_frame(Req(payload=b"p")))
                self.assertTrue(reply.answered(), (name, reply.headers, reply.reset))
                self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
                if expect == "answer":
                    continue
                if expect == "reset":
                    self.assertEqual(reply.reset, h2.errors.ErrorCodes.PROTOCOL_ERROR,
                                     (reply.headers, reply.trailers))
                    continue
                status = reply.grpc_status()
                if expect == "refuse":
                    self.assertEqual(status, INVALID_ARGUMENT, (reply.headers, reply.trailers))
                    self.assertIn(f"header {name.decode()}", reply.grpc_message())
                    continue
                if expect == "too large":
                    self.assertEqual(status, RESOURCE_EXHAUSTED, (reply.headers, reply.trailers))
                    self.assertIn("limits.max_metadata_bytes", reply.grpc_message())
                    continue
                self.assertEqual(status, OK, (reply.headers, reply.trailers))
                seen = Resp.FromString(reply.data[5:]).metadata
                self.assertIn("x-seen=yes", seen)
                if expect == "drop":
                    self.assertFalse([m for m in seen if m.split("=", 1)[0].lower()
                                      == name.decode(errors="replace").lower()
                                      and name.decode(errors="replace").lower() != ""],
                                     seen)
        self.assert_alive_and_serving()

    def test_grpc_listener_upper_case_name_then_normal_call(self):
        # The request that used to abort the process: now a malformed request (RFC 9113
        # 8.2.1) whose stream is reset, and the gateway serves on.
        reply = h2_request(self.gateway.address, self.grpc_headers([(b"X-Upper", b"1")]),
                           grpc_frame(Req(payload=b"u")))
        self.assertEqual(reply.reset, h2.errors.ErrorCodes.PROTOCOL_ERROR,
                         (reply.headers, reply.trailers))
        self.assert_alive_and_serving()

    def test_oversized_metadata_never_reaches_the_backend_connection(self):
        # A backend's gRPC closes its connection (every call on it) when a header block is
        # over its limit; the gateway refuses such a call itself, so a call in flight to the
        # same backend lives through it.
        stubs = Stubs(self.gateway.address)
        try:
            slow = stubs.unary.future(Req(payload=b"slow", sleep_ms=1500), timeout=TIMEOUT)
            time.sleep(0.3)
            big = b"z" * 10000
            reply = h2_request(self.gateway.address,
                               self.grpc_headers([(b"x-big", big)]),
                               grpc_frame(Req(payload=b"g")))
            self.assertEqual(reply.grpc_status(), RESOURCE_EXHAUSTED,
                             (reply.headers, reply.trailers))
            self.assertIn("largest header is x-big", reply.grpc_message())
            web = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", UNARY.encode()),
                   (b":authority", b"gateway"),
                   (b"content-type", b"application/grpc-web+proto"), (b"x-big", big)]
            reply = h2_request(self.http, web, grpc_frame(Req(payload=b"w")))
            self.assertEqual(reply.grpc_status(), RESOURCE_EXHAUSTED,
                             (reply.headers, reply.trailers))
            status, _, body = http1_request(
                self.http, b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gateway\r\n"
                b"Content-Type: application/json\r\nX-Tenant: " + big, self.rest_body())
            self.assertEqual(status, 431, body[:300])
            self.assertIn(b"limits.max_metadata_bytes", body)
            self.assertEqual(slow.result().payload, b"slow")
        finally:
            stubs.close()
        self.assert_alive_and_serving()

    def test_grpcio_client_binary_metadata_still_passes(self):
        stubs = Stubs(self.gateway.address)
        try:
            resp = stubs.unary(Req(payload=b"b"), timeout=TIMEOUT,
                               metadata=[("x-raw-bin", b"\x00\xff\x01")])
        finally:
            stubs.close()
        self.assertIn("x-raw-bin=" + base64.b64encode(b"\x00\xff\x01").decode(),
                      resp.metadata)

    # --- HTTP listener: gRPC-Web over HTTP/2 and HTTP/1.1 ---

    def test_grpc_web_over_h2_survives_every_hostile_header(self):
        for name, value, _ in HOSTILE:
            with self.subTest(name=name, value=value[:20]):
                headers = [(b":method", b"POST"), (b":scheme", b"http"),
                           (b":path", UNARY.encode()), (b":authority", b"gateway"),
                           (b"content-type", b"application/grpc-web+proto"), (name, value)]
                reply = h2_request(self.http, headers, grpc_frame(Req(payload=b"w")))
                # nghttp2 resets streams whose names are not lower-case tokens; anything
                # else is answered by the gateway.
                self.assertTrue(reply.answered(), (name, reply.headers, reply.reset))
                self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
        self.assert_alive_and_serving()

    def grpc_web_http1(self, header_line):
        body = grpc_frame(Req(payload=b"w"))
        return http1_request(self.http,
                             b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gateway\r\n"
                             b"Content-Type: application/grpc-web+proto\r\n" + header_line,
                             body)

    def test_grpc_web_over_http1_refuses_invalid_values_and_drops_invalid_names(self):
        # (header line, expected grpc-status or None for any answer, whether the message
        # must name the header: the HTTP/1.1 parser refuses some bytes before the gateway)
        cases = [
            (b"X-Upper: 1", OK, False),             # lower-cased by HTTP/1.1: valid
            (b"x-caf\xc3\xa9: 1", None, False),     # not a token: the parser refuses it
            (b"x!bang: 1", OK, False),              # a token, not a gRPC key: dropped
            (b"x-non-ascii: caf\xc3\xa9", INVALID_ARGUMENT, True),
            (b"x-del: a\x7fb", INVALID_ARGUMENT, False),
            (b"x-data-bin: !!!not base64", INVALID_ARGUMENT, True),
            (b"x-data-bin: AAEC", OK, False),
            (b"x-empty:", OK, False),
            (b"x-long: " + b"c" * 20000, None, False),
        ]
        for line, expected, named in cases:
            with self.subTest(line=line[:30]):
                status, headers, body = self.grpc_web_http1(line)
                self.assertNotEqual(status, 0, line[:60])
                self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
                if expected is None:
                    continue
                self.assertEqual(status, 200, (line[:60], body[:200]))
                grpc_status = headers.get("grpc-status")
                if grpc_status is None:  # status in the trailer frame
                    grpc_status = "0" if b"grpc-status:0" in body.replace(b" ", b"") else "?"
                self.assertEqual(grpc_status, expected, (line[:60], headers, body[:300]))
                if named:
                    name = line.split(b":", 1)[0].decode()
                    self.assertIn(f"header {name}", headers.get("grpc-message", ""))
        self.assert_alive_and_serving()

    # --- HTTP listener: REST over HTTP/1.1 and HTTP/2 ---

    def rest_body(self):
        return json.dumps({"payload": base64.b64encode(b"r").decode()}).encode()

    def test_rest_refuses_invalid_values_of_forwarded_headers(self):
        cases = [
            (b"X-Tenant: caf\xc3\xa9", 400),
            (b"X-Tenant: acme", 200),
            (b"X-Other: caf\xc3\xa9", 200),   # not forwarded: never checked, never sent
            (b"x!bang: 1", 200),
        ]
        for line, expected in cases:
            with self.subTest(line=line):
                status, _, body = http1_request(
                    self.http, b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gateway\r\n"
                    b"Content-Type: application/json\r\n" + line, self.rest_body())
                self.assertEqual(status, expected, body[:300])
                if expected == 400:
                    self.assertIn(b"header x-tenant", body)
                else:
                    md = json.loads(body)["metadata"]
                    self.assertFalse([m for m in md if m.startswith(("x-other", "x!bang"))],
                                     md)
        for name, value, _ in HOSTILE:
            with self.subTest(h2_name=name, value=value[:20]):
                headers = [(b":method", b"POST"), (b":scheme", b"http"),
                           (b":path", UNARY.encode()), (b":authority", b"gateway"),
                           (b"content-type", b"application/json"), (name, value),
                           (b"x-tenant", value)]
                reply = h2_request(self.http, headers, self.rest_body())
                self.assertTrue(reply.answered(), (name, reply.headers, reply.reset))
                self.assertTrue(self.gateway.alive(), self.gateway.output()[-3000:])
        self.assert_alive_and_serving()


if __name__ == "__main__":
    unittest.main()
