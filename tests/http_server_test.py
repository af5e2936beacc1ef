"""Integration tests of gatewayd's HTTP/JSON front end (HTTP/1.1).

Real processes on loopback: the bookstore example backend (REST routes from its
google.api.http rules), the echo backend (exposed through POST /<Service>/<Method> for
metadata, deadline, failure and streaming checks), gatewayd, and real clients: Python's
http.client and raw sockets, and curl. Every call is bounded in time.
"""

import base64
import http.client
import json
import os
import re
import select
import socket
import ssl
import subprocess
import time
import unittest

import harness

TIMEOUT = 20  # seconds; the bound of any single call below
ECHO = "/gateway.test.v1.Echo/"


def gateway_config(bookstore, echo, http_extra=""):
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
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  forwarded_request_headers: [X-User, x-echo-color]
  exposed_response_metadata: [x-echo-initial, x-echo-trailing, x-reflect-color]
  default_deadline: 3s
  transcoding: {{expose_grpc_paths: true}}
{http_extra}
"""


class Client:
    """http.client on one keep-alive connection, JSON in and out."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)

    def call(self, method, path, body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=headers or {})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp, raw

    def json(self, method, path, body=None, headers=None):
        resp, raw = self.call(method, path, body, headers)
        return resp.status, (json.loads(raw) if raw else None), resp

    def close(self):
        self.conn.close()


def echo_body(**fields):
    if "payload" in fields:
        fields["payload"] = base64.b64encode(fields["payload"]).decode()
    return fields


class HttpTranscodingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        cls.gateway = cls.ws.gatewayd(gateway_config(cls.bookstore.address, cls.echo.address))
        cls.address = harness.http_address(cls.gateway)
        cls.host, cls.port = cls.address.rsplit(":", 1)
        cls.port = int(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def setUp(self):
        self.client = Client(self.address)

    def tearDown(self):
        self.client.close()

    def curl(self, *args):
        result = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), *args],
                                capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    # --- logs, health ---

    def test_log_names_both_listeners_grpc_first(self):
        out = self.gateway.output()
        self.assertLess(out.index("grpc listening on"), out.index("http listening on"))
        self.assertNotEqual(self.gateway.address, self.address)

    def test_healthz(self):
        resp, raw = self.client.call("GET", "/healthz")
        self.assertEqual(resp.status, 200)
        self.assertEqual(raw, b"ok\n")

    def test_readyz_turns_ready_once_backends_connect(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            resp, raw = self.client.call("GET", "/readyz")
            if resp.status == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(resp.status, 503)
            time.sleep(0.05)
        self.assertEqual(resp.status, 200, raw)

    # --- every REST route of the bookstore ---

    def test_list_and_get_shelves(self):
        status, body, resp = self.client.json("GET", "/v1/shelves")
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        themes = {s["theme"] for s in body["shelves"]}
        self.assertTrue({"Fiction", "History"} <= themes)
        status, body, _ = self.client.json("GET", "/v1/shelves/2")
        self.assertEqual((status, body), (200, {"id": "2", "theme": "History"}))

    def test_create_get_and_delete_shelf(self):
        status, shelf, _ = self.client.json("POST", "/v1/shelves", {"theme": "Poetry"})
        self.assertEqual(status, 200, shelf)
        self.assertEqual(shelf["theme"], "Poetry")
        path = f"/v1/shelves/{shelf['id']}"
        self.assertEqual(self.client.json("GET", path)[1], shelf)
        status, body, _ = self.client.json("DELETE", path)
        self.assertEqual((status, body), (200, {}))
        status, body, _ = self.client.json("GET", path)
        self.assertEqual(status, 404)
        self.assertEqual(body["code"], 5)

    def test_create_get_update_with_field_mask_and_delete_book(self):
        status, book, _ = self.client.json(
            "POST", "/v1/shelves/1/books",
            {"title": "Dune", "author": "Frank Herbert", "genre": "SCIENCE_FICTION"})
        self.assertEqual(status, 200, book)
        self.assertEqual(book["shelf"], "1")
        self.assertIn("createTime", book)
        path = f"/v1/shelves/1/books/{book['id']}"
        # Only the title changes: the mask names it, the author in the body is ignored.
        status, updated, _ = self.client.json(
            "PATCH", path + "?update_mask=title", {"title": "Dune Messiah", "author": "X"})
        self.assertEqual(status, 200, updated)
        self.assertEqual((updated["title"], updated["author"]), ("Dune Messiah", "Frank Herbert"))
        # Without a mask the body's keys become the mask.
        status, updated, _ = self.client.json("PATCH", path, {"tags": ["sf"]})
        self.assertEqual(status, 200, updated)
        self.assertEqual((updated["title"], updated["tags"]), ("Dune Messiah", ["sf"]))
        self.assertEqual(self.client.json("GET", f"/v1/books/{book['id']}")[1], updated)
        self.assertEqual(self.client.json("DELETE", path)[0], 200)
        status, body, _ = self.client.json("GET", path)
        self.assertEqual(status, 404)
        self.assertIn("not found", body["message"])

    def test_list_books_with_query_parameters(self):
        status, body, _ = self.client.json("GET", "/v1/shelves/1/books?page_size=1")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["books"]), 1)
        token = body["nextPageToken"]
        status, page2, _ = self.client.json("GET", f"/v1/shelves/1/books?page_size=1&page_token={token}")
        self.assertEqual(status, 200, page2)
        self.assertNotEqual(page2["books"][0]["id"], body["books"][0]["id"])
        status, body, _ = self.client.json("GET", "/v1/shelves/1/books?author=Agatha%20Christie")
        self.assertEqual(status, 200, body)
        self.assertEqual({b["author"] for b in body["books"]}, {"Agatha Christie"})
        status, body, _ = self.client.json("GET", "/v1/shelves/1/books?page_size=abc")
        self.assertEqual(status, 400)
        self.assertIn("page_size", body["message"])

    def test_server_stream_json_array_ndjson_and_sse(self):
        status, body, resp = self.client.json("GET", "/v1/shelves/2/books:stream")
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        self.assertIsInstance(body, list)
        self.assertTrue(all(b["shelf"] == "2" for b in body))
        resp, raw = self.client.call("GET", "/v1/shelves/2/books:stream",
                                     headers={"Accept": "application/x-ndjson"})
        self.assertEqual(resp.getheader("Content-Type"), "application/x-ndjson")
        lines = [json.loads(l) for l in raw.decode().splitlines() if l]
        self.assertEqual(lines, body)
        resp, raw = self.client.call("GET", "/v1/shelves/2/books:stream",
                                     headers={"Accept": "text/event-stream"})
        self.assertEqual(resp.getheader("Content-Type"), "text/event-stream")
        events = [json.loads(e[len("data: "):]) for e in raw.decode().split("\n\n") if e]
        self.assertEqual(events, body)
        status, body, _ = self.client.json("GET", "/v1/shelves/404/books:stream")
        self.assertEqual(status, 404)
        self.assertEqual(body["code"], 5)

    def test_server_stream_arrives_as_it_is_produced(self):
        # 5 messages, 300 ms apart: the first must arrive long before the last is sent.
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        body = json.dumps(echo_body(payload=b"p", count=5, sleep_ms=300)).encode()
        sock.sendall(b"POST " + ECHO.encode() + b"ServerStream HTTP/1.1\r\nHost: x\r\n"
                     b"Accept: application/x-ndjson\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        start = time.monotonic()
        data = b""
        while b'"payload"' not in data:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        first = time.monotonic() - start
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        total = time.monotonic() - start
        sock.close()
        self.assertLess(first, 1.0)
        self.assertGreater(total, 1.2)
        self.assertEqual(data.count(b'"payload"'), 5)

    def test_client_disconnect_cancels_the_server_stream(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        body = json.dumps(echo_body(payload=b"p", count=1000, sleep_ms=20,
                                    tag="http-disconnect")).encode()
        sock.sendall(b"POST " + ECHO.encode() + b"ServerStream HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertIn(b"200 OK", sock.recv(65536))
        sock.close()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status, stats, _ = self.client.json("POST", ECHO + "Stats", {"tag": "http-disconnect"})
            self.assertEqual(status, 200)
            if stats.get("finished"):
                break
            time.sleep(0.1)
        self.assertEqual(stats, {"cancelled": True, "finished": True})

    def test_client_stream_json_array_and_ndjson(self):
        status, body, _ = self.client.json(
            "POST", "/v1/shelves/2/books:batchCreate",
            [{"book": {"title": "One"}}, {"book": {"title": "Two"}}])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["createdCount"], 2)
        ids = body["bookIds"]
        for book_id in ids:
            self.assertEqual(self.client.json("GET", f"/v1/shelves/2/books/{book_id}")[0], 200)
        ndjson = b'{"book": {"title": "Three"}}\n{"book": {"title": "Four"}}\n'
        status, body, _ = self.client.json("POST", "/v1/shelves/2/books:batchCreate", ndjson,
                                           {"Content-Type": "application/x-ndjson"})
        self.assertEqual((status, body["createdCount"]), (200, 2))
        status, body, _ = self.client.json(
            "POST", "/v1/shelves/2/books:batchCreate",
            [{"book": {"title": "Ok"}}, {"book": {"title": ""}}])
        self.assertEqual(status, 400, body)
        status, body, _ = self.client.json("POST", "/v1/shelves/2/books:batchCreate",
                                           b'[{"book": {"title": "x"}}')
        self.assertEqual(status, 400, body)

    def test_client_stream_with_chunked_request_body_from_curl(self):
        out = self.curl("--http1.1", "-H", "Transfer-Encoding: chunked", "-H",
                        "Content-Type: application/json", "--data-binary",
                        '[{"book":{"title":"Chunked"}}]',
                        f"http://{self.address}/v1/shelves/1/books:batchCreate")
        self.assertEqual(json.loads(out)["createdCount"], 1)

    def test_curl_http11_keep_alive(self):
        out = self.curl("--http1.1", "-v", f"http://{self.address}/v1/shelves/1",
                        f"http://{self.address}/v1/shelves/2")
        self.assertIn(b'"theme":"Fiction"', out)
        self.assertIn(b'"theme":"History"', out)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        for _ in range(50):
            status, _, _ = self.client.json("GET", "/v1/shelves/1")
            self.assertEqual(status, 200)

    def test_pipelined_requests_are_answered_in_order(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock.sendall(b"GET /v1/shelves/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /v1/shelves/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        self.assertLess(data.index(b"History"), data.index(b"Fiction"))

    # --- errors ---

    def test_unknown_path_is_404_with_json_error(self):
        status, body, _ = self.client.json("GET", "/v1/nothing/here")
        self.assertEqual(status, 404)
        self.assertEqual(body["code"], 5)
        self.assertIn("/v1/nothing/here", body["message"])
        status, body, _ = self.client.json("PUT", "/v1/shelves")
        self.assertEqual(status, 404)

    def test_bad_json_is_400(self):
        status, body, _ = self.client.json("POST", "/v1/shelves", b'{"theme": ')
        self.assertEqual(status, 400)
        self.assertEqual(body["code"], 3)
        status, body, _ = self.client.json("POST", "/v1/shelves", {"nope": 1})
        self.assertEqual(status, 400)
        self.assertIn("nope", body["message"])

    def test_backend_not_found_is_404_with_json_error_body(self):
        status, body, _ = self.client.json("GET", "/v1/shelves/999")
        self.assertEqual(status, 404)
        self.assertEqual(body, {"code": 5, "message": "shelf 999 not found", "details": []})

    def test_backend_error_details_are_in_the_body(self):
        status, body, _ = self.client.json(
            "POST", ECHO + "Unary", echo_body(payload=b"abc", fail_code=7, fail_message="no"))
        self.assertEqual(status, 403)
        self.assertEqual((body["code"], body["message"]), (7, "no"))
        self.assertEqual(body["details"][0]["@type"],
                         "type.googleapis.com/gateway.test.v1.EchoResponse")

    def test_grpc_timeout_header_gives_504(self):
        start = time.monotonic()
        status, body, _ = self.client.json("POST", ECHO + "Unary",
                                           echo_body(payload=b"x", sleep_ms=5000),
                                           {"grpc-timeout": "300m"})
        self.assertEqual(status, 504, body)
        self.assertEqual(body["code"], 4)
        self.assertLess(time.monotonic() - start, 2.5)
        status, body, _ = self.client.json("POST", ECHO + "Unary", echo_body(payload=b"x"),
                                           {"grpc-timeout": "soon"})
        self.assertEqual(status, 400)
        self.assertIn("grpc-timeout", body["message"])

    def test_default_deadline_gives_504_and_reaches_the_backend(self):
        status, body, _ = self.client.json("POST", ECHO + "Unary",
                                           echo_body(payload=b"x", sleep_ms=6000))
        self.assertEqual(status, 504, body)
        status, body, _ = self.client.json("POST", ECHO + "Unary", echo_body(payload=b"x"))
        self.assertEqual(status, 200)
        # gRPC rounds the deadline it sends up a little.
        self.assertTrue(2000 < int(body["deadlineMs"]) <= 3100, body)

    # --- metadata ---

    def test_configured_headers_become_metadata_and_reserved_ones_do_not(self):
        status, body, _ = self.client.json(
            "POST", ECHO + "Unary", echo_body(payload=b"x"),
            {"X-User": "alice", "X-Request-Id": "req-1", "traceparent": "00-abc-def-01",
             "grpc-status": "0", "grpc-foo": "bar", "Cookie": "secret=1", "X-Other": "no"})
        self.assertEqual(status, 200, body)
        md = body["metadata"]
        self.assertIn("x-user=alice", md)
        self.assertIn("x-request-id=req-1", md)
        self.assertIn("traceparent=00-abc-def-01", md)
        for line in md:
            self.assertFalse(line.startswith(("grpc-foo", "cookie", "x-other", "grpc-status")),
                             md)

    def test_configured_response_metadata_becomes_headers(self):
        resp, raw = self.client.call("POST", ECHO + "Unary",
                                     json.dumps(echo_body(payload=b"abcd")).encode(),
                                     {"X-Echo-Color": "blue"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("x-echo-initial"), "4")
        self.assertEqual(resp.getheader("x-echo-trailing"), "done")
        self.assertEqual(resp.getheader("x-reflect-color"), "blue")

    def test_header_values_with_control_bytes_are_refused(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock.sendall(b"GET /v1/shelves/1 HTTP/1.1\r\nHost: x\r\nX-User: a\x00b\r\n\r\n")
        self.assertIn(b"400 Bad Request", sock.recv(65536))
        sock.close()
        # A folded line stays part of the value; it never becomes metadata of its own.
        body = json.dumps(echo_body(payload=b"x")).encode()
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock.sendall(b"POST " + ECHO.encode() + b"Unary HTTP/1.1\r\nHost: x\r\n"
                     b"X-User: a\r\n grpc-x: 1\r\nConnection: close\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        if b"200 OK" in data:
            md = json.loads(data.split(b"\r\n\r\n", 1)[1])["metadata"]
            self.assertFalse([m for m in md if m.startswith("grpc-x")], md)
        else:
            self.assertIn(b"400 Bad Request", data)

    def test_sigterm_stops_both_listeners(self):
        ws = harness.Workspace()
        try:
            gw = ws.gatewayd(gateway_config(self.bookstore.address, self.echo.address))
            harness.http_address(gw)
            self.assertEqual(gw.stop(), 0)
            self.assertIn("stopped", gw.output())
        finally:
            ws.close()



def read_all(sock):
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


class HttpLimitsTest(unittest.TestCase):
    """Each limit hit on purpose, on a gateway configured with small ones."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        limits = """
  limits:
    max_body_bytes: 2048
    max_header_bytes: 1024
    max_header_count: 20
    header_read_timeout: 1s
    idle_timeout: 2s
"""
        cls.gateway = cls.ws.gatewayd(
            gateway_config(cls.bookstore.address, cls.echo.address, limits))
        cls.address = harness.http_address(cls.gateway)
        host, port = cls.address.rsplit(":", 1)
        cls.host, cls.port = host, int(port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def connect(self):
        return socket.create_connection((self.host, self.port), timeout=TIMEOUT)

    def exchange(self, raw):
        sock = self.connect()
        sock.sendall(raw)
        data = read_all(sock)
        sock.close()
        return data

    def status_of(self, method, target, body=None, headers=None):
        host, port = self.host, self.port
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, raw, resp
        finally:
            conn.close()

    def test_body_over_the_limit_is_413(self):
        status, raw, resp = self.status_of("POST", "/v1/shelves", b"x" * 4096)
        self.assertEqual(status, 413)
        self.assertEqual(json.loads(raw)["code"], 8)
        self.assertEqual(resp.getheader("Connection"), "close")
        status, raw, _ = self.status_of("POST", "/v1/shelves",
                                        json.dumps({"theme": "t" * 1000}).encode())
        self.assertEqual(status, 200, raw)

    def test_chunked_body_over_the_limit_is_413(self):
        chunk = b"x" * 1500
        data = self.exchange(b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n"
                             + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2 + b"0\r\n\r\n")
        self.assertIn(b"413 Payload Too Large", data)

    def test_headers_over_the_size_limit_are_431(self):
        status, raw, _ = self.status_of("GET", "/v1/shelves", headers={"X-Big": "b" * 2000})
        self.assertEqual(status, 431)
        self.assertEqual(json.loads(raw)["code"], 8)

    def test_limit_counts_the_request_line_and_headers_together(self):
        # 700 bytes of request target plus 700 of headers, sent in one write: each part is
        # under max_header_bytes (1024), the head is not.
        target = b"/v1/shelves?pad=" + b"p" * 684
        head = (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"h" * 680
                + b"\r\n\r\n")
        self.assertGreater(len(head), 1024)
        self.assertIn(b"431 Request Header Fields Too Large", self.exchange(head))
        # Under the limit as a whole: served.
        small = (b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
                 + b"h" * 880 + b"\r\n\r\n")
        self.assertLess(len(small), 1024)
        self.assertIn(b"200 OK", self.exchange(small))

    def exchange_in_pieces(self, raw, size):
        """Sends `raw` in writes of `size` bytes with a pause between them (so that the
        gateway reads each apart), then reads the answer until the server closes."""
        sock = self.connect()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(raw), size):
            sock.sendall(raw[i:i + size])
            # An answer before the end (an error) stops the sending.
            if select.select([sock], [], [], 0.005)[0]:
                break
        data = read_all(sock)
        sock.close()
        return data

    def test_head_and_body_split_across_reads(self):
        body = b'{"theme": "Split"}'
        raw = (b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
               + b"\r\n\r\n" + body)
        for size in (1, 7, len(raw) - len(body)):
            with self.subTest(size=size):
                data = self.exchange_in_pieces(raw, size)
                self.assertIn(b"200 OK", data)
                self.assertIn(b'"theme":"Split"', data)

    def test_head_over_the_limit_in_pieces_is_431(self):
        # The limit holds for a head that arrives a little at a time, too.
        head = (b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"h" * 1500
                + b"\r\n\r\n")
        self.assertIn(b"431 Request Header Fields Too Large",
                      self.exchange_in_pieces(head, 100))

    def test_too_many_headers_are_431(self):
        headers = {f"X-H{i}": "v" for i in range(30)}
        status, raw, _ = self.status_of("GET", "/v1/shelves", headers=headers)
        self.assertEqual(status, 431, raw)
        headers = {f"X-H{i}": "v" for i in range(10)}
        self.assertEqual(self.status_of("GET", "/v1/shelves", headers=headers)[0], 200)

    def test_slow_headers_are_cut_off(self):
        # Slowloris: a byte every 200 ms never completes the head within 1 s.
        sock = self.connect()
        start = time.monotonic()
        closed = False
        for byte in b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
            if time.monotonic() - start > 8:
                break
        sock.close()
        self.assertTrue(closed)
        self.assertLess(time.monotonic() - start, 3.0)

    def test_silent_new_connection_is_closed(self):
        sock = self.connect()
        start = time.monotonic()
        self.assertEqual(read_all(sock), b"")
        self.assertLess(time.monotonic() - start, 3.0)
        sock.close()

    def assert_closed_after_idle_timeout(self, sock):
        """The gateway closes `sock` about idle_timeout (2 s) from now, sending nothing."""
        start = time.monotonic()
        self.assertEqual(read_all(sock), b"")
        idle = time.monotonic() - start
        self.assertGreater(idle, 1.5)
        self.assertLess(idle, 4.0)
        sock.close()

    def test_idle_keep_alive_connection_is_closed(self):
        sock = self.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        self.assertIn(b"200 OK", first)
        self.assert_closed_after_idle_timeout(sock)

    def read_response(self, sock):
        """One response with a Content-Length body, read whole."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            body += chunk
        return head

    def test_idle_keep_alive_connection_is_closed_after_a_backend_call(self):
        # A call answered by the backend: the gateway waits for the next request with the
        # read it started during the call, and idle_timeout still applies to that wait.
        sock = self.connect()
        sock.sendall(b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200 OK", self.read_response(sock))
        self.assert_closed_after_idle_timeout(sock)

    def test_requests_within_idle_timeout_keep_the_connection(self):
        # Four backend calls 1.2 s apart (each gap under idle_timeout, 2 s; 3.6 s in all)
        # on one connection, which closes about idle_timeout after the last.
        sock = self.connect()
        for i in range(4):
            if i:
                time.sleep(1.2)
            sock.sendall(b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", self.read_response(sock), f"request {i}")
        self.assert_closed_after_idle_timeout(sock)

    def test_malformed_requests_are_400(self):
        for raw in [b"GARBAGE\r\n\r\n",
                    b"GET /v1/shelves HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"GET /v1/shelves HTTP/1.1\r\nBad Header\r\n\r\n",
                    b"POST /v1/shelves HTTP/1.1\r\nContent-Length: 5\r\n"
                    b"Content-Length: 7\r\n\r\n12345",
                    b"POST /v1/shelves HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\n"]:
            data = self.exchange(raw)
            self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request"), (raw, data))

    def test_unsafe_paths_are_400(self):
        for target in ["/v1/../v1/shelves", "/v1/%2e%2e/v1/shelves", "/v1/./shelves",
                       "/v1/shelves/1%00", "/v1/shelves%2F1", "/v1//shelves",
                       "http://evil/v1/shelves", "/v1/shelves\\1"]:
            data = self.exchange(f"GET {target} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode())
            self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request"), (target, data))
            body = json.loads(data.split(b"\r\n\r\n", 1)[1])
            self.assertEqual(body["code"], 3)

    def test_server_still_serves_after_abuse(self):
        self.test_malformed_requests_are_400()
        self.assertEqual(self.status_of("GET", "/v1/shelves/1")[0], 200)
        self.assertTrue(self.gateway.alive())



# --- HTTP/2 (h2c with prior knowledge) ---

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream_id, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags])
            + stream_id.to_bytes(4, "big") + payload)


def h2_get_headers(path, authority=b"x"):
    """A HEADERS block for GET `path` (HPACK: static indices and literals, no Huffman)."""
    return (b"\x82\x86" + b"\x04" + bytes([len(path)]) + path
            + b"\x01" + bytes([len(authority)]) + authority)


def h2_read_frames(sock, want, limit=5.0):
    """Reads frames until `want(kind, flags, stream, payload)` is true or the peer closes;
    returns (found, frames)."""
    sock.settimeout(limit)
    data = b""
    frames = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if len(data) < 9 + length:
                break
            kind, flags = data[3], data[4]
            stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
            payload = data[9:9 + length]
            data = data[9 + length:]
            frames.append((kind, flags, stream, payload))
            if want(kind, flags, stream, payload):
                return True, frames
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return False, frames


class Http2Test(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        limits = """
  limits:
    max_body_bytes: 4096
    max_header_bytes: 2048
    max_concurrent_streams: 8
"""
        cls.gateway = cls.ws.gatewayd(
            gateway_config(cls.bookstore.address, cls.echo.address, limits))
        cls.address = harness.http_address(cls.gateway)
        host, port = cls.address.rsplit(":", 1)
        cls.host, cls.port = host, int(port)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def curl(self, *args):
        result = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time",
                                 str(TIMEOUT), *args], capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_rest_routes_over_h2c(self):
        out = self.curl("-i", f"http://{self.address}/v1/shelves/1")
        self.assertTrue(out.startswith(b"HTTP/2 200"), out)
        self.assertIn(b'{"id":"1","theme":"Fiction"}', out)
        out = self.curl("-i", f"http://{self.address}/v1/shelves/999")
        self.assertTrue(out.startswith(b"HTTP/2 404"), out)
        self.assertIn(b'"code":5', out)
        out = self.curl("-X", "POST", "-H", "content-type: application/json", "--data-binary",
                        '{"theme":"Drama"}', f"http://{self.address}/v1/shelves")
        self.assertEqual(json.loads(out)["theme"], "Drama")
        out = self.curl("-X", "POST", "--data-binary", '[{"book":{"title":"H2"}}]',
                        f"http://{self.address}/v1/shelves/1/books:batchCreate")
        self.assertEqual(json.loads(out)["createdCount"], 1)
        out = self.curl("-H", "accept: application/x-ndjson",
                        f"http://{self.address}/v1/shelves/1/books:stream")
        books = [json.loads(l) for l in out.decode().splitlines() if l]
        self.assertTrue(books and all(b["shelf"] == "1" for b in books))
        out = self.curl(f"http://{self.address}/healthz")
        self.assertEqual(out, b"ok\n")

    def test_server_stream_over_h2c_arrives_as_produced(self):
        body = json.dumps(echo_body(payload=b"p", count=4, sleep_ms=300))
        proc = subprocess.Popen(
            ["curl", "-sS", "-N", "--http2-prior-knowledge", "--max-time", str(TIMEOUT),
             "-H", "accept: application/x-ndjson", "--data-binary", body,
             f"http://{self.address}{ECHO}ServerStream"], stdout=subprocess.PIPE)
        start = time.monotonic()
        first = proc.stdout.readline()
        first_at = time.monotonic() - start
        rest = proc.stdout.read()
        total = time.monotonic() - start
        proc.wait(TIMEOUT)
        self.assertIn(b'"payload"', first)
        self.assertEqual(rest.count(b'"payload"'), 3)
        self.assertLess(first_at, 1.0)
        self.assertGreater(total, 0.8)

    def test_h2load_many_streams(self):
        result = subprocess.run(
            ["h2load", "-n", "400", "-c", "4", "-m", "8",
             f"http://{self.address}/v1/shelves/1"],
            capture_output=True, text=True, timeout=60)
        self.assertIn("400 succeeded", result.stdout, result.stdout + result.stderr)
        self.assertIn("status codes: 400 2xx", result.stdout)

    def test_settings_announce_the_stream_limit(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock.sendall(PREFACE + h2_frame(4, 0, 0))
        found, frames = h2_read_frames(sock, lambda k, f, s, p: k == 4 and not f & 1)
        sock.close()
        self.assertTrue(found, frames)
        payload = [p for k, f, s, p in frames if k == 4 and not f & 1][0]
        settings = {int.from_bytes(payload[i:i + 2], "big"):
                    int.from_bytes(payload[i + 2:i + 6], "big")
                    for i in range(0, len(payload), 6)}
        self.assertEqual(settings.get(3), 8)  # SETTINGS_MAX_CONCURRENT_STREAMS

    def test_limits_over_h2c(self):
        result = subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
             "%{http_code}", "--max-time", str(TIMEOUT), "--data-binary", "x" * 8000,
             f"http://{self.address}/v1/shelves"], capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(result.stdout, b"413")
        result = subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
             "%{http_code}", "--max-time", str(TIMEOUT), "-H", "x-big: " + "b" * 3000,
             f"http://{self.address}/v1/shelves"], capture_output=True, timeout=TIMEOUT + 5)
        self.assertIn(result.stdout, (b"431", b"000"), result.stderr)
        out = self.curl("-i", f"http://{self.address}/v1/../v1/shelves", "--path-as-is")
        self.assertTrue(out.startswith(b"HTTP/2 400"), out)

    def test_rapid_reset_gets_goaway(self):
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        frames = [PREFACE, h2_frame(4, 0, 0)]
        for i in range(600):
            stream = 2 * i + 1
            frames.append(h2_frame(1, 0x5, stream, h2_get_headers(b"/v1/shelves/1")))
            frames.append(h2_frame(3, 0, stream, (8).to_bytes(4, "big")))  # CANCEL
        try:
            sock.sendall(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            pass
        found, got = h2_read_frames(sock, lambda k, f, s, p: k == 7, limit=10.0)
        sock.close()
        self.assertTrue(found, [f[:3] for f in got[-5:]])
        goaway = [p for k, f, s, p in got if k == 7][0]
        self.assertEqual(int.from_bytes(goaway[4:8], "big"), 0xB)  # ENHANCE_YOUR_CALM
        self.assertTrue(self.gateway.alive())
        out = self.curl(f"http://{self.address}/v1/shelves/1")
        self.assertIn(b"Fiction", out)


class HttpInterceptorTest(unittest.TestCase):
    """The interceptor chain runs for REST calls: quotas, deadlines."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        extra = """
quotas:
  rules:
    - {name: one-shelf-read, selectors: ["bookstore.v1.Bookstore.GetShelf"], key: GLOBAL,
       requests: 1, per: 60s, burst: 1}
deadlines:
  rules:
    - {selectors: ["gateway.test.v1.Echo.Unary"], max_timeout: 300ms}
"""
        config = gateway_config(cls.bookstore.address, cls.echo.address).replace(
            "runtime:", extra.strip() + "\nruntime:")
        cls.gateway = cls.ws.gatewayd(config)
        cls.address = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_quota_rejection_is_429_with_its_headers(self):
        client = Client(self.address)
        try:
            status, body, _ = client.json("GET", "/v1/shelves/1")
            self.assertEqual(status, 200, body)
            status, body, resp = client.json("GET", "/v1/shelves/1")
            self.assertEqual(status, 429, body)
            self.assertEqual(body["code"], 8)
            self.assertIn("one-shelf-read", body["message"])
            self.assertTrue(resp.getheader("retry-after"))
            self.assertEqual(client.json("GET", "/v1/shelves")[0], 200)  # other methods
        finally:
            client.close()

    def test_deadline_rule_caps_the_call(self):
        client = Client(self.address)
        try:
            start = time.monotonic()
            status, body, _ = client.json("POST", ECHO + "Unary",
                                          echo_body(payload=b"x", sleep_ms=3000))
            self.assertEqual(status, 504, body)
            self.assertLess(time.monotonic() - start, 2.0)
            status, body, _ = client.json("POST", ECHO + "Unary", echo_body(payload=b"x"))
            self.assertEqual(status, 200, body)
            self.assertTrue(0 < int(body["deadlineMs"]) <= 400, body)
        finally:
            client.close()



class HttpTlsTest(unittest.TestCase):
    """TLS on the HTTP listener: ALPN h2 and http/1.1, TLS 1.2 minimum."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.cert, cls.key = harness.self_signed_certificate(cls.ws.dir)
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        tls = f"  tls: {{cert_file: {cls.cert}, key_file: {cls.key}}}\n"
        cls.gateway = cls.ws.gatewayd(
            gateway_config(cls.bookstore.address, cls.echo.address, tls))
        cls.address = harness.http_address(cls.gateway)
        cls.port = int(cls.address.rsplit(":", 1)[1])
        cls.url = f"https://localhost:{cls.port}"

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def curl(self, *args):
        return subprocess.run(["curl", "-sS", "--cacert", self.cert, "--max-time", str(TIMEOUT),
                               *args], capture_output=True, timeout=TIMEOUT + 5)

    def test_alpn_h2(self):
        result = self.curl("-i", "--http2", "-w", "%{http_version}",
                           f"{self.url}/v1/shelves/1", "--resolve",
                           f"localhost:{self.port}:127.0.0.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(b"HTTP/2 200"), result.stdout)
        self.assertIn(b'"theme":"Fiction"', result.stdout)
        self.assertTrue(result.stdout.endswith(b"2"))

    def test_alpn_http11_and_python_client(self):
        result = self.curl("-i", "--http1.1", f"{self.url}/v1/shelves/2", "--resolve",
                           f"localhost:{self.port}:127.0.0.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(b"HTTP/1.1 200"), result.stdout)
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=TIMEOUT,
                                           context=ctx)
        try:
            for _ in range(3):  # keep-alive over TLS
                conn.request("GET", "/v1/shelves/2/books:stream",
                             headers={"Accept": "application/x-ndjson"})
                resp = conn.getresponse()
                lines = [json.loads(l) for l in resp.read().decode().splitlines() if l]
                self.assertEqual(resp.status, 200)
                self.assertTrue(all(b["shelf"] == "2" for b in lines))
        finally:
            conn.close()

    def test_h2load_over_tls(self):
        result = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "8",
                                 f"https://127.0.0.1:{self.port}/v1/shelves/1"],
                                capture_output=True, text=True, timeout=60)
        self.assertIn("Application protocol: h2", result.stdout)
        self.assertIn("200 succeeded", result.stdout, result.stdout)

    def test_old_tls_versions_are_refused(self):
        result = self.curl("--tlsv1.0", "--tls-max", "1.1", f"{self.url}/healthz", "--resolve",
                           f"localhost:{self.port}:127.0.0.1")
        self.assertNotEqual(result.returncode, 0)
        result = self.curl("--tlsv1.2", "--tls-max", "1.2", f"{self.url}/healthz", "--resolve",
                           f"localhost:{self.port}:127.0.0.1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"ok\n")

    def test_plaintext_on_the_tls_port_is_dropped(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertNotIn(b"200 OK", read_all(sock))
        sock.close()
        self.assertTrue(self.gateway.alive())



class HttpCorsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.bookstore = harness.bookstore_backend(cls.ws)
        cls.echo = cls.ws.echo_backend()
        cors = """
  cors:
    allowed_origins: ["https://app.example.com"]
    allowed_origin_patterns: ['https://[a-z0-9-]+\\.preview\\.example\\.com']
    allowed_methods: [GET, POST]
    allowed_headers: [content-type, x-request-id]
    exposed_headers: [x-echo-initial]
    max_age: 600s
    allow_credentials: true
"""
        cls.gateway = cls.ws.gatewayd(
            gateway_config(cls.bookstore.address, cls.echo.address, cors))
        cls.address = harness.http_address(cls.gateway)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def setUp(self):
        self.client = Client(self.address)

    def tearDown(self):
        self.client.close()

    def test_preflight_is_answered_by_the_gateway(self):
        resp, raw = self.client.call("OPTIONS", "/v1/shelves", headers={
            "Origin": "https://pr-7.preview.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, X-Request-Id"})
        self.assertEqual(resp.status, 204, raw)
        self.assertEqual(resp.getheader("access-control-allow-origin"),
                         "https://pr-7.preview.example.com")
        self.assertEqual(resp.getheader("access-control-allow-methods"), "GET, POST")
        # The configured headers, then the CORS-safelisted ones.
        self.assertEqual(resp.getheader("access-control-allow-headers"),
                         "content-type, x-request-id, accept, accept-language, "
                         "content-language, range")
        self.assertEqual(resp.getheader("access-control-max-age"), "600")
        self.assertEqual(resp.getheader("access-control-allow-credentials"), "true")

    def test_preflight_refusals(self):
        for headers in [
                {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"},
                {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
                {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}]:
            resp, raw = self.client.call("OPTIONS", "/v1/shelves", headers=headers)
            self.assertEqual(resp.status, 403, (headers, raw))
            self.assertIsNone(resp.getheader("access-control-allow-origin"))

    def test_actual_requests_carry_cors_headers_for_allowed_origins_only(self):
        resp, raw = self.client.call("GET", "/v1/shelves/1",
                                     headers={"Origin": "https://app.example.com"})
        self.assertEqual(resp.status, 200, raw)
        self.assertEqual(resp.getheader("access-control-allow-origin"), "https://app.example.com")
        self.assertEqual(resp.getheader("access-control-expose-headers"), "x-echo-initial")
        self.assertEqual(resp.getheader("vary"), "Origin")
        resp, raw = self.client.call("GET", "/v1/shelves/999",
                                     headers={"Origin": "https://app.example.com"})
        self.assertEqual(resp.status, 404)
        self.assertEqual(resp.getheader("access-control-allow-origin"), "https://app.example.com")
        resp, raw = self.client.call("GET", "/v1/shelves/1/books:stream",
                                     headers={"Origin": "https://app.example.com"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("access-control-allow-origin"), "https://app.example.com")
        resp, raw = self.client.call("GET", "/v1/shelves/1",
                                     headers={"Origin": "https://evil.example.net"})
        self.assertEqual(resp.status, 200)
        self.assertIsNone(resp.getheader("access-control-allow-origin"))


if __name__ == "__main__":
    unittest.main()
