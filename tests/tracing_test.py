"""Integration tests of tracing: a real gatewayd between real clients (REST, gRPC,
gRPC-Web, Connect) and the echo backend, exporting spans to a collector written here (an HTTP
server that decodes each OTLP ExportTraceServiceRequest with the gateway's own descriptor
set of the OTLP schema). Asserts the chain incoming traceparent -> the gateway's server
span -> one client span per backend attempt -> the traceparent the backend saw. Every call
and wait is bounded."""

import http.client
import http.server
import json
import os
import struct
import sys
import threading
import time
import unittest

import grpc

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tools/grpcweb"))
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools/grpcweb"))
import grpc_web_client as gw  # noqa: E402

MSGS = harness.load_messages(harness.ECHO_SET)
Req = MSGS["gateway.test.v1.EchoRequest"]
Resp = MSGS["gateway.test.v1.EchoResponse"]
OTLP = harness.load_messages(os.path.join(harness.ROOT, "proto/otlp_trace_proto.pb"))
ExportRequest = OTLP["opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"]
SpanKind = OTLP["opentelemetry.proto.trace.v1.Span"].SpanKind
UNARY = "/gateway.test.v1.Echo/Unary"
TIMEOUT = 20
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SERVER = 2  # Span.SpanKind SPAN_KIND_SERVER
CLIENT = 3  # SPAN_KIND_CLIENT
STATUS_ERROR = 2


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1: keeps every span it is sent, with its resource."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []
        self.requests = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportRequest.FromString(body)
                with collector.lock:
                    collector.requests.append((self.path, self.headers["content-type"]))
                    for rs in request.resource_spans:
                        service = {kv.key: kv.value.string_value
                                   for kv in rs.resource.attributes}.get("service.name")
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                collector.spans.append((service, span))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def trace(self, trace_id_hex, count, timeout=10.0):
        """The spans of a trace, once `count` have arrived (then a short wait for extras)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [s for _, s in self.spans if s.trace_id.hex() == trace_id_hex]
            if len(found) >= count:
                time.sleep(0.2)
                with self.lock:
                    return [s for _, s in self.spans if s.trace_id.hex() == trace_id_hex]
            time.sleep(0.02)
        raise AssertionError(f"{count} spans of trace {trace_id_hex} did not arrive; have "
                             f"{len(found)}")


def attributes(span):
    out = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def backend_saw(message, key):
    return [m.split("=", 1)[1] for m in message.metadata if m.split("=", 1)[0] == key]


def parse_traceparent(value):
    version, trace_id, span_id, flags = value.split("-")
    return version, trace_id, span_id, flags


def config(backend, collector_url):
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
retries:
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], max_attempts: 2, retry_on: [UNAVAILABLE],
       backoff_base: 1ms, backoff_max: 2ms}}
tracing:
  collector_url: "{collector_url}"
  service_name: edge-gateway
  export_interval: 0.05s
"""


class TracingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.collector = Collector()
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        cls.backend_port = int(cls.backend.address.rsplit(":", 1)[1])
        cls.gateway = cls.ws.gatewayd(config(cls.backend.address, cls.collector.url))
        cls.http = harness.http_address(cls.gateway)
        cls.channel = grpc.insecure_channel(cls.gateway.address)
        cls.unary = cls.channel.unary_unary(UNARY, request_serializer=Req.SerializeToString,
                                            response_deserializer=Resp.FromString)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.ws.close()
        cls.collector.close()

    def rest(self, body, headers=None):
        conn = http.client.HTTPConnection(*self.http.rsplit(":", 1), timeout=TIMEOUT)
        try:
            conn.request("POST", UNARY, body=json.dumps(body).encode(),
                         headers={"content-type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def assert_chain(self, spans, incoming_parent_hex, backend_traceparent, attempts=1):
        """One server span (child of `incoming_parent_hex`, or a root) and `attempts` client
        spans, children of it; the last attempt's id is the one the backend saw."""
        servers = [s for s in spans if s.kind == SERVER]
        clients = [s for s in spans if s.kind == CLIENT]
        self.assertEqual(len(servers), 1, spans)
        self.assertEqual(len(clients), attempts, spans)
        server = servers[0]
        self.assertEqual(server.parent_span_id.hex(), incoming_parent_hex)
        self.assertEqual(len(server.span_id), 8)
        self.assertNotEqual(server.span_id, bytes(8))
        for c in clients:
            self.assertEqual(c.parent_span_id, server.span_id)
            self.assertEqual(c.trace_id, server.trace_id)
            self.assertGreaterEqual(c.start_time_unix_nano, server.start_time_unix_nano)
            self.assertLessEqual(c.end_time_unix_nano, server.end_time_unix_nano)
        self.assertEqual(len({c.span_id for c in clients} | {server.span_id}), attempts + 1)
        if backend_traceparent is not None:
            version, trace_id, span_id, flags = parse_traceparent(backend_traceparent)
            self.assertEqual((version, trace_id, flags), ("00", server.trace_id.hex(), "01"))
            last = max(clients, key=lambda c: c.start_time_unix_nano)
            self.assertEqual(span_id, last.span_id.hex())
        return server, clients

    def test_rest_call_continues_the_incoming_trace(self):
        status, out = self.rest({"payload": "aGk="}, {
            "traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual(status, 200, out)
        saw = json.loads(out)["metadata"]
        tp = [m.split("=", 1)[1] for m in saw if m.startswith("traceparent=")]
        self.assertEqual(len(tp), 1, saw)
        spans = self.collector.trace(TRACE, 2)
        server, (client,) = self.assert_chain(spans, PARENT, tp[0])
        self.assertEqual(server.name, "POST gateway.test.v1.Echo/Unary")
        self.assertEqual(server.trace_state, "congo=t61rcWkgMzE")
        a = attributes(server)
        self.assertEqual(a["gateway.front_end"], "http")
        self.assertEqual(a["http.request.method"], "POST")
        self.assertEqual(a["url.path"], UNARY)
        self.assertEqual(a["http.response.status_code"], 200)
        self.assertEqual(a["rpc.system"], "grpc")
        self.assertEqual(a["rpc.service"], "gateway.test.v1.Echo")
        self.assertEqual(a["rpc.method"], "Unary")
        self.assertEqual(a["rpc.grpc.status_code"], 0)
        self.assertEqual(a["client.address"], "127.0.0.1")
        self.assertEqual(a["server.address"], "127.0.0.1")
        self.assertEqual(a["server.port"], int(self.http.rsplit(":", 1)[1]))
        self.assertNotEqual(server.status.code, STATUS_ERROR)
        c = attributes(client)
        self.assertEqual(client.name, "gateway.test.v1.Echo/Unary")
        self.assertEqual(c["server.address"], "127.0.0.1")
        self.assertEqual(c["server.port"], self.backend_port)
        self.assertEqual(c["rpc.grpc.status_code"], 0)
        with self.collector.lock:
            services = {svc for svc, s in self.collector.spans if s.trace_id.hex() == TRACE}
            path, content_type = self.collector.requests[0]
        self.assertEqual(services, {"edge-gateway"})
        self.assertEqual((path, content_type), ("/v1/traces", "application/x-protobuf"))

    def test_grpc_call_without_traceparent_starts_a_trace(self):
        reply = self.unary(Req(payload=b"grpc"), timeout=TIMEOUT)
        (tp,) = backend_saw(reply, "traceparent")
        _, trace_id, _, _ = parse_traceparent(tp)
        spans = self.collector.trace(trace_id, 2)
        server, _ = self.assert_chain(spans, "", tp)
        self.assertEqual(server.name, "gateway.test.v1.Echo/Unary")
        a = attributes(server)
        self.assertEqual(a["gateway.front_end"], "grpc")
        self.assertEqual(a["rpc.grpc.status_code"], 0)
        self.assertEqual(a["client.address"], "127.0.0.1")
        self.assertEqual(a["server.port"], int(self.gateway.address.rsplit(":", 1)[1]))
        self.assertEqual(a["rpc.method"], "Unary")

    def test_grpc_call_with_traceparent_and_grpc_web_call(self):
        trace = "0af7651916cd43dd8448eb211c80319c"
        reply = self.unary(Req(payload=b"g"), timeout=TIMEOUT,
                           metadata=[("traceparent", f"00-{trace}-b7ad6b7169203331-01")])
        (tp,) = backend_saw(reply, "traceparent")
        self.assert_chain(self.collector.trace(trace, 2), "b7ad6b7169203331", tp)

        web_trace = "1af7651916cd43dd8448eb211c80319d"
        client = gw.Client(self.http)
        try:
            web = client.call(UNARY, Req(payload=b"web").SerializeToString(),
                              metadata={"traceparent": f"00-{web_trace}-c7ad6b7169203331-01"})
        finally:
            client.close()
        self.assertEqual(web.status, 0)
        (tp,) = backend_saw(Resp.FromString(web.messages[0]), "traceparent")
        server, _ = self.assert_chain(self.collector.trace(web_trace, 2), "c7ad6b7169203331", tp)
        self.assertEqual(attributes(server)["gateway.front_end"], "grpc-web")

    def connect(self, path, body, content_type, headers):
        conn = http.client.HTTPConnection(*self.http.rsplit(":", 1), timeout=TIMEOUT)
        try:
            conn.request("POST", path, body=body,
                         headers={"content-type": content_type, **headers})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_connect_calls_continue_the_incoming_trace(self):
        trace = "5bf92f3577b34da6a3ce929d0e0e4737"
        status, out = self.connect(UNARY, json.dumps({"payload": "aGk="}), "application/json", {
            "connect-protocol-version": "1", "traceparent": f"00-{trace}-10f067aa0ba902b7-01"})
        self.assertEqual(status, 200, out)
        (tp,) = [m.split("=", 1)[1] for m in json.loads(out)["metadata"]
                 if m.startswith("traceparent=")]
        server, _ = self.assert_chain(self.collector.trace(trace, 2), "10f067aa0ba902b7", tp)
        self.assertEqual(server.name, "gateway.test.v1.Echo/Unary")  # an RPC, as gRPC-Web's
        a = attributes(server)
        self.assertEqual(a["gateway.front_end"], "connect")
        self.assertEqual(a["url.path"], UNARY)
        self.assertEqual(a["http.response.status_code"], 200)
        self.assertEqual(a["rpc.grpc.status_code"], 0)

        # A Connect stream that fails after a message: the span has the backend's status.
        trace = "6bf92f3577b34da6a3ce929d0e0e4738"
        req = Req(payload=b"a", count=3, fail_code=13, fail_message="gone", fail_after=1)
        data = req.SerializeToString()
        status, out = self.connect(
            "/gateway.test.v1.Echo/ServerStream", struct.pack(">BI", 0, len(data)) + data,
            "application/connect+proto", {"traceparent": f"00-{trace}-20f067aa0ba902b7-01"})
        self.assertEqual(status, 200, out)
        self.assertIn(b'"internal"', out)
        server, _ = self.assert_chain(self.collector.trace(trace, 2), "20f067aa0ba902b7", None)
        a = attributes(server)
        self.assertEqual(a["gateway.front_end"], "connect")
        self.assertEqual(a["rpc.grpc.status_code"], 13)
        self.assertEqual(server.status.code, STATUS_ERROR)
        self.assertIn("gone", server.status.message)

    def test_unsampled_incoming_trace_is_propagated_not_exported(self):
        trace = "2af7651916cd43dd8448eb211c80319e"
        reply = self.unary(Req(payload=b"u"), timeout=TIMEOUT,
                           metadata=[("traceparent", f"00-{trace}-d7ad6b7169203331-00")])
        (tp,) = backend_saw(reply, "traceparent")
        version, trace_id, span_id, flags = parse_traceparent(tp)
        self.assertEqual((version, trace_id, flags), ("00", trace, "00"))
        self.assertNotEqual(span_id, "d7ad6b7169203331")  # the gateway's attempt, not the client
        # A sampled call made after it is exported; the unsampled one never is.
        self.unary(Req(payload=b"after"), timeout=TIMEOUT,
                   metadata=[("traceparent", f"00-{TRACE[:-4]}beef-{PARENT}-01")])
        self.collector.trace(TRACE[:-4] + "beef", 2)
        with self.collector.lock:
            self.assertEqual([s for _, s in self.collector.spans if s.trace_id.hex() == trace], [])

    def test_invalid_traceparent_starts_a_new_trace(self):
        bad = f"00-{'0' * 32}-{PARENT}-01"
        status, out = self.rest({"payload": "aGk="}, {"traceparent": bad})
        self.assertEqual(status, 200, out)
        (tp,) = [m.split("=", 1)[1] for m in json.loads(out)["metadata"]
                 if m.startswith("traceparent=")]
        _, trace_id, _, _ = parse_traceparent(tp)
        self.assertNotEqual(trace_id, "0" * 32)
        self.assert_chain(self.collector.trace(trace_id, 2), "", tp)

    def test_retry_makes_two_attempt_spans(self):
        trace = "3af7651916cd43dd8448eb211c80319f"
        status, out = self.rest({"payload": "aGk=", "failCode": 14, "failMessage": "down"},
                                {"traceparent": f"00-{trace}-{PARENT}-01"})
        self.assertEqual(status, 503, out)
        server, clients = self.assert_chain(self.collector.trace(trace, 3), PARENT, None,
                                            attempts=2)
        self.assertEqual(attributes(server)["gateway.attempts"], 2)
        self.assertEqual(attributes(server)["http.response.status_code"], 503)
        self.assertEqual(attributes(server)["rpc.grpc.status_code"], 14)
        self.assertEqual(server.status.code, STATUS_ERROR)
        for c in clients:
            self.assertEqual(c.status.code, STATUS_ERROR)
            self.assertEqual(c.status.message, "down")
            self.assertEqual(attributes(c)["rpc.grpc.status_code"], 14)
        self.assertEqual(sorted(attributes(c)["gateway.attempt"] for c in clients), [1, 2])


if __name__ == "__main__":
    unittest.main()
