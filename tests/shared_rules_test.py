"""One method, four protocols, the same rules: GetShelf of the bookstore example called over
REST (GET /v1/shelves/1), native gRPC (python grpcio), gRPC-Web (tools/grpcweb's client) and
Connect (a hand-made unary POST of application/proto) meets one auth rule and one quota, and
every call is counted once, whichever protocol makes it: a caller's limit of 4 is used up by
one call of each protocol, and the 5th call is refused with each protocol's own status (429,
RESOURCE_EXHAUSTED, grpc-status 8, Connect "resource_exhausted" with HTTP 429), in each of
four rounds with another protocol last. The front-end metrics count each refusal once.

The same for a server-streaming method, StreamBooks (GET /v1/shelves/1/books:stream), over
five protocols: REST, gRPC, gRPC-Web, Connect streaming (application/connect+json
envelopes) and WebSocket (the REST route upgraded, HTTP/1.1). One quota of 5 per caller is
shared by all five, each stream counted once; the 6th call is refused with REST's 429,
gRPC's RESOURCE_EXHAUSTED, gRPC-Web's grpc-status 8, Connect's end-of-stream error
"resource_exhausted" (the stream's response is always HTTP 200), and WebSocket's HTTP 429
on the upgrade request (no 101, JSON error code 8). The auth rule refuses each of the five
without a token the same way (401 / UNAUTHENTICATED / 16 / "unauthenticated").

Real processes on loopback (bookstore backend, gatewayd); every call has a timeout.
"""

import http.client
import json
import struct
import os
import sys
import unittest

import grpc

import harness
import jwt_util
from metrics_test import checked_page, metrics_address

# tools/grpcweb: in the runfiles under Bazel, beside tests/ in the source tree outside it.
for _base in (harness.ROOT, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..")):
    if os.path.exists(os.path.join(_base, "tools/grpcweb/grpc_web_client.py")):
        sys.path.insert(0, os.path.join(_base, "tools/grpcweb"))
        break
import grpc_web_client  # noqa: E402
from websocket_test import RawWebSocket  # noqa: E402

TIMEOUT = 20
MSGS = harness.load_messages(harness.BOOKSTORE_SET)
GetShelf = MSGS["bookstore.v1.GetShelfRequest"]
Shelf = MSGS["bookstore.v1.Shelf"]
GET_SHELF = "/bookstore.v1.Bookstore/GetShelf"
PROTOCOLS = ["rest", "grpc", "grpc-web", "connect"]
LIMIT = 4
StreamBooks = MSGS["bookstore.v1.StreamBooksRequest"]
Book = MSGS["bookstore.v1.Book"]
STREAM_BOOKS = "/bookstore.v1.Bookstore/StreamBooks"
STREAM_PATH = "/v1/shelves/1/books:stream"
STREAM_PROTOCOLS = ["rest", "grpc", "grpc-web", "connect", "websocket"]
STREAM_LIMIT = len(STREAM_PROTOCOLS)

# What each protocol answers, by outcome.
EXPECTED = {
    "ok": {"rest": 200, "grpc": "OK", "grpc-web": 0, "connect": (200, None)},
    "quota": {"rest": 429, "grpc": "RESOURCE_EXHAUSTED", "grpc-web": 8,
              "connect": (429, "resource_exhausted")},
    "unauthenticated": {"rest": 401, "grpc": "UNAUTHENTICATED", "grpc-web": 16,
                        "connect": (401, "unauthenticated")},
}

# The same for the stream: Connect's streams answer 200 and carry the error in the
# end-of-stream envelope; WebSocket answers the upgrade request.
STREAM_EXPECTED = {
    "ok": {"rest": 200, "grpc": "OK", "grpc-web": 0, "connect": (200, None),
           "websocket": (101, 1000)},
    "quota": {"rest": 429, "grpc": "RESOURCE_EXHAUSTED", "grpc-web": 8,
              "connect": (200, "resource_exhausted"), "websocket": (429, 8)},
    "unauthenticated": {"rest": 401, "grpc": "UNAUTHENTICATED", "grpc-web": 16,
                        "connect": (200, "unauthenticated"), "websocket": (401, 16)},
}


def envelope(flags, payload):
    return struct.pack(">BI", flags, len(payload)) + payload


class SharedRulesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.key = jwt_util.RsaKey("k1")
            jwks_file = cls.ws.write("jwks.json", jwt_util.jwks(cls.key).decode())
            cls.bookstore = harness.bookstore_backend(cls.ws)
            cls.gateway = cls.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0"}}
metrics_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{cls.bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
auth:
  jwt_providers:
    - {{name: idp, issuer: "https://idp.test", audiences: [bookstore], jwks_file: "{jwks_file}"}}
  rules:
    - {{selectors: ["bookstore.v1.Bookstore.*"], providers: [idp]}}
quotas:
  rules:
    - {{name: shelf-reads, selectors: ["bookstore.v1.Bookstore.GetShelf"], requests: {LIMIT},
       per: 1h}}
    - {{name: book-streams, selectors: ["bookstore.v1.Bookstore.StreamBooks"],
       requests: {STREAM_LIMIT}, per: 1h}}
""")
            cls.http_address = harness.http_address(cls.gateway)
            cls.metrics = metrics_address(cls.gateway)
            cls.channel = grpc.insecure_channel(cls.gateway.address)
            cls.get_shelf = cls.channel.unary_unary(
                GET_SHELF, request_serializer=GetShelf.SerializeToString,
                response_deserializer=Shelf.FromString)
            cls.stream_books = cls.channel.unary_stream(
                STREAM_BOOKS, request_serializer=StreamBooks.SerializeToString,
                response_deserializer=Book.FromString)
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.ws.close()

    # --- one call of GetShelf(shelf=1) per protocol: (answer, message, headers/metadata) ---

    def http(self, method, path, body=None, headers=None):
        host, port = self.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def call(self, protocol, token):
        auth = {"authorization": f"Bearer {token}"} if token else {}
        if protocol == "rest":
            status, headers, body = self.http("GET", "/v1/shelves/1", headers=auth)
            message = "" if status == 200 else json.loads(body)["message"]
            return status, message, headers
        if protocol == "grpc":
            try:
                _, call = self.get_shelf.with_call(GetShelf(shelf=1), timeout=TIMEOUT,
                                                   metadata=list(auth.items()))
                return "OK", "", dict(call.trailing_metadata() or ())
            except grpc.RpcError as e:
                return e.code().name, e.details(), dict(e.trailing_metadata() or ())
        if protocol == "grpc-web":
            client = grpc_web_client.Client(self.http_address, timeout=TIMEOUT)
            try:
                reply = client.call(GET_SHELF, GetShelf(shelf=1).SerializeToString(),
                                    metadata=auth)
            finally:
                client.close()
            return reply.status, reply.message, {**reply.headers, **reply.trailers}
        if protocol == "connect":
            status, headers, body = self.http(
                "POST", GET_SHELF, GetShelf(shelf=1).SerializeToString(),
                {"content-type": "application/proto", "connect-protocol-version": "1", **auth})
            if status == 200:
                self.assertEqual(Shelf.FromString(body).id, 1)
                return (200, None), "", headers
            error = json.loads(body)
            return (status, error["code"]), error.get("message", ""), headers
        raise AssertionError(protocol)

    def stream(self, protocol, token):
        """One StreamBooks(shelf=1) call, read to its end: (answer, message, headers)."""
        auth = {"authorization": f"Bearer {token}"} if token else {}
        if protocol == "rest":
            status, headers, body = self.http("GET", STREAM_PATH, headers=auth)
            if status == 200:
                self.assertIsInstance(json.loads(body), list)
                return status, "", headers
            return status, json.loads(body)["message"], headers
        if protocol == "grpc":
            call = self.stream_books(StreamBooks(shelf=1), timeout=TIMEOUT,
                                     metadata=list(auth.items()))
            try:
                for _ in call:
                    pass
                return "OK", "", dict(call.trailing_metadata() or ())
            except grpc.RpcError as e:
                return e.code().name, e.details(), dict(e.trailing_metadata() or ())
        if protocol == "grpc-web":
            client = grpc_web_client.Client(self.http_address, timeout=TIMEOUT)
            try:
                reply = client.call(STREAM_BOOKS, StreamBooks(shelf=1).SerializeToString(),
                                    metadata=auth)
            finally:
                client.close()
            return reply.status, reply.message, {**reply.headers, **reply.trailers}
        if protocol == "connect":
            status, headers, body = self.http(
                "POST", STREAM_BOOKS, envelope(0, json.dumps({"shelf": "1"}).encode()),
                {"content-type": "application/connect+json", "connect-protocol-version": "1",
                 **auth})
            self.assertEqual(headers.get("content-type"), "application/connect+json", body)
            got = harness.split_frames(body)
            self.assertTrue(got and got[-1][0] == 2, f"no end-of-stream envelope: {got}")
            self.assertTrue(all(f == 0 for f, _ in got[:-1]), got)
            end = json.loads(got[-1][1])
            # The response headers (where a refusal's retry-after or www-authenticate
            # come, the stream being refused before it starts) and the end-of-stream
            # metadata (the trailers, as lists of values).
            metadata = {**headers,
                        **{k: ", ".join(v) for k, v in end.get("metadata", {}).items()}}
            if "error" not in end:
                return (status, None), "", metadata
            return (status, end["error"]["code"]), end["error"].get("message", ""), metadata
        if protocol == "websocket":
            ws = RawWebSocket(self.http_address, STREAM_PATH, auth)
            try:
                if ws.status != 101:
                    error = json.loads(ws.body)
                    return (ws.status, error["code"]), error["message"], ws.headers
                ws.send_json({})
                texts, code, reason = ws.recv_all()
                for t in texts:
                    self.assertIn("title", json.loads(t), texts)
                return (101, code), reason, ws.headers
            finally:
                ws.close_socket()
        raise AssertionError(protocol)

    def scrape(self):
        return checked_page(self, self.metrics)

    # --- the tests ---

    def test_one_quota_counts_every_protocol_once(self):
        before = self.scrape()
        for last in PROTOCOLS:
            with self.subTest(refused=last):
                token = self.key.token(jwt_util.claims(sub=f"caller-{last}"))
                order = [p for p in PROTOCOLS if p != last] + [last]
                for p in order:  # the limit: one call of each protocol
                    answer, message, _ = self.call(p, token)
                    self.assertEqual(answer, EXPECTED["ok"][p], f"{p}: {message}")
                answer, message, metadata = self.call(last, token)
                self.assertEqual(answer, EXPECTED["quota"][last], f"{last}: {message}")
                self.assertIn('quota "shelf-reads" exceeded', message)
                self.assertIn("retry-after", metadata, metadata)
        page = self.scrape()

        def delta(name, **labels):
            return page.get(name, 0, **labels) - before.get(name, 0, **labels)

        # Each refusal counted once, on the front end that answered it.
        self.assertEqual(delta("gateway_interceptor_rejections_total", front_end="grpc",
                               code="RESOURCE_EXHAUSTED"), 1)
        self.assertEqual(delta("gateway_interceptor_rejections_total", front_end="http",
                               code="RESOURCE_EXHAUSTED"), 3)
        self.assertEqual(delta("gateway_grpc_calls_finished_total", method=GET_SHELF,
                               code="RESOURCE_EXHAUSTED"), 1)
        # REST and Connect refusals are HTTP 429; gRPC-Web's is a 200 with grpc-status 8.
        self.assertEqual(delta("gateway_http_responses_total", method=GET_SHELF,
                               status="429"), 2)
        self.assertEqual(delta("gateway_http_responses_total", method=GET_SHELF,
                               status="200"), 4 * 3 + 1)
        self.assertEqual(delta("gateway_grpc_calls_finished_total", method=GET_SHELF,
                               code="OK"), 4)

    def test_one_stream_quota_counts_every_protocol_once(self):
        before = self.scrape()
        for last in STREAM_PROTOCOLS:
            with self.subTest(refused=last):
                token = self.key.token(jwt_util.claims(sub=f"streamer-{last}"))
                order = [p for p in STREAM_PROTOCOLS if p != last] + [last]
                for p in order:  # the limit: one stream of each protocol
                    answer, message, _ = self.stream(p, token)
                    self.assertEqual(answer, STREAM_EXPECTED["ok"][p], f"{p}: {message}")
                answer, message, metadata = self.stream(last, token)
                self.assertEqual(answer, STREAM_EXPECTED["quota"][last], f"{last}: {message}")
                self.assertIn('quota "book-streams" exceeded', message)
                self.assertIn("retry-after", metadata, metadata)
                # Still refused whichever protocol comes next: nothing was counted twice
                # or given back.
                following = STREAM_PROTOCOLS[(STREAM_PROTOCOLS.index(last) + 1)
                                             % len(STREAM_PROTOCOLS)]
                answer, message, _ = self.stream(following, token)
                self.assertEqual(answer, STREAM_EXPECTED["quota"][following],
                                 f"{following}: {message}")
        page = self.scrape()

        def delta(name, **labels):
            return page.get(name, 0, **labels) - before.get(name, 0, **labels)

        # 10 refusals: each protocol refused twice (once last, once following), gRPC's on
        # the gRPC front end and the four others' on the HTTP front end.
        self.assertEqual(delta("gateway_interceptor_rejections_total", front_end="grpc",
                               code="RESOURCE_EXHAUSTED"), 2)
        self.assertEqual(delta("gateway_interceptor_rejections_total", front_end="http",
                               code="RESOURCE_EXHAUSTED"), 8)

    def test_one_auth_rule_on_every_stream_protocol(self):
        for p in STREAM_PROTOCOLS:
            with self.subTest(protocol=p):
                answer, message, metadata = self.stream(p, None)
                self.assertEqual(answer, STREAM_EXPECTED["unauthenticated"][p], message)
                self.assertIn("missing credentials", message)
                self.assertIn('Bearer realm="gateway"', metadata.get("www-authenticate", ""),
                              metadata)
        token = self.key.token(jwt_util.claims(sub="stream-auth"))
        for p in STREAM_PROTOCOLS:
            self.assertEqual(self.stream(p, token)[0], STREAM_EXPECTED["ok"][p], p)

    def test_one_auth_rule_on_every_protocol(self):
        expired = self.key.token(jwt_util.claims(sub="late", ttl=-600))
        for p in PROTOCOLS:
            with self.subTest(protocol=p):
                answer, message, metadata = self.call(p, None)
                self.assertEqual(answer, EXPECTED["unauthenticated"][p], message)
                self.assertIn("missing credentials", message)
                self.assertIn('Bearer realm="gateway"', metadata.get("www-authenticate", ""),
                              metadata)
                answer, message, _ = self.call(p, expired)
                self.assertEqual(answer, EXPECTED["unauthenticated"][p], message)
                self.assertIn("token expired", message)
        # Refused before the quota: a caller's refused calls use none of its limit.
        token = self.key.token(jwt_util.claims(sub="late"))
        for p in PROTOCOLS:
            self.assertEqual(self.call(p, token)[0], EXPECTED["ok"][p], p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
