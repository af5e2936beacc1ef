"""Integration tests of gRPC-Web on gatewayd's HTTP listener.

Real processes on loopback: the bookstore example backend, the echo backend, gatewayd, and
real clients: the project's own gRPC-Web client (tools/grpcweb/grpc_web_client.py, HTTP/1.1
on http.client), raw sockets, curl over h2c (--http2-prior-knowledge) and over TLS (ALPN
h2), and h2load. Every call is bounded in time.
"""

import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
import unittest

import harness
import jwt_util

sys.path.insert(0, os.path.join(harness.ROOT, "tools/grpcweb"))
import grpc_web_client as gw  # noqa: E402

TIMEOUT = 20
CLIENT = os.path.join(harness.ROOT, "tools/grpcweb/grpc_web_client.py")
BOOK = harness.load_messages(harness.BOOKSTORE_SET)
ECHO_MSGS = harness.load_messages(harness.ECHO_SET)
GetShelf = BOOK["bookstore.v1.GetShelfRequest"]
Shelf = BOOK["bookstore.v1.Shelf"]
EchoRequest = ECHO_MSGS["gateway.test.v1.EchoRequest"]
EchoResponse = ECHO_MSGS["gateway.test.v1.EchoResponse"]
StatsRequest = ECHO_MSGS["gateway.test.v1.StatsRequest"]
StatsResponse = ECHO_MSGS["gateway.test.v1.StatsResponse"]
GET_SHELF = "/bookstore.v1.Bookstore/GetShelf"
ECHO = "/gateway.test.v1.Echo/"
MAX_BODY = 65536


def config(bookstore, echo, http_extra="", extra=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}", "{harness.ECHO_SET}"]
backends:
  - {{name: bookstore, target: "ipv4:{bookstore}"}}
  - {{name: echo, target: "ipv4:{echo}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
{extra}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  default_deadline: 3s
  limits: {{max_body_bytes: {MAX_BODY}}}
  transcoding: {{expose_grpc_paths: true}}
{http_extra}
"""


CORS = """
  cors:
    allowed_origins: ["https://app.example.com"]
    allowed_methods: [POST]
    allowed_headers: [authorization]
    exposed_headers: [x-echo-initial]
"""


def frame(payload, flags=0):
    return gw.encode_frame(payload, flags)


class GrpcWebTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.bookstore.address, cls.echo.address, CORS))
        cls.address = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def client(self, text=False):
        c = gw.Client(self.address, text=text, timeout=TIMEOUT)
        self.addCleanup(c.close)
        return c

    def echo_stats(self, tag):
        reply = self.client().call(ECHO + "Stats", StatsRequest(tag=tag).SerializeToString())
        self.assertEqual(reply.status, 0, reply.message)
        return StatsResponse.FromString(reply.messages[0])

    # --- calls that work ---

    def test_unary_binary(self):
        reply = self.client().call(GET_SHELF, GetShelf(shelf=1).SerializeToString())
        self.assertEqual((reply.http_status, reply.status), (200, 0), reply.message)
        self.assertEqual(reply.headers["content-type"], "application/grpc-web+proto")
        self.assertFalse(reply.trailers_only)
        self.assertEqual(len(reply.messages), 1)
        self.assertEqual(Shelf.FromString(reply.messages[0]).theme, "Fiction")

    def test_unary_text(self):
        reply = self.client(text=True).call(GET_SHELF, GetShelf(shelf=2).SerializeToString())
        self.assertEqual(reply.status, 0, reply.message)
        self.assertEqual(reply.headers["content-type"], "application/grpc-web-text+proto")
        self.assertEqual(Shelf.FromString(reply.messages[0]).theme, "History")

    def test_binary_request_with_accept_text_gets_a_text_response(self):
        conn = http.client.HTTPConnection(*self.address.rsplit(":", 1), timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("POST", GET_SHELF, body=frame(GetShelf(shelf=1).SerializeToString()),
                     headers={"Content-Type": "application/grpc-web+proto",
                              "Accept": "application/grpc-web-text"})
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.getheader("content-type"), "application/grpc-web-text+proto")
        frames = gw.FrameReader(text=True).feed(body)
        self.assertEqual(Shelf.FromString(frames[0][1]).theme, "Fiction")
        self.assertEqual(gw.parse_trailers(frames[1][1])["grpc-status"], "0")

    def test_text_request_in_several_padded_chunks(self):
        raw = frame(GetShelf(shelf=1).SerializeToString())
        body = base64.b64encode(raw[:4]) + base64.b64encode(raw[4:])
        self.assertIn(b"=", body[:-2])
        reply = self.client(text=True).call(GET_SHELF, None, raw_body=body)
        self.assertEqual(reply.status, 0, reply.message)
        self.assertEqual(Shelf.FromString(reply.messages[0]).theme, "Fiction")

    def test_all_four_content_types(self):
        message = GetShelf(shelf=1).SerializeToString()
        for content_type, text in [("application/grpc-web", False),
                                   ("application/grpc-web+proto", False),
                                   ("application/grpc-web-text", True),
                                   ("application/grpc-web-text+proto", True)]:
            reply = self.client(text=text).call(GET_SHELF, message, content_type=content_type)
            self.assertEqual(reply.status, 0, (content_type, reply.message))
            self.assertEqual(Shelf.FromString(reply.messages[0]).theme, "Fiction")
        reply = self.client().call(GET_SHELF, message, content_type="application/grpc-web+json")
        self.assertEqual(reply.status, 12)
        self.assertIn("protobuf messages only", reply.message)

    def test_server_stream_arrives_as_it_is_produced(self):
        for text in (False, True):
            request = EchoRequest(payload=b"p", count=5, sleep_ms=300).SerializeToString()
            start = time.monotonic()
            reply = gw.Reply()
            arrivals = []
            for payload in self.client(text).stream(ECHO + "ServerStream", request, reply=reply):
                arrivals.append(time.monotonic() - start)
                self.assertEqual(EchoResponse.FromString(payload).index, len(arrivals) - 1)
            total = time.monotonic() - start
            self.assertEqual(reply.status, 0, reply.message)
            self.assertEqual(len(arrivals), 5)
            self.assertLess(arrivals[0], 1.0, arrivals)
            self.assertGreater(total, 1.2)
            self.assertGreater(arrivals[4] - arrivals[0], 0.9, arrivals)
            self.assertEqual(reply.trailers.get("x-echo-trailing"), "done")
            self.assertEqual(reply.headers.get("x-echo-initial"), "1")

    def test_stream_that_ends_while_its_last_write_waits(self):
        # The call's deadline passes while the gateway's write of a message to the client
        # waits (the client reads nothing for a while, its buffers are full): the end of
        # the call queues behind that write, and the client gets the messages in order,
        # then the status, once it reads.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(TIMEOUT)
        host, port = self.address.rsplit(":", 1)
        sock.connect((host, int(port)))
        self.addCleanup(sock.close)
        body = frame(EchoRequest(payload=b"s" * (60 << 10), count=200).SerializeToString())
        sock.sendall(b"POST " + ECHO.encode() + b"ServerStream HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/grpc-web+proto\r\ngrpc-timeout: 1S\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(2)
        response = http.client.HTTPResponse(sock)
        response.begin()
        self.assertEqual(response.status, 200)
        frames = harness.split_frames(response.read())
        self.assertIsNone(self.gateway.proc.poll(), "gatewayd ended")
        messages = [EchoResponse.FromString(p) for flags, p in frames if flags == 0]
        self.assertGreater(len(messages), 0)
        self.assertLess(len(messages), 200)
        self.assertEqual([m.index for m in messages], list(range(len(messages))))
        self.assertEqual(frames[-1][0], 0x80)
        self.assertIn(b"grpc-status:4", frames[-1][1].replace(b" ", b""))

    def test_stream_without_messages_ends_with_a_trailer_frame(self):
        reply = self.client().call(ECHO + "ServerStream", EchoRequest(count=0).SerializeToString())
        self.assertEqual((reply.status, reply.messages, reply.trailers_only), (0, [], False))

    def test_client_disconnect_cancels_the_server_stream(self):
        sock = socket.create_connection(self.address.rsplit(":", 1), timeout=TIMEOUT)
        body = frame(EchoRequest(payload=b"p", count=1000, sleep_ms=20,
                                 tag="web-disconnect").SerializeToString())
        sock.sendall(b"POST " + ECHO.encode() + b"ServerStream HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/grpc-web+proto\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertIn(b"200 OK", sock.recv(65536))
        sock.close()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            stats = self.echo_stats("web-disconnect")
            if stats.finished:
                break
            time.sleep(0.1)
        self.assertTrue(stats.finished and stats.cancelled, stats)

    # --- errors ---

    def test_backend_not_found_is_a_trailers_only_response(self):
        reply = self.client().call(GET_SHELF, GetShelf(shelf=999).SerializeToString())
        self.assertEqual(reply.http_status, 200)
        self.assertTrue(reply.trailers_only)
        self.assertEqual((reply.status, reply.message), (5, "shelf 999 not found"))
        self.assertEqual(reply.messages, [])
        reply = self.client(text=True).call(GET_SHELF, GetShelf(shelf=999).SerializeToString())
        self.assertEqual(reply.status, 5)

    def test_error_after_messages_is_in_the_trailer_frame(self):
        request = EchoRequest(payload=b"x", count=5, fail_code=9, fail_after=2,
                              fail_message="stop here").SerializeToString()
        for text in (False, True):
            reply = self.client(text).call(ECHO + "ServerStream", request)
            self.assertEqual(len(reply.messages), 2)
            self.assertFalse(reply.trailers_only)
            self.assertEqual((reply.status, reply.message), (9, "stop here"))
            self.assertEqual(reply.trailers["x-echo-trailing"], "done")
            self.assertIn("grpc-status-details-bin", reply.trailers)

    def test_status_message_is_percent_encoded(self):
        request = EchoRequest(payload=b"x", fail_code=3,
                              fail_message="bad\r\nx-evil: 1 at 100% \u00e9").SerializeToString()
        reply = self.client().call(ECHO + "Unary", request)
        self.assertEqual(reply.headers["grpc-message"], "bad%0D%0Ax-evil: 1 at 100%25 %C3%A9")
        self.assertNotIn("x-evil", reply.headers)
        self.assertEqual((reply.status, reply.message), (3, "bad\r\nx-evil: 1 at 100% \u00e9"))
        self.assertIn("grpc-status-details-bin", reply.headers)
        self.assertEqual(reply.headers["x-echo-trailing"], "done")

    def test_unknown_method_and_streaming_requests_are_unimplemented(self):
        for path in ["/bookstore.v1.Bookstore/Nope", "/no.such.Service/Method",
                     ECHO + "ClientStream", ECHO + "Bidi"]:
            reply = self.client().call(path, EchoRequest(payload=b"x").SerializeToString())
            self.assertEqual((reply.http_status, reply.status), (200, 12), path)
            self.assertTrue(reply.trailers_only)
        reply = self.client().call(ECHO + "Bidi", b"")
        self.assertIn("bidi streaming method /gateway.test.v1.Echo/Bidi", reply.message)

    def test_deadline_from_grpc_timeout(self):
        start = time.monotonic()
        reply = self.client().call(ECHO + "Unary",
                                   EchoRequest(payload=b"x", sleep_ms=5000).SerializeToString(),
                                   timeout=0.3)
        self.assertEqual(reply.status, 4, reply.message)
        self.assertLess(time.monotonic() - start, 2.5)
        reply = self.client().call(ECHO + "Unary", EchoRequest(payload=b"x").SerializeToString(),
                                   metadata={"grpc-timeout": "1500m"})
        deadline_ms = EchoResponse.FromString(reply.messages[0]).deadline_ms
        self.assertTrue(1000 < deadline_ms <= 1600, deadline_ms)
        # Without grpc-timeout the default deadline (3s) applies.
        reply = self.client().call(ECHO + "Unary", EchoRequest(payload=b"x").SerializeToString())
        deadline_ms = EchoResponse.FromString(reply.messages[0]).deadline_ms
        self.assertTrue(2000 < deadline_ms <= 3100, deadline_ms)
        reply = self.client().call(ECHO + "Unary", b"", metadata={"grpc-timeout": "soon"})
        self.assertEqual(reply.status, 3)
        self.assertIn("grpc-timeout", reply.message)

    def test_headers_become_metadata_except_reserved_and_browser_ones(self):
        binary = bytes(range(0, 256, 7))
        reply = self.client().call(
            ECHO + "Unary", EchoRequest(payload=b"x").SerializeToString(),
            metadata={"X-User": "alice", "authorization": "Bearer t", "x-trace-bin":
                      base64.b64encode(binary).decode(), "grpc-foo": "bar", "Cookie": "s=1",
                      "Origin": "https://elsewhere.example", "X-Echo-Color": "blue"})
        self.assertEqual(reply.status, 0, reply.message)
        md = list(EchoResponse.FromString(reply.messages[0]).metadata)
        self.assertIn("x-user=alice", md)
        self.assertIn("authorization=Bearer t", md)
        self.assertIn("x-trace-bin=" + base64.b64encode(binary).decode(), md)
        for line in md:
            self.assertFalse(line.startswith(("grpc-foo", "cookie", "origin", "x-grpc-web",
                                              "x-user-agent", "content-type=application/grpc-web")),
                             md)
        self.assertEqual(reply.headers["x-reflect-color"], "blue")
        self.assertEqual(reply.trailers["x-echo-trailing"], "done")
        reply = self.client().call(ECHO + "Unary", b"", metadata={"x-bad-bin": "%%%"})
        self.assertEqual(reply.status, 3)
        self.assertIn("x-bad-bin", reply.message)

    def test_control_bytes_in_headers_never_reach_the_backend(self):
        body = frame(EchoRequest(payload=b"x").SerializeToString())
        sock = socket.create_connection(self.address.rsplit(":", 1), timeout=TIMEOUT)
        sock.sendall(b"POST " + ECHO.encode() + b"Unary HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/grpc-web+proto\r\nX-User: a\x01b\r\n"
                     b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        self.assertTrue(b"grpc-status: 3" in data or b"400 Bad Request" in data, data)

    def test_malformed_bodies_are_refused(self):
        message = EchoRequest(payload=b"x").SerializeToString()
        cases = [
            (frame(message)[:-1], False, 3, "only"),                      # bad length
            (frame(message, flags=1), False, 13, "compressed"),          # compressed flag
            (frame(message) + b"\x00\x00", False, 3, "cut short"),       # trailing garbage
            (frame(message) + frame(message), False, 3, "exactly one"),  # two messages
            (b"", False, 3, "exactly one"),                              # no message
            (frame(message, flags=0x80), False, 3, "trailer frame"),     # trailer in a request
            (b"AAAA!AAA", True, 3, "not base64"),                        # bad base64
            (base64.b64encode(frame(message))[:-1], True, 3, "multiple of 4"),
        ]
        for body, text, code, words in cases:
            reply = self.client(text).call(ECHO + "Unary", None, raw_body=body)
            self.assertEqual((reply.http_status, reply.status), (200, code), (body, reply.message))
            self.assertIn(words, reply.message, body)
        # The gateway still serves.
        self.assertEqual(self.client().call(ECHO + "Unary", message).status, 0)

    def test_body_over_the_limit(self):
        big = EchoRequest(payload=b"x" * (MAX_BODY + 10)).SerializeToString()
        reply = self.client().call(ECHO + "Unary", big)
        self.assertEqual((reply.http_status, reply.status), (200, 8), reply.message)
        self.assertIn("larger than", reply.message)
        # Just under the limit passes.
        ok = EchoRequest(payload=b"x" * (MAX_BODY - 100)).SerializeToString()
        reply = self.client().call(ECHO + "Unary", ok)
        self.assertEqual(reply.status, 0, reply.message)
        self.assertEqual(len(EchoResponse.FromString(reply.messages[0]).payload), MAX_BODY - 100)

    def test_rest_calls_on_the_same_path_are_still_transcoded(self):
        conn = http.client.HTTPConnection(*self.address.rsplit(":", 1), timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("POST", GET_SHELF, body=b'{"shelf": "2"}',
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.read()), (200, b'{"id":"2","theme":"History"}'))

    # --- CORS ---

    def test_cors_preflight_and_exposed_status_headers(self):
        conn = http.client.HTTPConnection(*self.address.rsplit(":", 1), timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("OPTIONS", GET_SHELF, headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers":
                "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization"})
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 204)
        allowed = {h.strip() for h in resp.getheader("access-control-allow-headers").split(",")}
        self.assertTrue({"content-type", "x-grpc-web", "x-user-agent", "grpc-timeout",
                         "authorization"} <= allowed, allowed)
        self.assertEqual(resp.getheader("access-control-allow-origin"), "https://app.example.com")
        # A REST path does not get the gRPC-Web headers.
        conn.request("OPTIONS", "/v1/shelves", headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-grpc-web"})
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 403)
        for shelf in (1, 999):  # a normal response and a trailers-only one
            reply = self.client().call(GET_SHELF, GetShelf(shelf=shelf).SerializeToString(),
                                       metadata={"Origin": "https://app.example.com"})
            self.assertEqual(reply.headers["access-control-allow-origin"],
                             "https://app.example.com")
            exposed = {h.strip() for h in reply.headers["access-control-expose-headers"].split(",")}
            self.assertTrue({"grpc-status", "grpc-message", "x-echo-initial"} <= exposed, exposed)
        reply = self.client().call(ECHO + "ServerStream", EchoRequest(count=2).SerializeToString(),
                                   metadata={"Origin": "https://app.example.com"})
        self.assertIn("grpc-status", reply.headers["access-control-expose-headers"])
        reply = self.client().call(GET_SHELF, GetShelf(shelf=1).SerializeToString(),
                                   metadata={"Origin": "https://evil.example.net"})
        self.assertEqual(reply.status, 0)
        self.assertNotIn("access-control-allow-origin", reply.headers)

    # --- HTTP/2 ---

    def curl(self, *args):
        result = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), *args],
                                capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def curl_grpc_web(self, path, body, text=False, extra=()):
        """A call over h2c; returns (headers dict, frames)."""
        body_file = os.path.join(self.ws.dir, "body.bin")
        with open(body_file, "wb") as f:
            f.write(body)
        kind = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
        out = self.curl("--http2-prior-knowledge", "-i", "-H", f"Content-Type: {kind}",
                        "-H", "X-Grpc-Web: 1", "--data-binary", f"@{body_file}", *extra,
                        f"http://{self.address}{path}")
        head, _, payload = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.assertTrue(lines[0].startswith("HTTP/2 200"), head)
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:])}
        reader = gw.FrameReader(text)
        frames = reader.feed(payload)
        reader.finish()
        return headers, frames

    def test_h2c_unary_stream_and_trailers_only(self):
        headers, frames = self.curl_grpc_web(GET_SHELF, frame(GetShelf(shelf=1).SerializeToString()))
        self.assertEqual(headers["content-type"], "application/grpc-web+proto")
        self.assertEqual([f[0] for f in frames], [0, 0x80])
        self.assertEqual(Shelf.FromString(frames[0][1]).theme, "Fiction")
        self.assertEqual(gw.parse_trailers(frames[1][1])["grpc-status"], "0")

        body = base64.b64encode(frame(EchoRequest(payload=b"s", count=3).SerializeToString()))
        headers, frames = self.curl_grpc_web(ECHO + "ServerStream", body, text=True)
        self.assertEqual(headers["content-type"], "application/grpc-web-text+proto")
        self.assertEqual([EchoResponse.FromString(p).index for f, p in frames if f == 0], [0, 1, 2])
        self.assertEqual(gw.parse_trailers(frames[-1][1])["x-echo-trailing"], "done")

        headers, frames = self.curl_grpc_web(GET_SHELF, frame(GetShelf(shelf=999).SerializeToString()))
        self.assertEqual((headers["grpc-status"], frames), ("5", []))

        headers, frames = self.curl_grpc_web(ECHO + "Unary", b"x" * (MAX_BODY + 1))
        self.assertEqual(headers["grpc-status"], "8")

    def test_h2c_server_stream_arrives_as_produced(self):
        body_file = os.path.join(self.ws.dir, "stream.bin")
        with open(body_file, "wb") as f:
            f.write(frame(EchoRequest(payload=b"p", count=4, sleep_ms=400).SerializeToString()))
        proc = subprocess.Popen(
            ["curl", "-sS", "-N", "--max-time", str(TIMEOUT), "--http2-prior-knowledge",
             "-H", "Content-Type: application/grpc-web+proto", "--data-binary", f"@{body_file}",
             f"http://{self.address}{ECHO}ServerStream"], stdout=subprocess.PIPE)
        try:
            start = time.monotonic()
            reader = gw.FrameReader()
            frames = []
            while not frames:
                data = os.read(proc.stdout.fileno(), 65536)
                self.assertTrue(data)
                frames += reader.feed(data)
            first = time.monotonic() - start
            rest = proc.stdout.read()
            total = time.monotonic() - start
            frames += reader.feed(rest)
        finally:
            proc.kill()
            proc.wait(5)
            proc.stdout.close()
        self.assertLess(first, 1.2)
        self.assertGreater(total, 1.4)
        self.assertEqual([f for f, _ in frames], [0, 0, 0, 0, 0x80])

    def test_h2load_many_grpc_web_calls(self):
        body_file = os.path.join(self.ws.dir, "h2load.bin")
        with open(body_file, "wb") as f:
            f.write(frame(GetShelf(shelf=1).SerializeToString()))
        result = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "8", "-d", body_file,
                                 "-H", "content-type: application/grpc-web+proto",
                                 f"http://{self.address}{GET_SHELF}"],
                                capture_output=True, text=True, timeout=60)
        self.assertIn("200 succeeded", result.stdout, result.stdout)
        self.assertIn("status codes: 200 2xx", result.stdout, result.stdout)

    # --- the client's command line ---

    def test_command_line_client(self):
        result = subprocess.run(
            ["/usr/bin/python3", CLIENT, f"--address={self.address}",
             f"--descriptor_set={harness.ECHO_SET}", f"--method={ECHO}ServerStream",
             '--json={"payload": "aGk=", "count": 2}', "--text"],
            capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(),
                         ['{"payload": "aGk="}', '{"payload": "aGk=", "index": 1}'])
        self.assertIn("status: 0", result.stderr)
        result = subprocess.run(
            ["/usr/bin/python3", CLIENT, f"--address={self.address}",
             f"--descriptor_set={harness.BOOKSTORE_SET}", f"--method={GET_SHELF}",
             "--text_format=shelf: 404"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 5, result.stderr)
        self.assertIn("status: 5 shelf 404 not found", result.stderr)


class GrpcWebInterceptorTest(unittest.TestCase):
    """The interceptor chain runs for gRPC-Web calls: auth, quotas, deadline rules."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key = jwt_util.RsaKey("k1")
        jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        extra = f"""
auth:
  jwt_providers:
    - {{name: idp, issuer: "https://idp.test", audiences: [bookstore], jwks_file: "{jwks_file}"}}
  rules:
    - {{selectors: ["bookstore.v1.Bookstore.*"], providers: [idp]}}
    - {{selectors: ["gateway.test.v1.Echo.*"], allow_unauthenticated: true}}
quotas:
  rules:
    - {{name: web-shelf-reads, selectors: ["bookstore.v1.Bookstore.GetShelf"], requests: 2, per: 1h}}
deadlines:
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], max_timeout: 300ms}}
"""
        cls.gateway = cls.ws.gatewayd(config(cls.bookstore.address, cls.echo.address, CORS, extra))
        cls.address = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def call(self, path, message, metadata=None):
        client = gw.Client(self.address, timeout=TIMEOUT)
        try:
            return client.call(path, message, metadata)
        finally:
            client.close()

    def test_missing_or_expired_token_is_refused_in_a_trailers_only_response(self):
        request = GetShelf(shelf=1).SerializeToString()
        reply = self.call(GET_SHELF, request, {"Origin": "https://app.example.com"})
        self.assertEqual((reply.http_status, reply.status), (200, 16))
        self.assertTrue(reply.trailers_only)
        self.assertIn("missing credentials", reply.message)
        self.assertIn('Bearer realm="gateway"', reply.headers["www-authenticate"])
        self.assertEqual(reply.headers["access-control-allow-origin"], "https://app.example.com")
        expired = self.key.token(jwt_util.claims(sub="x", ttl=-600))
        reply = self.call(GET_SHELF, request, {"authorization": f"Bearer {expired}"})
        self.assertEqual(reply.status, 16)
        self.assertIn("token expired", reply.message)

    def test_valid_token_and_quota(self):
        token = self.key.token(jwt_util.claims(sub="web-user"))
        request = GetShelf(shelf=1).SerializeToString()
        statuses = [self.call(GET_SHELF, request, {"authorization": f"Bearer {token}"}).status
                    for _ in range(3)]
        self.assertEqual(statuses, [0, 0, 8])
        reply = self.call(GET_SHELF, request, {"authorization": f"Bearer {token}"})
        self.assertIn('quota "web-shelf-reads" exceeded', reply.message)
        self.assertTrue(reply.headers.get("retry-after"))

    def test_deadline_rule_caps_the_call(self):
        start = time.monotonic()
        reply = self.call(ECHO + "Unary", EchoRequest(payload=b"x", sleep_ms=3000).SerializeToString())
        self.assertEqual(reply.status, 4, reply.message)
        self.assertLess(time.monotonic() - start, 2.0)
        reply = self.call(ECHO + "Unary", EchoRequest(payload=b"x").SerializeToString())
        self.assertTrue(0 < EchoResponse.FromString(reply.messages[0]).deadline_ms <= 400)


class GrpcWebTlsTest(unittest.TestCase):
    """gRPC-Web over TLS: HTTP/1.1 (the project's client) and h2 (curl, ALPN)."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.cert, cls.key = harness.self_signed_certificate(cls.ws.dir)
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        tls = f"  tls: {{cert_file: {cls.cert}, key_file: {cls.key}}}\n"
        cls.gateway = cls.ws.gatewayd(config(cls.bookstore.address, cls.echo.address, tls))
        cls.address = harness.http_address(cls.gateway)
        cls.port = int(cls.address.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_http11_over_tls(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        client = gw.Client(f"127.0.0.1:{self.port}", text=True, tls_context=ctx, timeout=TIMEOUT)
        try:
            for _ in range(2):  # keep-alive
                reply = client.call(ECHO + "ServerStream",
                                    EchoRequest(payload=b"t", count=3).SerializeToString())
                self.assertEqual((reply.status, len(reply.messages)), (0, 3), reply.message)
        finally:
            client.close()

    def test_h2_over_tls(self):
        body_file = os.path.join(self.ws.dir, "tls.bin")
        with open(body_file, "wb") as f:
            f.write(frame(GetShelf(shelf=2).SerializeToString()))
        result = subprocess.run(
            ["curl", "-sS", "--max-time", str(TIMEOUT), "--http2", "--cacert", self.cert,
             "-w", "%{http_version}", "-o", os.path.join(self.ws.dir, "tls.out"),
             "-H", "Content-Type: application/grpc-web+proto", "--data-binary", f"@{body_file}",
             "--resolve", f"localhost:{self.port}:127.0.0.1",
             f"https://localhost:{self.port}{GET_SHELF}"],
            capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"2")
        with open(os.path.join(self.ws.dir, "tls.out"), "rb") as f:
            frames = gw.FrameReader().feed(f.read())
        self.assertEqual(Shelf.FromString(frames[0][1]).theme, "History")
        self.assertEqual(gw.parse_trailers(frames[1][1])["grpc-status"], "0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
