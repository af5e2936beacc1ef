"""One port for every protocol: a gateway with only an http_listener serves native gRPC
(grpcio and the project's C++ load client), gRPC-Web and REST/JSON on the same port, over
HTTP/1.1 and HTTP/2, and the three protocols share one HTTP/2 connection.

Real processes on loopback (echo backend, gatewayd); every call has a deadline, every loop
a bound.
"""

import base64
import json
import socket
import struct
import subprocess
import time
import unittest

import grpc
import h2.config
import h2.connection
import h2.events

import harness
from grpc_proxy_test import Req, Resp, Stubs

TIMEOUT = 20
UNARY = "/gateway.test.v1.Echo/Unary"
SERVER_STREAM = "/gateway.test.v1.Echo/ServerStream"


def config(backend_address):
    return f"""
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  transcoding: {{expose_grpc_paths: true}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
"""


def grpc_frame(message, flag=0):
    data = message.SerializeToString()
    return struct.pack(">BI", flag, len(data)) + data


class SinglePortTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.backend.address))
        cls.address = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_the_config_has_no_grpc_listener_and_logs_one_port(self):
        out = self.gateway.output()
        self.assertNotIn("grpc listening on", out)
        self.assertIn("http listening on", out)

    def test_grpcio_client_all_call_kinds(self):
        stubs = Stubs(self.address)
        try:
            self.assertEqual(stubs.unary(Req(payload=b"u"), timeout=TIMEOUT).payload, b"u")
            got = [r.payload for r in stubs.server_stream(Req(payload=b"s", count=3),
                                                          timeout=TIMEOUT)]
            self.assertEqual(got, [b"s"] * 3)
            resp = stubs.client_stream(iter([Req(payload=b"a"), Req(payload=b"b")]),
                                       timeout=TIMEOUT)
            self.assertEqual((resp.index, resp.payload), (2, b"b"))  # count, last payload
            got = [r.payload for r in stubs.bidi(iter([Req(payload=b"x"), Req(payload=b"y")]),
                                                  timeout=TIMEOUT)]
            self.assertEqual(got, [b"x", b"y"])
        finally:
            stubs.close()

    def test_cpp_load_client(self):
        result = subprocess.run(
            [harness.GRPC_LOAD, f"--target={self.address}", "--duration=60s",
             "--call_timeout=20s", "--mode=unary", "--concurrency=50", "--calls=1000"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual(report["errors"], 0, report)
        self.assertGreaterEqual(report["calls"], 1000, report)

    def test_rest_and_grpc_web_over_http1_on_the_same_port(self):
        host, port = self.address.rsplit(":", 1)
        body = json.dumps({"payload": base64.b64encode(b"rest").decode()}).encode()
        web_body = grpc_frame(Req(payload=b"web"))
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            # Two requests on one keep-alive HTTP/1.1 connection: REST, then gRPC-Web.
            sock.sendall(b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gw\r\n"
                         b"Content-Type: application/json\r\nContent-Length: " +
                         str(len(body)).encode() + b"\r\n\r\n" + body)
            sock.sendall(b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gw\r\n"
                         b"Content-Type: application/grpc-web+proto\r\nContent-Length: " +
                         str(len(web_body)).encode() + b"\r\nConnection: close\r\n\r\n" +
                         web_body)
            data = b""
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        first, _, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), data[:300])
        self.assertIn(b"application/json", first.lower())
        length = int([l.split(b":")[1] for l in first.split(b"\r\n")
                      if l.lower().startswith(b"content-length")][0])
        rest_json = json.loads(rest[:length])
        self.assertEqual(base64.b64decode(rest_json["payload"]), b"rest")
        second = rest[length:]
        self.assertTrue(second.startswith(b"HTTP/1.1 200"), second[:300])
        self.assertIn(b"application/grpc-web", second.lower())

    def test_native_grpc_over_http1_is_refused_clearly(self):
        host, port = self.address.rsplit(":", 1)
        body = grpc_frame(Req(payload=b"x"))
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST " + UNARY.encode() + b" HTTP/1.1\r\nHost: gw\r\n"
                         b"Content-Type: application/grpc\r\nContent-Length: " +
                         str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            data = b""
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 415"), data[:300])
        self.assertIn(b"HTTP/2", data)

    def test_grpc_rest_and_grpc_web_share_one_http2_connection(self):
        """Three protocols as three streams of one h2c connection, all in flight at once."""
        host, port = self.address.rsplit(":", 1)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        common = [(":method", "POST"), (":scheme", "http"), (":authority", "gw")]
        # 1: native gRPC server stream; 3: REST (JSON); 5: gRPC-Web unary.
        conn.send_headers(1, common + [(":path", SERVER_STREAM),
                                       ("content-type", "application/grpc"), ("te", "trailers")])
        conn.send_data(1, grpc_frame(Req(payload=b"g", count=2)), end_stream=True)
        rest_body = json.dumps({"payload": base64.b64encode(b"r").decode()}).encode()
        conn.send_headers(3, common + [(":path", UNARY), ("content-type", "application/json")])
        conn.send_data(3, rest_body, end_stream=True)
        conn.send_headers(5, common + [(":path", UNARY),
                                       ("content-type", "application/grpc-web+proto")])
        conn.send_data(5, grpc_frame(Req(payload=b"w")), end_stream=True)
        headers, trailers, data, ended = {}, {}, {1: b"", 3: b"", 5: b""}, set()
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(conn.data_to_send())
            deadline = time.monotonic() + TIMEOUT
            while len(ended) < 3 and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers[event.stream_id] = dict(
                            (k.decode(), v.decode()) for k, v in event.headers)
                    elif isinstance(event, h2.events.TrailersReceived):
                        trailers[event.stream_id] = dict(
                            (k.decode(), v.decode()) for k, v in event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        data[event.stream_id] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        self.fail(f"stream {event.stream_id} reset: {event.error_code}")
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        self.assertEqual(ended, {1, 3, 5}, (headers, trailers))
        # gRPC: two messages, then trailers with grpc-status 0.
        self.assertEqual(headers[1][":status"], "200")
        self.assertEqual(headers[1]["content-type"], "application/grpc")
        self.assertEqual([Resp.FromString(p).payload for _, p in harness.split_frames(data[1])],
                         [b"g", b"g"])
        self.assertEqual(trailers[1]["grpc-status"], "0")
        # REST: JSON.
        self.assertEqual(headers[3][":status"], "200")
        self.assertEqual(base64.b64decode(json.loads(data[3])["payload"]), b"r")
        # gRPC-Web: a data frame, then a trailer frame (flag 0x80) with grpc-status 0.
        self.assertEqual(headers[5][":status"], "200")
        frames = harness.split_frames(data[5])
        self.assertEqual(Resp.FromString(frames[0][1]).payload, b"w")
        self.assertEqual(frames[-1][0], 0x80)
        self.assertIn(b"grpc-status:0", frames[-1][1].replace(b" ", b""))


if __name__ == "__main__":
    unittest.main()
