"""Integration tests of the HTTP front end's request side while a call is in flight:

- client-streaming REST calls send each message to the backend as soon as it is complete
  (HTTP/1.1 with Content-Length and chunked, HTTP/2), checked deterministically: the client
  sends part of the stream, waits until the echo backend reports (Echo.Stats `received`)
  that it has read the first messages, and only then sends the rest;
- HTTP/1.1 calls notice a client that disconnects and cancel the backend call (the echo
  backend records the cancellation under the call's tag).

Real processes on loopback (gatewayd, the echo backend) and raw sockets; every wait is bounded.
"""

import json
import os
import socket
import subprocess
import time
import unittest

import harness

TIMEOUT = 20
ECHO = "/gateway.test.v1.Echo/"
MAX_BODY = 4 << 20


def config(echo):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{echo}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  limits: {{max_body_bytes: {MAX_BODY}, idle_timeout: 5s}}
  transcoding: {{expose_grpc_paths: true}}
"""


def read_response(sock):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before the response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head, rest[:length]
    while not rest.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    body = b""
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        body += rest[:n]
        rest = rest[n + 2:]
    return head, body


def h2_frame(kind, flags, stream_id, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags])
            + stream_id.to_bytes(4, "big") + payload)


def hpack_literals(headers):
    """A header block of literals without indexing (new names, no Huffman)."""
    out = b""
    for name, value in headers:
        out += b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    return out


class StreamingRequestTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.echo.address))
        cls.address = harness.http_address(cls.gateway)
        host, port = cls.address.rsplit(":", 1)
        cls.host, cls.port = host, int(port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        self.addCleanup(sock.close)
        return sock

    def stats(self, tag):
        sock = self.connect()
        body = json.dumps({"tag": tag}).encode()
        sock.sendall(b"POST " + ECHO.encode() + b"Stats HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        head, raw = read_response(sock)
        self.assertIn(b"200 OK", head, raw)
        return json.loads(raw)

    def wait_for(self, tag, predicate, limit=10.0):
        """Polls Echo.Stats(tag) until `predicate(stats)`; returns the last stats."""
        deadline = time.monotonic() + limit
        while True:
            stats = self.stats(tag)
            if predicate(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)

    # --- client streams reach the backend message by message ---

    def check_incremental(self, tag, send_head, send_part, send_rest, read):
        send_head()
        send_part()
        stats = self.wait_for(tag, lambda s: s.get("received", 0) >= 2)
        # The backend read the first two messages while the rest of the body was unsent.
        self.assertEqual(stats.get("received"), 2, stats)
        self.assertFalse(stats.get("finished", False), stats)
        send_rest()
        status, body = read()
        self.assertEqual(status, 200, body)
        self.assertEqual(body["index"], 3, body)
        self.assertEqual(self.stats(tag).get("received"), 3)

    def test_http11_chunked_json_array(self):
        sock = self.connect()
        part = b'[{"payload": "YQ==", "tag": "inc-chunked"}, {"payload": "Yg=="}'
        rest = b', {"payload": "Yw=="}]'

        def chunk(data):
            return b"%x\r\n" % len(data) + data + b"\r\n"

        def read():
            head, body = read_response(sock)
            return int(head.split(b" ")[1]), json.loads(body)

        self.check_incremental(
            "inc-chunked",
            lambda: sock.sendall(b"POST " + ECHO.encode() + b"ClientStream HTTP/1.1\r\n"
                                 b"Host: x\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n"),
            lambda: sock.sendall(chunk(part)),
            lambda: sock.sendall(chunk(rest) + b"0\r\n\r\n"),
            read)
        # The connection is reusable afterwards.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200 OK", read_response(sock)[0])

    def test_http11_content_length_ndjson(self):
        sock = self.connect()
        part = b'{"payload": "YQ==", "tag": "inc-ndjson"}\n{"payload": "Yg=="}\n'
        rest = b'{"payload": "Yw=="}\n'

        def read():
            head, body = read_response(sock)
            return int(head.split(b" ")[1]), json.loads(body)

        self.check_incremental(
            "inc-ndjson",
            lambda: sock.sendall(b"POST " + ECHO.encode() + b"ClientStream HTTP/1.1\r\n"
                                 b"Host: x\r\nContent-Type: application/x-ndjson\r\n"
                                 b"Content-Length: " + str(len(part) + len(rest)).encode()
                                 + b"\r\n\r\n"),
            lambda: sock.sendall(part),
            lambda: sock.sendall(rest),
            read)

    def test_http2_json_array(self):
        sock = self.connect()
        part = b'[{"payload": "YQ==", "tag": "inc-h2"}, {"payload": "Yg=="}'
        rest = b', {"payload": "Yw=="}]'
        headers = hpack_literals([(b":method", b"POST"), (b":scheme", b"http"),
                                  (b":path", ECHO.encode() + b"ClientStream"),
                                  (b":authority", b"x"),
                                  (b"content-type", b"application/json")])

        def read():
            sock.settimeout(TIMEOUT)
            data, status, body = b"", None, b""
            while True:
                while len(data) >= 9:
                    length = int.from_bytes(data[:3], "big")
                    if len(data) < 9 + length:
                        break
                    kind, flags = data[3], data[4]
                    stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
                    payload = data[9:9 + length]
                    data = data[9 + length:]
                    if stream == 1 and kind == 1:  # HEADERS: ":status" is static index 8..14
                        status = {0x88: 200, 0x8c: 400, 0x8d: 404}.get(payload[0], payload[0])
                    if stream == 1 and kind == 0:
                        body += payload
                    if stream == 1 and kind in (0, 1) and flags & 1:
                        return status, json.loads(body)
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "connection closed")
                data += chunk

        self.check_incremental(
            "inc-h2",
            lambda: sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
                                 + h2_frame(1, 4, 1, headers)),
            lambda: sock.sendall(h2_frame(0, 0, 1, part)),
            lambda: sock.sendall(h2_frame(0, 1, 1, rest)),
            read)

    def test_broken_message_mid_stream_cancels_the_backend_call(self):
        sock = self.connect()
        sock.sendall(b"POST " + ECHO.encode() + b"ClientStream HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        part = b'[{"payload": "YQ==", "tag": "inc-broken"}, '
        sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        self.wait_for("inc-broken", lambda s: s.get("received", 0) >= 1)
        bad = b'{"nope": 1}]'
        sock.sendall(b"%x\r\n" % len(bad) + bad + b"\r\n0\r\n\r\n")
        head, body = read_response(sock)
        self.assertIn(b"400 Bad Request", head, body)
        self.assertIn("stream message 1", json.loads(body)["message"])
        stats = self.wait_for("inc-broken", lambda s: s.get("finished"))
        self.assertTrue(stats.get("cancelled"), stats)

    def test_streamed_body_over_the_limit_is_refused(self):
        sock = self.connect()
        sock.sendall(b"POST " + ECHO.encode() + b"ClientStream HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        line = json.dumps({"payload": "eHh4" * 2000, "tag": "inc-limit"}).encode() + b"\n"
        sent = 0
        try:
            while sent <= MAX_BODY + len(line):
                sock.sendall(b"%x\r\n" % len(line) + line + b"\r\n")
                sent += len(line)
        except (BrokenPipeError, ConnectionResetError):
            pass
        head, body = read_response(sock)
        self.assertIn(b"413", head, body)
        self.assertEqual(json.loads(body)["code"], 8)
        self.assertIn(b"Connection: close", head)

    def test_large_streams_over_http11_and_h2c(self):
        # Several times the HTTP/2 stream window (1 MiB) and the read buffers: the windows
        # and reads must keep opening as the backend takes the messages.
        line = json.dumps({"payload": "eHh4" * 4000}).encode() + b"\n"  # ~16 KB
        count = (3 << 20) // len(line)
        body_file = os.path.join(self.ws.dir, "large.ndjson")
        with open(body_file, "wb") as f:
            f.write(line * count)
        for flags in (["--http1.1", "-H", "Transfer-Encoding: chunked"], ["--http1.1"],
                      ["--http2-prior-knowledge"]):
            result = subprocess.run(
                ["curl", "-sS", "--max-time", str(TIMEOUT), *flags,
                 "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body_file}",
                 f"http://{self.address}{ECHO}ClientStream"],
                capture_output=True, timeout=TIMEOUT + 5)
            self.assertEqual(result.returncode, 0, (flags, result.stderr))
            self.assertEqual(json.loads(result.stdout)["index"], count, flags)

    def test_streamed_body_over_the_limit_over_h2c(self):
        line = json.dumps({"payload": "eHh4" * 4000}).encode() + b"\n"
        body_file = os.path.join(self.ws.dir, "over.ndjson")
        with open(body_file, "wb") as f:
            f.write(line * ((MAX_BODY + (1 << 20)) // len(line)))
        result = subprocess.run(
            ["curl", "-sS", "-i", "--max-time", str(TIMEOUT), "--http2-prior-knowledge",
             "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body_file}",
             f"http://{self.address}{ECHO}ClientStream"],
            capture_output=True, timeout=TIMEOUT + 5)
        self.assertTrue(result.stdout.startswith(b"HTTP/2 413"), (result.stdout, result.stderr))
        self.assertEqual(json.loads(result.stdout.partition(b"\r\n\r\n")[2])["code"], 8)

    # --- a client that goes away cancels its backend call ---

    def check_disconnect_cancels(self, tag, request):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock.sendall(request)
        # The backend has the call (it records the tag when it finishes; wait a moment so
        # that the call is in flight before the client goes).
        time.sleep(0.5)
        start = time.monotonic()
        sock.close()
        stats = self.wait_for(tag, lambda s: s.get("finished"))
        self.assertEqual((stats.get("cancelled"), stats.get("finished")), (True, True), stats)
        # Long before the backend's 5 s sleep would have ended.
        self.assertLess(time.monotonic() - start, 3.0)

    def test_http11_unary_client_disconnect_cancels_the_backend_call(self):
        body = json.dumps({"payload": "eA==", "sleep_ms": 5000, "tag": "unary-gone"}).encode()
        self.check_disconnect_cancels(
            "unary-gone", b"POST " + ECHO.encode() + b"Unary HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)

    def test_grpc_web_unary_client_disconnect_cancels_the_backend_call(self):
        # EchoRequest{payload: "x", sleep_ms: 5000, tag: "web-unary-gone"}, framed.
        message = (b"\x0a\x01x" + b"\x10\x88\x27" + b"\x3a\x0eweb-unary-gone")
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        self.check_disconnect_cancels(
            "web-unary-gone", b"POST " + ECHO.encode() + b"Unary HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/grpc-web+proto\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)

    def test_pipelined_request_during_a_call_is_kept(self):
        body = json.dumps({"payload": "eA==", "sleep_ms": 300}).encode()
        sock = self.connect()
        sock.sendall(b"POST " + ECHO.encode() + b"Unary HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.1)  # the second request arrives while the first call is in flight
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"\r\n\r\nok\n"):
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data)
        self.assertLess(data.index(b'"payload":"eA=="'), data.index(b"text/plain"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
