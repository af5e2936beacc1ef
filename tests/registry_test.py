"""Integration tests of the descriptor registry: gatewayd with an admin listener, real
backends (the bookstore example from the config, the echo backend registered at run time),
gatewayctl as the client, gRPC (grpcio) and REST (http.client) calls through the gateway.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

import grpc

import harness

GATEWAYCTL = os.path.join(harness.ROOT, "tools/gatewayctl/gatewayctl")
ECHO_HTTP_V1 = os.path.join(harness.ROOT, "gateway/registry/testdata/echo_http_v1_proto.pb")
ECHO_HTTP_V2 = os.path.join(harness.ROOT, "gateway/registry/testdata/echo_http_v2_proto.pb")
REFLECTION_SET = os.path.join(harness.ROOT, "proto/grpc_reflection_proto.pb")
TIMEOUT = 10
_ADMIN = re.compile(rb"admin listening on (\S+)")


def wait_for(process, pattern, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(process.log_path, "rb") as f:
            m = pattern.search(f.read())
        if m:
            return m.group(1).decode()
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n" + process.output())
        time.sleep(0.02)
    raise RuntimeError(f"{process.name} did not announce:\n" + process.output())


_reflection_messages = {}


def reflection_messages():
    """The grpc.reflection.v1alpha messages (built once: a second build of the same file
    into protobuf's pool is refused)."""
    if not _reflection_messages:
        _reflection_messages.update(harness.load_messages(REFLECTION_SET))
    return _reflection_messages


def echo_request(payload):
    # gateway.test.v1.EchoRequest{payload} (field 1, bytes).
    return b"\x0a" + bytes([len(payload)]) + payload


class Gateway:
    def __init__(self, ws, bookstore, echo, registry_dir=None, name="gatewayd", redis=None,
                 token_file=None, extra="", admin_options=""):
        self.ws = ws
        store = (f'registry_redis: "{redis}"' if redis else
                 f'registry_directory: "{registry_dir}"')
        if token_file:
            store += f', token_file: "{token_file}"'
        if admin_options:
            store += f", {admin_options}"
        self.token_file = token_file
        self.config = f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends:
  - {{name: bookstore, target: "ipv4:{bookstore}"}}
  - {{name: echo, target: "ipv4:{echo}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
runtime: {{shutdown_grace: 5s, worker_threads: 2}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2, forwarded_request_headers: [authorization]}}
admin_listener: {{address: "127.0.0.1:0", {store}}}
{extra}"""
        self.name = name
        self.start()

    def start(self):
        self.process = self.ws.gatewayd(self.config, name=self.name)
        self.grpc_address = self.process.address
        self.http_address = harness.http_address(self.process)
        self.admin_address = wait_for(self.process, _ADMIN)
        self.channel = grpc.insecure_channel(self.grpc_address)

    def stop(self):
        self.channel.close()
        return self.process.stop()

    def ctl(self, *args):
        token = [f"--token-file={self.token_file}"] if self.token_file else []
        result = subprocess.run([GATEWAYCTL, f"--admin={self.admin_address}", *token, *args],
                                capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout + result.stderr

    def grpc_call(self, path, request=b""):
        call = self.channel.unary_unary(path)
        return call(request, timeout=TIMEOUT)

    def rest(self, method, path, body=None, headers=None):
        host, port = self.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = dict(headers or {})
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


class LoadLoop:
    """REST and gRPC calls of the bookstore, back to back on several threads, counting
    failures, until stopped."""

    def __init__(self, gateway, threads=2):
        self.gateway = gateway
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads * 2)]
        for t in self.threads:
            t.start()

    def _run(self, index):
        host, port = self.gateway.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        call = self.gateway.channel.unary_unary("/bookstore.v1.Bookstore/ListShelves")
        while not self.stop_event.is_set():
            try:
                if index % 2 == 0:
                    conn.request("GET", "/v1/shelves")
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                    what = f"REST {resp.status}"
                else:
                    call(b"", timeout=TIMEOUT)
                    ok, what = True, ""
            except Exception as e:  # noqa: BLE001 - every failure counts
                ok, what = False, repr(e)
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
            with self.lock:
                self.calls += 1
                if not ok:
                    self.failures.append(what)
        conn.close()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)
        return self.calls, self.failures


class RegistryTest(unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        self.registry_dir = os.path.join(self.ws.dir, "registry")
        self.gw = Gateway(self.ws, self.bookstore.address, self.echo.address, self.registry_dir)

    def tearDown(self):
        self.ws.close()

    def register_echo(self, descriptor_set=ECHO_HTTP_V1, *extra):
        return self.gw.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={descriptor_set}",
                           "--backend=echo", "--owner=platform-test", *extra)

    def assert_echo_serves(self, rest_path="/v1/echo"):
        response = self.gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"hello"))
        self.assertIn(b"hello", response)
        status, body = self.gw.rest("POST", rest_path, {"payload": "aGk="})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["payload"], "aGk=")

    def test_register_under_load_drops_no_call_and_new_routes_answer_at_once(self):
        load = LoadLoop(self.gw)
        time.sleep(1.0)
        code, out = self.register_echo()
        self.assertEqual(code, 0, out)
        # Right after the register call returns, with no wait.
        self.assert_echo_serves()
        time.sleep(1.0)
        calls, failures = load.stop()
        print(f"\nload loop across the register: {calls} calls, {len(failures)} failed",
              file=sys.stderr)
        self.assertEqual(failures, [])
        self.assertGreater(calls, 50)
        self.assertIn("gateway.test.v1.Echo: registered v1 (backend echo, owner platform-test)",
                      out)
        self.assertIn("+ route POST /v1/echo -> gateway.test.v1.Echo.Unary", out)

    def test_replace_with_changed_http_rule_needs_force(self):
        self.assertEqual(self.register_echo()[0], 0)
        code, out = self.gw.ctl("diff", "gateway.test.v1.Echo", f"--descriptor-set={ECHO_HTTP_V2}",
                                "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 5, out)  # breaking changes
        self.assertIn("dry run (the gateway was not changed): gateway.test.v1.Echo would "
                      "become v2", out)
        self.assertIn("+ route POST /v2/echo -> gateway.test.v1.Echo.Unary", out)
        self.assertIn("- route POST /v1/echo -> gateway.test.v1.Echo.Unary", out)
        self.assertIn("! gateway.test.v1.Echo.Unary: http rule changed POST /v1/echo body=* -> "
                      "POST /v2/echo body=*", out)
        code, out = self.register_echo(ECHO_HTTP_V2)
        self.assertEqual(code, 1, out)
        self.assertIn('breaking changes (to accept them: gatewayctl --force, or "force": true '
                      "in the admin API request):\n"
                      "gateway.test.v1.Echo.Unary: http rule changed POST /v1/echo body=* -> "
                      "POST /v2/echo body=*", out)
        self.assert_echo_serves("/v1/echo")
        code, out = self.register_echo(ECHO_HTTP_V2, "--force")
        self.assertEqual(code, 0, out)
        self.assert_echo_serves("/v2/echo")
        self.assertEqual(self.gw.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 404)
        code, out = self.gw.ctl("rollback", "gateway.test.v1.Echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("rolled back as v3", out)
        self.assert_echo_serves("/v1/echo")

    def test_identical_registration_is_a_no_op_that_says_so(self):
        code, out = self.register_echo()
        self.assertEqual(code, 0, out)
        self.assertIn("registered v1", out)
        files = sorted(os.listdir(self.registry_dir))
        code, out = self.register_echo()
        self.assertEqual(code, 0, out)
        self.assertIn("gateway.test.v1.Echo: unchanged, v1 is already served", out)
        self.assertNotIn("registered v2", out)
        self.assertEqual(sorted(os.listdir(self.registry_dir)), files)
        code, out = self.gw.ctl("show", "gateway.test.v1.Echo", "--versions")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        self.assert_echo_serves()

    def test_remove_stops_serving(self):
        self.assertEqual(self.register_echo()[0], 0)
        code, out = self.gw.ctl("remove", "gateway.test.v1.Echo", "--owner=someone-else")
        self.assertEqual(code, 1, out)
        self.assertIn('owned by "platform-test", not "someone-else"', out)
        code, out = self.gw.ctl("remove", "gateway.test.v1.Echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("- service gateway.test.v1.Echo", out)
        with self.assertRaises(grpc.RpcError) as raised:
            self.gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"x"))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(self.gw.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 404)
        # The config's service is untouched.
        self.assertEqual(self.gw.rest("GET", "/v1/shelves")[0], 200)

    def test_restart_restores_the_registered_state(self):
        self.assertEqual(self.register_echo()[0], 0)
        self.assertEqual(self.register_echo(ECHO_HTTP_V2, "--force")[0], 0)
        _, before = self.gw.ctl("list")
        self.assertEqual(self.gw.stop(), 0)
        self.gw.start()
        _, after = self.gw.ctl("list")
        self.assertEqual(before, after)
        self.assertIn("gateway.test.v1.Echo", after)
        self.assert_echo_serves("/v2/echo")
        self.assertIn("(1 registered services)", self.gw.process.output())
        code, out = self.gw.ctl("show", "gateway.test.v1.Echo", "--versions")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(out.strip().splitlines()), 2, out)

    def test_register_from_reflection_of_a_backend(self):
        code, out = self.gw.ctl("register", "gateway.test.v1.Echo",
                                f"--from-reflection={self.echo.address}", "--backend=echo",
                                "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("files from reflection at", out)
        self.assertIn("+ method /gateway.test.v1.Echo/ServerStream", out)
        response = self.gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"reflected"))
        self.assertIn(b"reflected", response)
        code, out = self.gw.ctl("register", "no.such.Service",
                                f"--from-reflection={self.echo.address}", "--backend=echo",
                                "--owner=platform-test")
        self.assertEqual(code, 1, out)
        self.assertIn("has no service no.such.Service", out)

    def test_server_reflection_through_the_gateway_lists_registered_services(self):
        messages = reflection_messages()
        Request = messages["grpc.reflection.v1alpha.ServerReflectionRequest"]
        Response = messages["grpc.reflection.v1alpha.ServerReflectionResponse"]
        call = self.gw.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=Response.FromString)

        def ask(**kwargs):
            return list(call(iter([Request(**kwargs)]), timeout=TIMEOUT))[0]

        names = [s.name for s in ask(list_services="").list_services_response.service]
        self.assertIn("bookstore.v1.Bookstore", names)
        self.assertNotIn("gateway.test.v1.Echo", names)
        self.assertEqual(self.register_echo()[0], 0)
        names = [s.name for s in ask(list_services="").list_services_response.service]
        self.assertIn("gateway.test.v1.Echo", names)
        files = ask(file_containing_symbol="gateway.test.v1.Echo").file_descriptor_response
        self.assertGreaterEqual(len(files.file_descriptor_proto), 2)  # with its imports
        missing = ask(file_containing_symbol="no.such.Thing")
        self.assertEqual(missing.error_response.error_code, 5)  # NOT_FOUND
        # A reflection client (gatewayctl) pointed at the gateway itself.
        code, out = self.gw.ctl("diff", "gateway.test.v1.Echo",
                                f"--from-reflection={self.gw.grpc_address}", "--backend=echo",
                                "--owner=platform-test")
        self.assertEqual(code, 0, out)
        # The same descriptors as the registered version: nothing to change.
        self.assertIn("gateway.test.v1.Echo: unchanged, v1 is already served", out)

    def test_register_from_proto_sources_runs_protoc(self):
        source = os.path.join(harness.ROOT, "gateway/registry/testdata/echo_http_v1.proto")
        code, out = self.gw.ctl("diff", "gateway.test.v1.Echo", f"--proto={source}",
                                f"--proto-path={harness.ROOT}",
                                f"--proto-path={os.path.join(harness.ROOT, 'proto')}",
                                "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("dry run (the gateway was not changed): gateway.test.v1.Echo would "
                      "become v1", out)
        self.assertIn("+ route POST /v1/echo -> gateway.test.v1.Echo.Unary", out)

    def test_refusals_have_clear_messages_and_exit_codes(self):
        code, out = self.gw.ctl("register", "gateway.test.v1.Echo",
                                f"--descriptor-set={ECHO_HTTP_V1}", "--backend=nope",
                                "--owner=t")
        self.assertEqual(code, 1, out)
        self.assertIn('backend: unknown backend "nope" (known: bookstore, echo)', out)
        code, out = self.gw.ctl("register", "bookstore.v1.Bookstore",
                                f"--descriptor-set={harness.BOOKSTORE_SET}", "--backend=echo",
                                "--owner=t")
        self.assertEqual(code, 1, out)
        self.assertIn("is defined in the gateway config", out)
        code, out = self.gw.ctl("show", "no.such.Service")
        self.assertEqual(code, 1, out)
        self.assertIn("service no.such.Service is not registered", out)
        code, out = self.gw.ctl("frobnicate")
        self.assertEqual(code, 2, out)
        code, out = subprocess.run([GATEWAYCTL, f"--admin=127.0.0.1:{harness.free_port()}",
                                    "--timeout=2", "list"], capture_output=True, text=True,
                                   timeout=30).returncode, ""
        self.assertEqual(code, 3)


class PythonBackend:
    """A Python grpcio backend of gateway.test.v1.Echo (echo_http_v1.proto, compiled with
    protoc --python_out) that serves server reflection as the grpcio-reflection package does:
    each file is FileDescriptor.CopyToProto of Python's default pool, which omits json_name."""

    def __init__(self, ws):
        out = os.path.join(ws.dir, "pygen")
        os.makedirs(out, exist_ok=True)
        # The .proto sources: in the runfiles under Bazel, else in the source tree.
        root = harness.ROOT
        if not os.path.exists(os.path.join(root, "gateway/registry/testdata/echo_http_v1.proto")):
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(["protoc", f"-I{root}", f"-I{os.path.join(root, 'proto')}",
                        f"--python_out={out}", "gateway/registry/testdata/echo_http_v1.proto",
                        "google/api/annotations.proto", "google/api/http.proto"],
                       check=True, capture_output=True, timeout=60)
        sys.path.insert(0, out)
        import importlib
        echo_pb2 = importlib.import_module("gateway.registry.testdata.echo_http_v1_pb2")
        from google.protobuf import descriptor_pb2, descriptor_pool
        pool = descriptor_pool.Default()
        messages = reflection_messages()
        Request = messages["grpc.reflection.v1alpha.ServerReflectionRequest"]
        Response = messages["grpc.reflection.v1alpha.ServerReflectionResponse"]

        def file_response(response, file):
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            response.file_descriptor_response.file_descriptor_proto.append(
                proto.SerializeToString())

        def reflection(requests, context):
            for request in requests:
                response = Response(original_request=request)
                which = request.WhichOneof("message_request")
                try:
                    if which == "file_by_filename":
                        file_response(response, pool.FindFileByName(request.file_by_filename))
                    elif which == "file_containing_symbol":
                        file_response(response, pool.FindFileContainingSymbol(
                            request.file_containing_symbol))
                    elif which == "list_services":
                        for name in ("gateway.test.v1.Echo",
                                     "grpc.reflection.v1alpha.ServerReflection"):
                            response.list_services_response.service.add(name=name)
                    else:
                        response.error_response.error_code = 12  # UNIMPLEMENTED
                except KeyError:
                    response.error_response.error_code = 5  # NOT_FOUND
                    response.error_response.error_message = "not found"
                yield response

        def unary(request, context):
            return echo_pb2.EchoResponse(payload=request.payload, index=7)

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler("grpc.reflection.v1alpha.ServerReflection", {
                "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                    reflection, request_deserializer=Request.FromString,
                    response_serializer=lambda m: m.SerializeToString())}),
            grpc.method_handlers_generic_handler("gateway.test.v1.Echo", {
                "Unary": grpc.unary_unary_rpc_method_handler(
                    unary, request_deserializer=echo_pb2.EchoRequest.FromString,
                    response_serializer=lambda m: m.SerializeToString())}),
        ))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{port}"

    def stop(self):
        self.server.stop(0)


class SharedImportsTest(unittest.TestCase):
    """Files shared with the config's descriptor sets (google/api/*.proto) are compared by
    what matters to the wire and the mapping, not byte for byte."""

    def test_register_from_reflection_of_a_python_backend(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        backend = PythonBackend(ws)
        self.addCleanup(backend.stop)
        bookstore = harness.bookstore_backend(ws)
        gw = Gateway(ws, bookstore.address, backend.address,
                     registry_dir=os.path.join(ws.dir, "registry"))
        code, out = gw.ctl("register", "gateway.test.v1.Echo",
                           f"--from-reflection={backend.address}", "--backend=echo",
                           "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("gateway.test.v1.Echo: registered v1", out)
        self.assertIn("+ route POST /v1/echo -> gateway.test.v1.Echo.Unary", out)
        status, body = gw.rest("POST", "/v1/echo", {"payload": "aGk="})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"payload": "aGk=", "index": 7})
        self.assertIn(b"py", gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"py")))

    def test_copy_of_annotations_with_an_extra_file_option_and_a_real_difference(self):
        from google.protobuf import descriptor_pb2
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        bookstore = harness.bookstore_backend(ws)
        echo = ws.echo_backend()
        gw = Gateway(ws, bookstore.address, echo.address,
                     registry_dir=os.path.join(ws.dir, "registry"))
        fds = descriptor_pb2.FileDescriptorSet()
        with open(ECHO_HTTP_V1, "rb") as f:
            fds.ParseFromString(f.read())
        for file in fds.file:
            if file.name == "google/api/annotations.proto":
                file.options.java_package = "com.example.annotations"
                file.options.go_package = "example.com/annotations"
        optioned = ws.write("optioned.pb", "")
        with open(optioned, "wb") as f:
            f.write(fds.SerializeToString())
        code, out = gw.ctl("diff", "gateway.test.v1.Echo", f"--descriptor-set={optioned}",
                           "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("+ route POST /v1/echo -> gateway.test.v1.Echo.Unary", out)
        for file in fds.file:
            if file.name == "google/api/http.proto":
                rule = next(m for m in file.message_type if m.name == "HttpRule")
                body = next(f for f in rule.field if f.name == "body")
                body.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        changed = ws.write("changed.pb", "")
        with open(changed, "wb") as f:
            f.write(fds.SerializeToString())
        code, out = gw.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={changed}",
                           "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 1, out)
        self.assertIn("google/api/http.proto: message google.api.HttpRule field 'body' (7): "
                      "type bytes (service gateway.test.v1.Echo v1) vs string (", out)


def echo_variant(ws, file_name, service="Echo", post="/v1/echo"):
    """echo_http_v1_proto.pb with the service renamed and Unary bound to POST `post` (body
    "*"), written to the workspace."""
    from google.protobuf import descriptor_pb2
    fds = descriptor_pb2.FileDescriptorSet()
    with open(ECHO_HTTP_V1, "rb") as f:
        fds.ParseFromString(f.read())
    option = harness.http_post_option(post)
    for file in fds.file:
        if file.package == "gateway.test.v1":
            file.service[0].name = service
            file.service[0].method[0].options.Clear()
            file.service[0].method[0].options.MergeFromString(option)
    path = ws.write(file_name, "")
    with open(path, "wb") as f:
        f.write(fds.SerializeToString())
    return path


class RegistrationChecksTest(unittest.TestCase):
    """At registration the backend is asked whether it serves the service (the echo backend
    serves server reflection), and a route overlapping another service's is refused unless
    forced."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        bookstore = harness.bookstore_backend(self.ws)
        echo = self.ws.echo_backend()
        self.gw = Gateway(self.ws, bookstore.address, echo.address,
                          registry_dir=os.path.join(self.ws.dir, "registry"))

    def test_service_the_backend_does_not_serve_is_refused_unless_forced(self):
        absent = echo_variant(self.ws, "absent.pb", service="Absent", post="/v1/absent")
        args = ["register", "gateway.test.v1.Absent", f"--descriptor-set={absent}",
                "--backend=echo", "--owner=platform-test"]
        code, out = self.gw.ctl(*args)
        self.assertEqual(code, 1, out)
        self.assertIn('backend "echo" does not serve gateway.test.v1.Absent (its server '
                      'reflection lists: gateway.test.v1.Echo', out)
        self.assertEqual(self.gw.rest("POST", "/v1/absent", {"payload": "aGk="})[0], 404)
        code, out = self.gw.ctl(*args, "--force")
        self.assertEqual(code, 0, out)
        self.assertIn("gateway.test.v1.Absent: registered v1", out)
        self.assertIn('gatewayctl: warning: backend "echo" does not serve '
                      'gateway.test.v1.Absent', out)
        # The service the backend does serve (same file name) registers without a word.
        code, out = self.gw.ctl("remove", "gateway.test.v1.Absent", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        code, out = self.gw.ctl("register", "gateway.test.v1.Echo",
                                f"--descriptor-set={ECHO_HTTP_V1}", "--backend=echo",
                                "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertNotIn("warning", out)

    def test_route_overlapping_another_service_is_refused_unless_forced(self):
        catch_all = echo_variant(self.ws, "catch_all.pb", post="/v1/*")
        args = ["register", "gateway.test.v1.Echo", f"--descriptor-set={catch_all}",
                "--backend=echo", "--owner=platform-test"]
        code, out = self.gw.ctl(*args)
        self.assertEqual(code, 1, out)
        self.assertIn("new routes of gateway.test.v1.Echo overlap routes of another service", out)
        self.assertIn("POST /v1/* -> gateway.test.v1.Echo.Unary overlaps POST /v1/shelves -> "
                      "bookstore.v1.Bookstore.", out)
        self.assertIn("(service bookstore.v1.Bookstore)", out)
        code, out = self.gw.ctl(*args, "--force")
        self.assertEqual(code, 0, out)
        self.assertIn("gatewayctl: warning: route overlap: POST /v1/* -> "
                      "gateway.test.v1.Echo.Unary overlaps POST /v1/shelves", out)
        # The bookstore keeps its exact route; other paths under /v1/ reach the echo service.
        self.assertEqual(self.gw.rest("POST", "/v1/shelves", {"theme": "x"})[0], 200)
        status, body = self.gw.rest("POST", "/v1/anything", {"payload": "aGk="})
        self.assertEqual(status, 200, body)


class HistoryLimitTest(unittest.TestCase):
    """admin_listener.registry_history_limit: older versions are pruned, on disk too."""

    def test_history_keeps_the_newest_versions(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        bookstore = harness.bookstore_backend(ws)
        echo = ws.echo_backend()
        registry_dir = os.path.join(ws.dir, "registry")
        gw = Gateway(ws, bookstore.address, echo.address, registry_dir=registry_dir,
                     admin_options="registry_history_limit: 2")
        # Five distinct registrations in a row (each differs from the current one).
        for i in range(5):
            code, out = gw.ctl("register", "gateway.test.v1.Echo",
                               f"--descriptor-set={ECHO_HTTP_V1 if i % 2 == 0 else ECHO_HTTP_V2}",
                               "--backend=echo", "--owner=platform-test", "--force")
            self.assertEqual(code, 0, out)
            self.assertIn(f"registered v{i + 1}", out)
        code, out = gw.ctl("show", "gateway.test.v1.Echo", "--versions")
        self.assertEqual(code, 0, out)
        lines = out.strip().splitlines()
        self.assertEqual([line.split()[0] for line in lines], ["v4", "v5"], out)
        self.assertEqual(sorted(f for f in os.listdir(registry_dir) if "Echo" in f),
                         ["gateway.test.v1.Echo@4.version", "gateway.test.v1.Echo@5.version"])
        code, out = gw.ctl("rollback", "gateway.test.v1.Echo", "--to=1",
                           "--owner=platform-test")
        self.assertEqual(code, 1, out)
        self.assertIn("version 1 was pruned from the history, which keeps the newest 2 "
                      "versions (now v4 to v5)", out)
        code, out = gw.ctl("rollback", "gateway.test.v1.Echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        self.assertIn("rolled back as v6", out)
        # A restart restores the pruned history.
        self.assertEqual(gw.stop(), 0)
        gw.start()
        code, out = gw.ctl("show", "gateway.test.v1.Echo", "--versions")
        self.assertEqual([line.split()[0] for line in out.strip().splitlines()], ["v5", "v6"],
                         out)


class AdminRestTest(unittest.TestCase):
    """With a token and expose_on_public_listeners, the admin API is also routed through the
    gateway's front ends."""

    def test_admin_api_over_rest_through_the_gateway_requires_the_token(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        bookstore = harness.bookstore_backend(ws)
        echo = ws.echo_backend()
        token_file = ws.write("admin.token", "s3cret-token\n")
        gw = Gateway(ws, bookstore.address, echo.address,
                     registry_dir=os.path.join(ws.dir, "registry"), token_file=token_file,
                     admin_options="expose_on_public_listeners: true")
        code, out = gw.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={ECHO_HTTP_V1}",
                           "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        status, body = gw.rest("GET", "/admin/v1/services",
                               headers={"authorization": "Bearer s3cret-token"})
        self.assertEqual(status, 200, body)
        services = json.loads(body)["services"]
        self.assertEqual([s["service"] for s in services], ["gateway.test.v1.Echo"])
        self.assertEqual(services[0]["version"], "1")
        status, body = gw.rest("GET", "/admin/v1/services",
                               headers={"authorization": "Bearer wrong"})
        self.assertEqual(status, 401, body)
        status, body = gw.rest("GET", "/admin/v1/services/gateway.test.v1.Echo/versions",
                               headers={"authorization": "Bearer s3cret-token"})
        self.assertEqual(status, 200, body)
        # Without the token file gatewayctl is refused with exit code 4.
        result = subprocess.run([GATEWAYCTL, f"--admin={gw.admin_address}", "list"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 4, result.stderr)


class RegisteredServiceRulesTest(unittest.TestCase):
    """Auth, quota and deadline rules of the config govern a service registered at run time
    (their selectors name it before it exists), on both front ends."""

    def test_rules_apply_to_the_registered_service(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        bookstore = harness.bookstore_backend(ws)
        echo = ws.echo_backend()
        key_hash = hashlib.sha256(b"team-key").hexdigest()
        keys_file = ws.write("api-keys.txt", f"echo-team {key_hash}\n")
        gw = Gateway(ws, bookstore.address, echo.address,
                     registry_dir=os.path.join(ws.dir, "registry"), extra=f"""
auth:
  api_keys: {{keys_file: "{keys_file}"}}
  rules:
    - {{selectors: ["bookstore.v1.Bookstore.*"], allow_unauthenticated: true}}
    - {{selectors: ["gateway.test.v1.Echo.*"], providers: [api_key]}}
quotas:
  rules:
    - {{name: echo-unary, selectors: ["gateway.test.v1.Echo.Unary"], requests: 3, per: 60s,
        key: METHOD}}
deadlines:
  rules:
    - {{selectors: ["gateway.test.v1.Echo.*"], default_timeout: 3s}}
""")
        # Not registered yet: not served.
        with self.assertRaises(grpc.RpcError) as err:
            gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"x"))
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        code, out = gw.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={ECHO_HTTP_V1}",
                           "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)

        # The auth rule: no key -> UNAUTHENTICATED / 401 on both front ends.
        with self.assertRaises(grpc.RpcError) as err:
            gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"x"))
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        status, body = gw.rest("POST", "/v1/echo", {"payload": "aGk="})
        self.assertEqual(status, 401, body)
        # The configured service keeps its own (open) rule.
        gw.grpc_call("/bookstore.v1.Bookstore/ListShelves")

        # With the key: the quota (3 calls a minute, shared by both front ends) counts.
        response_type = harness.load_messages(harness.ECHO_SET)["gateway.test.v1.EchoResponse"]
        call = gw.channel.unary_unary("/gateway.test.v1.Echo/Unary")
        reply = response_type.FromString(
            call(echo_request(b"a"), metadata=[("x-api-key", "team-key")]))
        # The deadline rule's default reached the backend (the client set no deadline);
        # grpc-timeout on the wire rounds up, so a little over 3000 ms may arrive.
        self.assertGreater(reply.deadline_ms, 2000)
        self.assertLessEqual(reply.deadline_ms, 3100)
        status, body = gw.rest("POST", "/v1/echo", {"payload": "aGk="},
                               headers={"x-api-key": "team-key"})
        self.assertEqual(status, 200, body)
        call(echo_request(b"c"), timeout=TIMEOUT, metadata=[("x-api-key", "team-key")])
        with self.assertRaises(grpc.RpcError) as err:
            call(echo_request(b"d"), timeout=TIMEOUT, metadata=[("x-api-key", "team-key")])
        self.assertEqual(err.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("echo-unary", err.exception.details())
        status, body = gw.rest("POST", "/v1/echo", {"payload": "aGk="},
                               headers={"x-api-key": "team-key"})
        self.assertEqual(status, 429, body)


class SharedRegistryTest(unittest.TestCase):
    """Several gateways sharing one registry through a real redis-server."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        _, self.redis = harness.redis_server(self.ws)

    def tearDown(self):
        self.ws.close()

    def gateway(self, name):
        return Gateway(self.ws, self.bookstore.address, self.echo.address, name=name,
                       redis=self.redis)

    def echo_answers(self, gw):
        try:
            return b"shared" in gw.grpc_call("/gateway.test.v1.Echo/Unary", echo_request(b"shared"))
        except grpc.RpcError:
            return False

    def test_gateways_converge_within_a_second_and_a_late_one_loads_the_state(self):
        a = self.gateway("gatewayd_a")
        b = self.gateway("gatewayd_b")
        self.assertFalse(self.echo_answers(b))
        code, out = a.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={ECHO_HTTP_V1}",
                          "--backend=echo", "--owner=platform-test")
        self.assertEqual(code, 0, out)
        start = time.monotonic()
        while not self.echo_answers(b) and time.monotonic() - start < 5:
            time.sleep(0.05)
        converged = time.monotonic() - start
        print(f"\ngateway b served the service registered on a after {converged * 1000:.0f} ms",
              file=sys.stderr)
        self.assertLess(converged, 1.5)
        self.assertEqual(b.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 200)
        # A change made on b reaches a; the version numbers are shared.
        code, out = b.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={ECHO_HTTP_V2}",
                          "--backend=echo", "--owner=platform-test", "--force")
        self.assertEqual(code, 0, out)
        self.assertIn("registered v2", out)
        start = time.monotonic()
        while (a.rest("POST", "/v2/echo", {"payload": "aGk="})[0] != 200
               and time.monotonic() - start < 5):
            time.sleep(0.05)
        self.assertLess(time.monotonic() - start, 1.5)
        # A gateway started later loads the current state.
        c = self.gateway("gatewayd_c")
        self.assertTrue(self.echo_answers(c))
        self.assertEqual(c.rest("POST", "/v2/echo", {"payload": "aGk="})[0], 200)
        _, listed = c.ctl("show", "gateway.test.v1.Echo")
        self.assertIn("version:    2", listed)


if __name__ == "__main__":
    unittest.main()
