"""WebSocket calls of streaming REST routes over HTTP/1.1 and, RFC 8441, over HTTP/2
(gateway/http/websocket_call.h, http2_websocket_stream.h).

Real processes on loopback (gatewayd, the echo backend); a small raw-socket WebSocket
client (so that hostile frames can be sent) and, for interoperability, the `websockets`
library. Checked: each text frame is one request message and each response message one
text frame; the query fields fill every message; the status as a last JSON error frame plus
a close frame (1000, or 4000 + the gRPC code, the message as the reason); server, client and
bidi streams; refusals before the upgrade (unary methods, unknown paths, origins the CORS
policy does not allow, the interceptors' auth and quota, counted once per call and shared
with REST calls of the same method); hostile frames; back-pressure both ways. Over HTTP/2
(python3-h2, h2c and TLS with ALPN h2): the ENABLE_CONNECT_PROTOCOL setting, the same calls
over an extended CONNECT, refused CONNECTs (plain, other protocols, bad version), hostile
frames and streams. Every wait is bounded.
"""

import asyncio
import base64
import json
import os
import socket
import struct
import time
import unittest

import harness
import jwt_util

TIMEOUT = 20
MAX_BODY = 256 << 10
ALLOWED_ORIGIN = "http://allowed.example"


def config(echo, jwks_file):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{echo}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
runtime: {{shutdown_grace: 2s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  limits: {{max_body_bytes: {MAX_BODY}, idle_timeout: 10s}}
  transcoding: {{expose_grpc_paths: true}}
  cors:
    allowed_origins: ["{ALLOWED_ORIGIN}"]
auth:
  jwt_providers:
    - {{name: idp, issuer: "https://idp.test", audiences: [bookstore], jwks_file: "{jwks_file}"}}
  rules:
    - {{selectors: ["gateway.test.v1.Echo.*"], allow_unauthenticated: true}}
    - {{selectors: ["gateway.test.v1.Echo.ServerStream"], providers: [idp]}}
"""


def b64(text):
    return base64.b64encode(text.encode()).decode()


class WsError(Exception):
    pass


class RawWebSocket:
    """A minimal RFC 6455 client on a plain socket: frames are built by hand."""

    def __init__(self, address, path, headers=None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {address}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsError(f"closed before the response head: {self.buf!r}")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *fields = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for f in fields:
            k, _, v = f.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.body = b""
        if self.status != 101:
            length = int(self.headers.get("content-length", "0"))
            while len(self.buf) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            self.body = self.buf[:length]

    def close_socket(self):
        self.sock.close()

    def send_frame(self, opcode, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = bytes([b0, mbit | n])
        elif n < 65536:
            head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
        else:
            head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload)) if n < 4096 else \
                _mask_fast(payload, key)
            head += key
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(1, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsError("connection closed mid-frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        """(opcode, payload) of the next frame from the gateway (never masked)."""
        b0, b1 = self._recv_exact(2)
        if b1 & 0x80:
            raise WsError("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._recv_exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._recv_exact(8))[0]
        return b0 & 0x0F, self._recv_exact(n)

    def recv_all(self):
        """Every message until the close frame: (texts, close code, close reason)."""
        texts = []
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 1:
                texts.append(payload.decode())
            elif opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self.send_frame(8, payload[:2])
                except OSError:
                    pass
                return texts, code, payload[2:].decode()
            elif opcode == 9:
                self.send_frame(10, payload)


def _mask_fast(payload, key):
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


class WebSocketTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key = jwt_util.RsaKey("k1")
        jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.echo.address, jwks_file))
        cls.address = harness.http_address(cls.gateway)
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.bookstore_gateway = cls.ws.gatewayd(f"""
http_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{cls.bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
""", name="bookstore_gatewayd")
        cls.bookstore_address = harness.http_address(cls.bookstore_gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def open(self, method, query="", headers=None):
        sock = RawWebSocket(self.address, f"/gateway.test.v1.Echo/{method}{query}", headers)
        self.addCleanup(sock.close_socket)
        return sock

    def rest(self, method, path, body, headers=None):
        import http.client
        host, port = self.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def stats(self, tag):
        status, data = self.rest("POST", "/gateway.test.v1.Echo/Stats",
                                 json.dumps({"tag": tag}),
                                 {"Content-Type": "application/json"})
        self.assertEqual(status, 200, data)
        return json.loads(data)

    # --- Streams ---

    def test_bidi_frame_per_message_and_normal_close(self):
        c = self.open("Bidi")
        self.assertEqual(c.status, 101, c.body)
        self.assertTrue(c.headers.get("x-request-id"))
        for i, word in enumerate(["one", "two", "three"]):
            c.send_json({"payload": b64(word)})
            op, payload = c.recv_frame()  # truly bidi: each answer before the next request
            self.assertEqual(op, 1)
            msg = json.loads(payload)
            self.assertEqual(base64.b64decode(msg["payload"]).decode(), word)
            self.assertEqual(msg.get("index", 0), i)
        c.send_text("")  # the end of the request stream
        texts, code, reason = c.recv_all()
        self.assertEqual(texts, [])
        self.assertEqual(code, 1000)
        self.assertEqual(reason, "")

    def test_backend_status_is_an_error_frame_and_the_close(self):
        c = self.open("Bidi")
        self.assertEqual(c.status, 101, c.body)
        c.send_json({"payload": b64("a")})
        c.send_json({"payload": b64("b"), "fail_code": 9, "fail_message": "stopped here",
                     "fail_after": 1})
        texts, code, reason = c.recv_all()
        self.assertEqual(len(texts), 2, texts)
        self.assertEqual(base64.b64decode(json.loads(texts[0])["payload"]), b"a")
        error = json.loads(texts[1])
        self.assertEqual(error["code"], 9)
        self.assertEqual(error["message"], "stopped here")
        self.assertEqual(code, 4009)
        self.assertEqual(reason, "stopped here")

    def test_long_status_message_is_cut_to_fit_the_close_frame(self):
        c = self.open("Bidi")
        message = "\u00e9" * 100  # 200 bytes of two-byte characters
        c.send_json({"payload": b64("a"), "fail_code": 14, "fail_message": message})
        texts, code, reason = c.recv_all()
        self.assertEqual(code, 4014)
        self.assertEqual(reason, "\u00e9" * 61)  # 122 bytes: the 62nd does not fit
        self.assertEqual(json.loads(texts[-1])["message"], message)

    def test_path_fields_fill_every_message(self):
        host, port = self.bookstore_address.rsplit(":", 1)
        import http.client
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        conn.request("POST", "/v1/shelves", body=json.dumps({"theme": "websocket"}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        shelf = json.loads(resp.read())["id"]
        conn.close()
        c = RawWebSocket(self.bookstore_address, f"/v1/shelves/{shelf}/books:batchCreate")
        self.addCleanup(c.close_socket)
        self.assertEqual(c.status, 101, c.body)
        for title in ["A", "B", "C"]:
            c.send_json({"book": {"title": title}})
        c.send_text("")
        texts, code, _ = c.recv_all()
        self.assertEqual(code, 1000, texts)
        self.assertEqual(int(json.loads(texts[0])["createdCount"]), 3)
        # The books are on the path's shelf, and a server stream over WebSocket (a GET
        # route) lists them: its one message is filled from the path too.
        s = RawWebSocket(self.bookstore_address, f"/v1/shelves/{shelf}/books:stream")
        self.addCleanup(s.close_socket)
        self.assertEqual(s.status, 101, s.body)
        s.send_json({})
        texts, code, _ = s.recv_all()
        self.assertEqual(code, 1000, texts)
        self.assertEqual(sorted(json.loads(t)["title"] for t in texts), ["A", "B", "C"])

    def test_server_stream_takes_one_message(self):
        token = self.key.token(jwt_util.claims())
        c = self.open("ServerStream", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(c.status, 101, c.body)
        c.send_json({"payload": b64("s"), "count": 4})
        texts, code, _ = c.recv_all()
        self.assertEqual([json.loads(t).get("index", 0) for t in texts], [0, 1, 2, 3])
        self.assertEqual(code, 1000)

    def test_second_message_to_server_stream_is_invalid_argument(self):
        token = self.key.token(jwt_util.claims())
        c = self.open("ServerStream", headers={"Authorization": f"Bearer {token}"})
        c.send_json({"payload": b64("s"), "count": 1, "sleep_ms": 300})
        c.send_json({"payload": b64("again")})
        texts, code, reason = c.recv_all()
        self.assertEqual(code, 4003, (texts, reason))
        self.assertIn("takes one request message", reason)
        self.assertEqual(json.loads(texts[-1])["code"], 3)

    def test_client_stream_answers_once_after_half_close(self):
        c = self.open("ClientStream")
        self.assertEqual(c.status, 101, c.body)
        for word in ["x", "yy", "zzz"]:
            c.send_json({"payload": b64(word), "tag": "ws-client-stream"})
        c.send_text("")
        texts, code, _ = c.recv_all()
        self.assertEqual(code, 1000)
        self.assertEqual(len(texts), 1, texts)
        self.assertEqual(json.loads(texts[0])["index"], 3)
        self.assertEqual(self.stats("ws-client-stream")["received"], 3)

    def test_websockets_library_interoperates(self):
        import websockets

        async def run():
            uri = f"ws://{self.address}/gateway.test.v1.Echo/Bidi"
            async with websockets.connect(uri, open_timeout=TIMEOUT) as conn:
                await conn.send(json.dumps({"payload": b64("lib")}))
                reply = json.loads(await asyncio.wait_for(conn.recv(), TIMEOUT))
                await conn.send("")
                await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
                return reply, conn.close_code

        reply, code = asyncio.run(run())
        self.assertEqual(base64.b64decode(reply["payload"]), b"lib")
        self.assertEqual(code, 1000)

    def test_websocket_over_tls(self):
        import ssl
        import websockets

        cert, key = harness.self_signed_certificate(self.ws.dir)
        gateway = self.ws.gatewayd(f"""
http_listener:
  address: "127.0.0.1:0"
  transcoding: {{expose_grpc_paths: true}}
  tls: {{cert_file: "{cert}", key_file: "{key}"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{self.echo.address}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
""", name="tls_gatewayd")
        port = harness.http_address(gateway).rsplit(":", 1)[1]
        context = ssl.create_default_context(cafile=cert)

        async def run():
            uri = f"wss://localhost:{port}/gateway.test.v1.Echo/Bidi"
            async with websockets.connect(uri, ssl=context, open_timeout=TIMEOUT) as conn:
                replies = []
                for word in ["t", "l", "s"]:
                    await conn.send(json.dumps({"payload": b64(word)}))
                    reply = json.loads(await asyncio.wait_for(conn.recv(), TIMEOUT))
                    replies.append(base64.b64decode(reply["payload"]).decode())
                await conn.send("")
                await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
                return replies, conn.close_code

        replies, code = asyncio.run(run())
        self.assertEqual(replies, ["t", "l", "s"])
        self.assertEqual(code, 1000)

    # --- Refused before the upgrade ---

    def test_unary_method_is_refused(self):
        c = self.open("Stats")
        self.assertEqual(c.status, 400)
        self.assertIn("cannot be called over WebSocket", json.loads(c.body)["message"])

    def test_unknown_path_is_not_found(self):
        c = RawWebSocket(self.address, "/no/such/path")
        self.addCleanup(c.close_socket)
        self.assertEqual(c.status, 404, c.body)

    def test_bidi_without_upgrade_stays_501(self):
        # An NDJSON body: a REST client stream (application/json on a gRPC path is Connect's).
        status, data = self.rest("POST", "/gateway.test.v1.Echo/Bidi", '{"payload":"eA=="}\n',
                                 {"Content-Type": "application/x-ndjson"})
        self.assertEqual(status, 501, data)

    def test_origins_follow_the_cors_policy(self):
        c = self.open("Bidi", headers={"Origin": "http://evil.example"})
        self.assertEqual(c.status, 403)
        self.assertIn('origin "http://evil.example" is not allowed',
                      json.loads(c.body)["message"])
        ok = self.open("Bidi", headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(ok.status, 101, ok.body)

    def test_bad_handshake_is_refused(self):
        host, port = self.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
            s.sendall(b"GET /gateway.test.v1.Echo/Bidi HTTP/1.1\r\nHost: x\r\n"
                      b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 8\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 426"), data)
        self.assertIn(b"sec-websocket-version: 13", data.lower())

    def test_auth_runs_on_the_upgrade_request(self):
        c = self.open("ServerStream")
        self.assertEqual(c.status, 401, c.body)
        self.assertIn("Bearer", c.headers.get("www-authenticate", ""))
        self.assertEqual(json.loads(c.body)["code"], 16)
        bad = self.open("ServerStream", headers={"Authorization": "Bearer not-a-jwt"})
        self.assertEqual(bad.status, 401)
        # The same rule refuses the method over plain REST (a text/plain body: application/json
        # on a gRPC path is Connect's).
        status, data = self.rest("POST", "/gateway.test.v1.Echo/ServerStream",
                                 '{"payload":"eA=="}', {"Content-Type": "text/plain"})
        self.assertEqual(status, 401, data)
        self.assertEqual(json.loads(data)["code"], 16)

    def test_quota_counts_each_websocket_call_once_with_rest(self):
        # 3 calls per hour for ClientStream, shared by REST and WebSocket; each WebSocket
        # call sends several messages and counts once.
        gateway = self.ws.gatewayd(f"""
http_listener:
  address: "127.0.0.1:0"
  transcoding: {{expose_grpc_paths: true}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends: [{{name: echo, target: "ipv4:{self.echo.address}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
quotas:
  rules:
    - {{name: client-streams, selectors: ["gateway.test.v1.Echo.ClientStream"], requests: 3, per: 1h}}
""", name="quota_gatewayd")
        address = harness.http_address(gateway)
        saved, self.address = self.address, address
        self.addCleanup(setattr, self, "address", saved)
        for _ in range(2):
            c = self.open("ClientStream")
            self.assertEqual(c.status, 101, c.body)
            for _ in range(4):
                c.send_json({"payload": b64("q")})
            c.send_text("")
            _, code, _ = c.recv_all()
            self.assertEqual(code, 1000)
        status, data = self.rest("POST", "/gateway.test.v1.Echo/ClientStream",
                                 '{"payload":"cQ=="}\n',
                                 {"Content-Type": "application/x-ndjson"})
        self.assertEqual(status, 200, data)
        refused = self.open("ClientStream")
        self.assertEqual(refused.status, 429, refused.body)
        self.assertEqual(json.loads(refused.body)["code"], 8)
        status, _ = self.rest("POST", "/gateway.test.v1.Echo/ClientStream",
                              '{"payload":"cQ=="}\n',
                              {"Content-Type": "application/x-ndjson"})
        self.assertEqual(status, 429)

    # --- Hostile frames ---

    def test_binary_frame_is_invalid_argument(self):
        c = self.open("Bidi")
        c.send_frame(2, b"\x01\x02")
        texts, code, reason = c.recv_all()
        self.assertEqual(code, 4003)
        self.assertIn("binary WebSocket frame", reason)
        self.assertEqual(json.loads(texts[-1])["code"], 3)

    def test_message_that_is_not_the_methods_json(self):
        c = self.open("Bidi")
        c.send_text('{"payload": 12, ')
        texts, code, reason = c.recv_all()
        self.assertEqual(code, 4003)
        self.assertIn("message 0", json.loads(texts[-1])["message"])

    def test_unknown_field_is_invalid_argument(self):
        c = self.open("Bidi")
        c.send_json({"payload": b64("ok")})
        self.assertEqual(c.recv_frame()[0], 1)
        c.send_json({"no_such_field": 1})
        texts, code, reason = c.recv_all()
        self.assertEqual(code, 4003, reason)
        self.assertIn("message 1", reason)

    def test_unmasked_frame_is_a_protocol_error(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payload":"eA=="}', mask=False)
        _, code, _ = c.recv_all()
        self.assertEqual(code, 1002)

    def test_invalid_utf8_text_is_refused(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payload":"\xc3\x28"}')
        _, code, _ = c.recv_all()
        self.assertEqual(code, 1007)

    def test_message_over_the_limit_is_1009(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payload":"' + b"A" * MAX_BODY + b'"}')
        _, code, _ = c.recv_all()
        self.assertEqual(code, 1009)

    def test_fragmented_message_is_one_message(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payl', fin=False)
        c.send_frame(9, b"ping")  # a control frame between fragments
        c.send_frame(0, b'oad":"ZnJhZw=="}')
        opcode, payload = c.recv_frame()
        while opcode == 10:
            opcode, payload = c.recv_frame()
        self.assertEqual(base64.b64decode(json.loads(payload)["payload"]), b"frag")

    def test_client_that_goes_away_cancels_the_backend_call(self):
        c = self.open("Bidi")
        c.send_json({"payload": b64("x"), "tag": "ws-gone", "sleep_ms": 5000})
        time.sleep(0.3)
        c.close_socket()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.stats("ws-gone").get("cancelled"):
                return
            time.sleep(0.05)
        self.fail("the backend call was not cancelled")

    # --- Back-pressure ---

    def test_client_to_backend_back_pressure(self):
        # The backend reads one message per 100 ms; the gateway reads a frame only once the
        # backend took the previous message, so a fast client soon blocks. The client sends
        # for 3 s at most: how far ahead of the backend's handler the gateway may go also
        # depends on the backend's HTTP/2 window, which gRPC core grows with its bandwidth
        # estimate (under the sanitizers enough for a client never to stall for 1 s).
        c = self.open("ClientStream")
        self.assertEqual(c.status, 101, c.body)
        frame_payload = (b'{"tag":"ws-bp-in","sleep_ms":100,"payload":"'
                         + base64.b64encode(b"p" * (120 << 10)) + b'"}')
        assert len(frame_payload) < MAX_BODY
        # ~160 MB: far more than the socket buffers (~10 MB) and the backend's HTTP/2
        # windows (gRPC core grows them up to 16 MiB) can hold between them.
        frames = 1000
        total = frames * len(frame_payload)
        c.sock.setblocking(False)
        sent = 0
        key = b"\x00\x00\x00\x00"  # a zero mask key: the payload goes as it is
        frame = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", len(frame_payload)) + key + \
            frame_payload
        stream = frame * frames
        stalled_since = None
        deadline = time.monotonic() + 3
        while sent < total and time.monotonic() < deadline:
            try:
                sent += c.sock.send(stream[sent:sent + (1 << 20)])
                stalled_since = None
            except BlockingIOError:
                if stalled_since is None:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > 1.0:
                    break
                time.sleep(0.01)
        received = self.stats("ws-bp-in")["received"]
        print(f"client->backend: {sent} of {total} bytes accepted, backend read {received}")
        # Without back-pressure the gateway would take all 160 MB at once.
        self.assertLess(sent, total // 2)
        self.assertLess(received, 60)

    def test_backend_to_client_back_pressure(self):
        # 20000 responses of 8 KiB (160 MB) to a client that reads nothing for 2 s: the
        # gateway asks for the next message only once a frame was written, so its memory
        # stays flat.
        def rss_kb():
            with open(f"/proc/{self.gateway.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
            return 0

        token = self.key.token(jwt_util.claims())
        c = self.open("ServerStream", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(c.status, 101, c.body)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        before = rss_kb()
        c.send_json({"payload": b64("z" * (8 << 10)), "count": 20000})
        time.sleep(2)
        grown = rss_kb() - before
        print(f"backend->client: gateway RSS grew {grown} KiB while the client did not read")
        self.assertLess(grown, 48 << 10)
        c.close_socket()


class H2StreamSocket:
    """The DATA of one HTTP/2 stream as a socket (sendall / recv), for RawWebSocket's frame
    code: WebSocket over HTTP/2 (RFC 8441) driven by python3-h2."""

    def __init__(self, h2ws):
        self.h2ws = h2ws

    def sendall(self, data):
        self.h2ws.send_data(data)

    def recv(self, n):
        return self.h2ws.recv_data(n)

    def close(self):
        self.h2ws.close_socket()


class H2WebSocket(RawWebSocket):
    """A WebSocket over an HTTP/2 extended CONNECT (RFC 8441) on h2c or TLS (ALPN h2).
    status/headers/body as RawWebSocket's (status 200 when accepted). `wait_for_settings`:
    send the CONNECT only once the server's SETTINGS arrived (as RFC 8441 requires).
    `share`: another H2WebSocket whose connection this one's stream is opened on."""

    def __init__(self, address, path, headers=None, tls=False, protocol="websocket",
                 version="13", method="CONNECT", wait_for_settings=True, end_stream=False,
                 share=None):
        import ssl
        import h2.config
        import h2.connection
        self.data = b""
        self.ended = False
        self.reset = None
        self.status = None
        self.headers = {}
        if share is not None:
            self.raw, self.conn, self.settings, self.peers = \
                share.raw, share.conn, share.settings, share.peers
            self._open(address, path, headers, tls, protocol, version, method, end_stream)
            return
        self.peers = {}  # stream id -> the H2WebSocket of that stream
        host, port = address.rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            raw = context.wrap_socket(raw, server_hostname="localhost")
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.raw = raw
        # (h2 refuses to send the hostile forms: a plain CONNECT without :path, :protocol on
        # another method.)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=method == "CONNECT" and protocol is not None))
        self.conn.initiate_connection()
        self.raw.sendall(self.conn.data_to_send())
        self.settings = {}
        if wait_for_settings:
            while not self.settings:
                self._pump()
        self._open(address, path, headers, tls, protocol, version, method, end_stream)

    def _open(self, address, path, headers, tls, protocol, version, method, end_stream):
        fields = [(":method", method)]
        if protocol is not None:
            fields.append((":protocol", protocol))
        if method != "CONNECT" or protocol is not None:
            fields += [(":scheme", "https" if tls else "http"), (":path", path)]
        fields += [(":authority", address), ("sec-websocket-version", version)]
        fields += [(k.lower(), v) for k, v in (headers or {}).items()]
        self.stream_id = self.conn.get_next_available_stream_id()
        self.peers[self.stream_id] = self
        self.conn.send_headers(self.stream_id, fields, end_stream=end_stream)
        self.raw.sendall(self.conn.data_to_send())
        while self.status is None and self.reset is None:
            self._pump()
        self.sock = H2StreamSocket(self)
        self.buf = b""
        self.body = b""
        if self.status is not None and self.status != 200:
            while not self.ended and self.reset is None:
                self._pump()
            self.body, self.data = self.data, b""

    def _pump(self):
        import h2.events
        import h2.settings
        chunk = self.raw.recv(65536)
        if not chunk:
            raise WsError("the connection closed")
        for event in self.conn.receive_data(chunk):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                for code, setting in event.changed_settings.items():
                    self.settings[int(code)] = setting.new_value
                continue
            peer = self.peers.get(getattr(event, "stream_id", None))
            if peer is None:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                peer.status = int(dict(event.headers)[":status"])
                peer.headers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                peer.data += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                peer.ended = True
            elif isinstance(event, h2.events.StreamReset):
                peer.reset = event.error_code
        out = self.conn.data_to_send()
        if out:
            self.raw.sendall(out)

    def send_data(self, data, end_stream=False):
        while data:
            window = min(self.conn.local_flow_control_window(self.stream_id),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self._pump()  # WINDOW_UPDATE
                continue
            piece, data = data[:window], data[window:]
            self.conn.send_data(self.stream_id, piece)
            self.raw.sendall(self.conn.data_to_send())
        if end_stream:
            self.conn.end_stream(self.stream_id)
            self.raw.sendall(self.conn.data_to_send())

    def recv_data(self, n):
        while not self.data and not self.ended and self.reset is None:
            self._pump()
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close_socket(self):
        self.raw.close()


class WebSocketOverHttp2Test(unittest.TestCase):
    """RFC 8441: the same calls over an HTTP/2 stream, on h2c and on TLS (ALPN h2)."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key = jwt_util.RsaKey("k1")
        jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(config(cls.echo.address, jwks_file))
        cls.address = harness.http_address(cls.gateway)
        cert, key = harness.self_signed_certificate(cls.ws.dir)
        tls_config = config(cls.echo.address, jwks_file).replace(
            "  cors:\n", f'  tls: {{cert_file: "{cert}", key_file: "{key}"}}\n  cors:\n')
        cls.tls_gateway = cls.ws.gatewayd(tls_config, name="tls_gatewayd")
        cls.tls_address = harness.http_address(cls.tls_gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def open(self, rpc, tls=False, **kwargs):
        c = H2WebSocket(self.tls_address if tls else self.address,
                        f"/gateway.test.v1.Echo/{rpc}", tls=tls, **kwargs)
        self.addCleanup(c.close_socket)
        return c

    def test_settings_advertise_enable_connect_protocol(self):
        for tls in (False, True):
            c = self.open("Bidi", tls=tls)
            self.assertEqual(c.settings.get(0x8), 1, c.settings)

    def test_bidi_over_h2c_and_tls(self):
        for tls in (False, True):
            c = self.open("Bidi", tls=tls)
            self.assertEqual(c.status, 200, c.body)
            self.assertTrue(c.headers.get("x-request-id"))
            self.assertNotIn("sec-websocket-accept", c.headers)
            for i, word in enumerate(["one", "two", "three"]):
                c.send_json({"payload": b64(word)})
                op, payload = c.recv_frame()  # each answer before the next request
                self.assertEqual(op, 1)
                msg = json.loads(payload)
                self.assertEqual(base64.b64decode(msg["payload"]).decode(), word)
                self.assertEqual(msg.get("index", 0), i)
            c.send_text("")
            texts, code, reason = c.recv_all()
            self.assertEqual((texts, code, reason), ([], 1000, ""))
            # After the close handshake the gateway ends the stream (END_STREAM, no reset).
            c.send_data(b"", end_stream=True)
            deadline = time.monotonic() + TIMEOUT
            while not c.ended and c.reset is None and time.monotonic() < deadline:
                c._pump()
            self.assertTrue(c.ended)
            self.assertIsNone(c.reset)

    def test_websockets_share_a_connection(self):
        # Two WebSockets as two streams of one HTTP/2 connection, their messages interleaved,
        # and a third stream that ends with an error while the others go on.
        a = self.open("Bidi")
        b = H2WebSocket(self.address, "/gateway.test.v1.Echo/Bidi", share=a)
        c = H2WebSocket(self.address, "/gateway.test.v1.Echo/Bidi", share=a)
        self.assertEqual((a.status, b.status, c.status), (200, 200, 200))
        c.send_json({"payload": b64("c"), "fail_code": 14, "fail_message": "c failed"})
        for word in ["1", "2", "3"]:
            a.send_json({"payload": b64("a" + word)})
            b.send_json({"payload": b64("b" + word)})
            for ws, name in ((b, "b"), (a, "a")):
                op, payload = ws.recv_frame()
                self.assertEqual(op, 1)
                self.assertEqual(base64.b64decode(json.loads(payload)["payload"]).decode(),
                                 name + word)
        texts, code, reason = c.recv_all()
        self.assertEqual((code, reason), (4014, "c failed"), texts)
        for ws in (a, b):
            ws.send_text("")
            self.assertEqual(ws.recv_all(), ([], 1000, ""))

    def test_server_stream_over_tls(self):
        token = self.key.token(jwt_util.claims())
        c = self.open("ServerStream", tls=True, headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(c.status, 200, c.body)
        c.send_json({"payload": b64("s"), "count": 4})
        texts, code, _ = c.recv_all()
        self.assertEqual([json.loads(t).get("index", 0) for t in texts], [0, 1, 2, 3])
        self.assertEqual(code, 1000)

    def test_auth_runs_on_the_connect(self):
        c = self.open("ServerStream")
        self.assertEqual(c.status, 401, c.body)

    def test_backend_status_is_an_error_frame_and_the_close(self):
        c = self.open("Bidi")
        c.send_json({"payload": b64("a")})
        c.send_json({"payload": b64("b"), "fail_code": 9, "fail_message": "stopped here",
                     "fail_after": 1})
        texts, code, reason = c.recv_all()
        self.assertEqual(len(texts), 2, texts)
        self.assertEqual(json.loads(texts[1])["code"], 9)
        self.assertEqual(json.loads(texts[1])["message"], "stopped here")
        self.assertEqual((code, reason), (4009, "stopped here"))

    def test_origins_follow_the_cors_policy(self):
        c = self.open("Bidi", headers={"Origin": "http://evil.example"})
        self.assertEqual(c.status, 403)
        self.assertIn('origin "http://evil.example" is not allowed',
                      json.loads(c.body)["message"])
        ok = self.open("Bidi", headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(ok.status, 200, ok.body)

    def test_unary_method_is_refused(self):
        c = self.open("Stats")
        self.assertEqual(c.status, 400)
        self.assertIn("cannot be called over WebSocket", json.loads(c.body)["message"])

    def test_plain_connect_and_other_protocols_are_refused(self):
        c = self.open("Bidi", protocol=None)
        self.assertEqual(c.status, 501, c.body)
        self.assertIn("CONNECT tunnels are not served", json.loads(c.body)["message"])
        c = self.open("Bidi", protocol="webtransport")
        self.assertEqual(c.status, 501, c.body)
        self.assertIn('protocol "webtransport" is not served', json.loads(c.body)["message"])
        c = self.open("Bidi", end_stream=True)
        self.assertEqual(c.status, 400, c.body)
        self.assertIn("must leave its stream open", json.loads(c.body)["message"])

    def test_bad_version_is_426_naming_13(self):
        c = self.open("Bidi", version="8")
        self.assertEqual(c.status, 426, c.body)
        self.assertEqual(c.headers.get("sec-websocket-version"), "13")
        self.assertIn('"8" (supported: 13)', json.loads(c.body)["message"])

    def test_protocol_on_a_get_is_a_stream_error(self):
        # :protocol belongs to CONNECT only (RFC 8441 4): nghttp2 resets the stream.
        c = self.open("Bidi", method="GET")
        self.assertIsNotNone(c.reset)
        self.assertIsNone(c.status)
        self.assertEqual(self.open("Bidi").status, 200)  # the connection's others go on

    def test_connect_sent_before_the_settings_arrived(self):
        # A client that does not wait for ENABLE_CONNECT_PROTOCOL: the gateway's SETTINGS
        # preceded anything it answers, so the CONNECT is served.
        c = self.open("Bidi", wait_for_settings=False)
        self.assertEqual(c.status, 200, c.body)
        c.send_json({"payload": b64("early")})
        op, payload = c.recv_frame()
        self.assertEqual(base64.b64decode(json.loads(payload)["payload"]), b"early")

    def test_unmasked_frame_is_a_protocol_error(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payload":"eA=="}', mask=False)
        _, code, _ = c.recv_all()
        self.assertEqual(code, 1002)

    def test_message_over_the_limit_is_1009(self):
        c = self.open("Bidi")
        c.send_frame(1, b'{"payload":"' + b"A" * MAX_BODY + b'"}')
        _, code, _ = c.recv_all()
        self.assertEqual(code, 1009)

    def test_client_reset_cancels_the_backend_call(self):
        c = self.open("Bidi")
        c.send_json({"payload": b64("x"), "tag": "h2ws-gone", "sleep_ms": 5000})
        time.sleep(0.3)
        c.conn.reset_stream(c.stream_id)
        c.raw.sendall(c.conn.data_to_send())
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if WebSocketTest.stats(self, "h2ws-gone").get("cancelled"):
                return
            time.sleep(0.05)
        self.fail("the backend call was not cancelled")

    rest = WebSocketTest.rest

    def test_client_to_backend_back_pressure(self):
        # The backend reads one message per 100 ms; the gateway opens the stream's window
        # only as it takes frames, so the client soon has no window left.
        c = self.open("ClientStream")
        self.assertEqual(c.status, 200, c.body)
        frame_payload = (b'{"tag":"h2ws-bp-in","sleep_ms":100,"payload":"'
                         + base64.b64encode(b"p" * (120 << 10)) + b'"}')
        frame = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", len(frame_payload)) + \
            b"\x00\x00\x00\x00" + frame_payload
        sent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sent < 400 * len(frame):
            window = min(c.conn.local_flow_control_window(c.stream_id),
                         c.conn.max_outbound_frame_size)
            if window <= 0:
                c.raw.settimeout(0.2)
                try:
                    c._pump()
                except (socket.timeout, TimeoutError):
                    pass
                continue
            piece = (frame * 2)[sent % len(frame):][:window]
            c.conn.send_data(c.stream_id, piece)
            c.raw.sendall(c.conn.data_to_send())
            sent += len(piece)
        received = WebSocketTest.stats(self, "h2ws-bp-in")["received"]
        print(f"h2 client->backend: {sent} bytes sent in 3 s, backend read {received}")
        # 3 s at 10 messages/s: ~30 messages (5 MB) taken, plus at most one window (1 MiB)
        # and a frame in flight.
        self.assertLess(sent, 12 << 20)
        self.assertLess(received, 60)


if __name__ == "__main__":
    unittest.main()
