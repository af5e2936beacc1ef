"""Integration tests of what the admin listener adds to a gateway: the admin API stays on the
admin listener unless the config exposes it (server reflection on the public listeners lists
only what they serve), and a gateway whose services all come from registrations starts with
an empty config.

Real processes on loopback: gatewayd, the bookstore and echo backends, gatewayctl, grpcio
and http.client clients. Every call carries a timeout; every wait is bounded.
"""

import http.client
import os
import subprocess
import time
import unittest

import grpc

import harness
import registry_test
from registry_test import ECHO_HTTP_V1, GATEWAYCTL, REFLECTION_SET, TIMEOUT, echo_request

TOKEN = "s3cret-token"
REGISTRY = "gateway.admin.v1.Registry"
LIST_SERVICES = f"/{REGISTRY}/ListServices"

_REFLECTION = harness.load_messages(REFLECTION_SET)
ReflectionRequest = _REFLECTION["grpc.reflection.v1alpha.ServerReflectionRequest"]
ReflectionResponse = _REFLECTION["grpc.reflection.v1alpha.ServerReflectionResponse"]


class Gateway(registry_test.Gateway):
    """registry_test's gateway helpers (ctl, grpc_call, rest) over a config of the test's."""

    def __init__(self, ws, config, token_file=None, name="gatewayd"):  # noqa: super not called
        self.ws = ws
        self.config = config
        self.token_file = token_file
        self.name = name
        self.start()


def reflect(address, **request):
    """One server reflection request to `address`; returns the response."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=ReflectionResponse.FromString)
        return list(call(iter([ReflectionRequest(**request)]), timeout=TIMEOUT))[0]


def listed_services(address):
    return [s.name for s in reflect(address, list_services="").list_services_response.service]


def rest_with_headers(gw, method, path, headers=None):
    """Like Gateway.rest, also returning the response headers (lower-case names)."""
    host, port = gw.http_address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def bookstore_config(bookstore, echo, token_file, admin_extra=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends:
  - {{name: bookstore, target: "ipv4:{bookstore}"}}
  - {{name: echo, target: "ipv4:{echo}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
runtime: {{shutdown_grace: 2s, worker_threads: 2}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2, forwarded_request_headers: [authorization]}}
admin_listener: {{address: "127.0.0.1:0", token_file: "{token_file}"{admin_extra}}}
"""


class AdminSurfaceTest(unittest.TestCase):
    """The admin API on the admin listener only, unless expose_on_public_listeners."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        self.token_file = self.ws.write("admin.token", TOKEN + "\n")

    def gateway(self, admin_extra=""):
        return Gateway(self.ws, bookstore_config(self.bookstore.address, self.echo.address,
                                                 self.token_file, admin_extra),
                       token_file=self.token_file)

    def call_registry(self, address, token=None):
        """ListServices on `address` (empty request); returns (code, trailing metadata)."""
        metadata = [("authorization", f"Bearer {token}")] if token else None
        with grpc.insecure_channel(address) as channel:
            try:
                channel.unary_unary(LIST_SERVICES)(b"", timeout=TIMEOUT, metadata=metadata)
                return grpc.StatusCode.OK, {}
            except grpc.RpcError as e:
                return e.code(), dict(e.trailing_metadata() or ())

    def test_admin_api_is_served_on_the_admin_listener_only_by_default(self):
        gw = self.gateway()
        # Public gRPC listener: not routed, even with the right token.
        code, _ = self.call_registry(gw.grpc_address, TOKEN)
        self.assertIn(code, (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND))
        # Public HTTP listener: the admin REST routes do not exist.
        status, _, body = rest_with_headers(gw, "GET", "/admin/v1/services",
                                            {"authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 404, body)
        # Reflection on the public listener lists what it serves, not the admin API.
        names = listed_services(gw.grpc_address)
        self.assertIn("bookstore.v1.Bookstore", names)
        self.assertNotIn(REGISTRY, names)
        missing = reflect(gw.grpc_address, file_containing_symbol=REGISTRY)
        self.assertEqual(missing.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
        # A registered service is listed there as soon as it is served.
        code, out = gw.ctl("register", "gateway.test.v1.Echo",
                           f"--descriptor-set={ECHO_HTTP_V1}", "--backend=echo",
                           "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("gateway.test.v1.Echo", listed_services(gw.grpc_address))
        self.assertNotIn(REGISTRY, listed_services(gw.grpc_address))
        # The admin listener serves it and lists it, and wants the token.
        self.assertIn(REGISTRY, listed_services(gw.admin_address))
        files = reflect(gw.admin_address, file_containing_symbol=REGISTRY)
        self.assertGreaterEqual(len(files.file_descriptor_response.file_descriptor_proto), 1)
        self.assertEqual(self.call_registry(gw.admin_address, TOKEN)[0], grpc.StatusCode.OK)
        code, trailers = self.call_registry(gw.admin_address)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(trailers.get("www-authenticate"), 'Bearer realm="gatewayd-admin"')
        code, trailers = self.call_registry(gw.admin_address, "wrong")
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn('error="invalid_token"', trailers.get("www-authenticate", ""))

    def test_exposed_admin_api_is_routed_and_still_requires_the_token(self):
        gw = self.gateway(", expose_on_public_listeners: true")
        self.assertIn("admin API also routed on the public listeners", gw.process.output())
        self.assertEqual(self.call_registry(gw.grpc_address, TOKEN)[0], grpc.StatusCode.OK)
        self.assertEqual(self.call_registry(gw.grpc_address)[0],
                         grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.call_registry(gw.grpc_address, "wrong")[0],
                         grpc.StatusCode.UNAUTHENTICATED)
        status, _, body = rest_with_headers(gw, "GET", "/admin/v1/services",
                                            {"authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 200, body)
        status, headers, body = rest_with_headers(gw, "GET", "/admin/v1/services")
        self.assertEqual(status, 401, body)
        self.assertEqual(headers.get("www-authenticate"), 'Bearer realm="gatewayd-admin"')
        status, headers, body = rest_with_headers(gw, "GET", "/admin/v1/services",
                                                  {"authorization": "Bearer wrong"})
        self.assertEqual(status, 401, body)
        self.assertIn('error="invalid_token"', headers.get("www-authenticate", ""))
        self.assertIn(REGISTRY, listed_services(gw.grpc_address))

    def test_exposing_without_a_token_is_a_config_error(self):
        path = self.ws.write("exposed.yaml", bookstore_config(
            self.bookstore.address, self.echo.address, self.token_file,
            ", expose_on_public_listeners: true").replace(
                f'token_file: "{self.token_file}"', 'registry_directory: "reg"'))
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn("admin_listener.expose_on_public_listeners: requires token_file",
                      result.stderr)


class RegistrationsOnlyTest(unittest.TestCase):
    """A gateway with an admin listener and nothing of its own in the config."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.echo = self.ws.echo_backend()

    def config(self, admin=True):
        return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: []
services: []
backends:
  - {{name: echo, target: "ipv4:{self.echo.address}"}}
runtime: {{shutdown_grace: 2s, worker_threads: 2}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2}}
""" + ('admin_listener: {address: "127.0.0.1:0"}\n' if admin else "")

    def readyz(self, gw):
        status, _, body = rest_with_headers(gw, "GET", "/readyz")
        return status, body.decode()

    def wait_ready(self, gw):
        deadline = time.monotonic() + TIMEOUT
        status, body = self.readyz(gw)
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            status, body = self.readyz(gw)
        return status, body

    def test_starts_empty_and_serves_what_is_registered(self):
        gw = Gateway(self.ws, self.config())
        self.assertIn("grpc listening on", gw.process.output())
        status, body = self.wait_ready(gw)
        self.assertEqual(status, 200, body)
        with self.assertRaises(grpc.RpcError) as raised:
            gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"x"))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        code, out = gw.ctl("register", "gateway.test.v1.Echo",
                           f"--descriptor-set={ECHO_HTTP_V1}", "--backend=echo",
                           "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn(b"registered", gw.grpc_call("/gateway.test.v1.Echo/Unary",
                                                  echo_request(b"registered")))
        status, body = gw.rest("POST", "/v1/echo", {"payload": "aGk="})
        self.assertEqual(status, 200, body)
        status, body = self.wait_ready(gw)
        self.assertEqual(status, 200, body)

    def test_without_an_admin_listener_it_says_there_is_nothing_to_serve(self):
        path = self.ws.write("empty.yaml", self.config(admin=False))
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn("descriptor_sets: required", result.stderr)
        self.assertIn("nothing to serve", result.stderr)
        self.assertIn("admin_listener", result.stderr)


if __name__ == "__main__":
    unittest.main()
