"""Integration tests of gatewayd's gRPC front end.

Real processes on loopback: the echo backend (tests/backend), gatewayd, and Python grpcio
clients; the project's C++ load client where many concurrent calls are needed. Every call
carries a deadline; every loop is bounded.
"""

import base64
import json
import shutil
import tempfile
import os
import signal
import subprocess
import threading
import time
import unittest

import grpc

import harness

MSGS = harness.load_messages(harness.ECHO_SET)
Req = MSGS["gateway.test.v1.EchoRequest"]
Resp = MSGS["gateway.test.v1.EchoResponse"]
StatsReq = MSGS["gateway.test.v1.StatsRequest"]
StatsResp = MSGS["gateway.test.v1.StatsResponse"]

SERVICE = "/gateway.test.v1.Echo/"
TIMEOUT = 20  # seconds; the bound of any single call below
BIG = 64 * 1024 * 1024


def gateway_config(backend_address, extra="", runtime=""):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
limits: {{max_message_bytes: 33554432}}
runtime: {{shutdown_grace: 5s, worker_threads: 2{runtime}}}
{extra}
"""


class Stubs:
    def __init__(self, address):
        options = [("grpc.max_receive_message_length", BIG),
                   ("grpc.max_send_message_length", BIG)]
        self.channel = grpc.insecure_channel(address, options=options)
        kw = dict(request_serializer=Req.SerializeToString,
                  response_deserializer=Resp.FromString)
        self.unary = self.channel.unary_unary(SERVICE + "Unary", **kw)
        self.server_stream = self.channel.unary_stream(SERVICE + "ServerStream", **kw)
        self.client_stream = self.channel.stream_unary(SERVICE + "ClientStream", **kw)
        self.bidi = self.channel.stream_stream(SERVICE + "Bidi", **kw)
        self.stats = self.channel.unary_unary(
            SERVICE + "Stats", request_serializer=StatsReq.SerializeToString,
            response_deserializer=StatsResp.FromString)

    def close(self):
        self.channel.close()


class GrpcProxyTest(unittest.TestCase):
    """The gRPC front end as clients see it, on the grpc_listener; the subclass below runs
    every test again against the relay of the HTTP listener."""

    # Config added to gateway_config(); None: the grpc_listener serves the calls.
    relay_config = None

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        extra = cls.relay_config or ""
        cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address, extra))
        cls.address = (harness.http_address(cls.gateway) if cls.relay_config
                       else cls.gateway.address)
        cls.stubs = Stubs(cls.address)
        cls.direct = Stubs(cls.backend.address)

    @classmethod
    def tearDownClass(cls):
        cls.stubs.close()
        cls.direct.close()
        code = cls.gateway.stop()
        cls.ws.close()
        assert code == 0, f"gatewayd exited with {code}:\n{cls.gateway.output()}"

    def test_unary_echoes_payload(self):
        resp = self.stubs.unary(Req(payload=b"hello"), timeout=TIMEOUT)
        self.assertEqual(resp.payload, b"hello")

    def test_metadata_passes_both_ways(self):
        binary = bytes(range(256))
        resp, call = self.stubs.unary.with_call(
            Req(payload=b"abc"), timeout=TIMEOUT,
            metadata=[("x-echo-color", "blue"), ("x-trace-bin", binary),
                      ("authorization", "Bearer t0k3n")])
        seen = dict(m.split("=", 1) for m in resp.metadata)
        self.assertEqual(seen["x-echo-color"], "blue")
        self.assertEqual(seen["authorization"], "Bearer t0k3n")
        self.assertEqual(base64.b64decode(seen["x-trace-bin"] + "=="), binary)
        # Hop-by-hop and reserved headers of the client's hop do not reach the backend.
        self.assertNotIn("te", seen)
        self.assertNotIn("content-type", seen)
        self.assertFalse(any(k.startswith("grpc-") for k in seen), seen)
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        self.assertEqual(initial["x-echo-initial"], "3")
        self.assertEqual(initial["x-reflect-color"], "blue")
        self.assertEqual(trailing["x-echo-trailing"], "done")

    def test_error_status_and_message_pass_through(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stubs.unary(Req(fail_code=grpc.StatusCode.NOT_FOUND.value[0],
                                 fail_message="no such shelf: 7"), timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(cm.exception.details(), "no such shelf: 7")

    def test_server_stream_1000_messages(self):
        got = list(self.stubs.server_stream(Req(payload=b"s", count=1000), timeout=TIMEOUT))
        self.assertEqual(len(got), 1000)
        self.assertEqual([r.index for r in got], list(range(1000)))
        self.assertTrue(all(r.payload == b"s" for r in got))

    def test_server_stream_error_after_messages(self):
        stream = self.stubs.server_stream(
            Req(count=10, fail_code=grpc.StatusCode.ABORTED.value[0], fail_message="halt",
                fail_after=3), timeout=TIMEOUT)
        got = []
        with self.assertRaises(grpc.RpcError) as cm:
            for r in stream:
                got.append(r.index)
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
        self.assertEqual(cm.exception.details(), "halt")

    def test_client_stream_1000_messages(self):
        reqs = (Req(payload=str(i).encode()) for i in range(1000))
        resp = self.stubs.client_stream(reqs, timeout=TIMEOUT)
        self.assertEqual(resp.index, 1000)
        self.assertEqual(resp.payload, b"999")

    def test_bidi_1000_messages_each_way(self):
        reqs = (Req(payload=str(i).encode()) for i in range(1000))
        got = list(self.stubs.bidi(reqs, timeout=TIMEOUT))
        self.assertEqual(len(got), 1000)
        self.assertEqual([r.payload for r in got], [str(i).encode() for i in range(1000)])

    def test_bidi_is_interactive(self):
        """Each response arrives before the next request is sent (no buffering)."""
        outbox = []
        cond = threading.Condition()

        def requests():
            for i in range(20):
                with cond:
                    outbox.append(i)
                yield Req(payload=str(i).encode())
                with cond:
                    ok = cond.wait_for(lambda: len(outbox) == 0, timeout=5)
                if not ok:
                    return

        for resp in self.stubs.bidi(requests(), timeout=TIMEOUT):
            with cond:
                self.assertEqual(outbox, [int(resp.payload)])
                outbox.clear()
                cond.notify_all()

    def test_4mb_messages_both_ways(self):
        payload = os.urandom(4 * 1024 * 1024)
        resp = self.stubs.unary(Req(payload=payload), timeout=TIMEOUT)
        self.assertEqual(resp.payload, payload)
        got = list(self.stubs.bidi(iter([Req(payload=payload)] * 3), timeout=TIMEOUT))
        self.assertEqual([r.payload for r in got], [payload] * 3)

    def test_message_over_the_limit_is_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stubs.unary(Req(payload=b"x" * (40 * 1024 * 1024)), timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertTrue(self.gateway.alive())

    def test_200_concurrent_calls(self):
        futures = [self.stubs.unary.future(Req(payload=str(i).encode(), sleep_ms=200),
                                           timeout=TIMEOUT) for i in range(200)]
        started = time.monotonic()
        results = [f.result() for f in futures]
        elapsed = time.monotonic() - started
        self.assertEqual([r.payload for r in results], [str(i).encode() for i in range(200)])
        # 200 calls of 200 ms each: concurrent, not one after another (40 s).
        self.assertLess(elapsed, TIMEOUT)

    def test_cpp_client_200_concurrent_unary_and_bidi(self):
        """The project's C++ client: 2000 calls, 200 in flight at once, then 200 streams."""
        for args in (["--mode=unary", "--concurrency=200", "--calls=2000"],
                     ["--mode=bidi", "--concurrency=200", "--calls=2000"]):
            result = subprocess.run(
                [harness.GRPC_LOAD, f"--target={self.address}", "--duration=60s",
                 "--call_timeout=20s", *args],
                capture_output=True, text=True, timeout=90)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            report = json.loads(result.stdout)
            self.assertEqual(report["errors"], 0, report)
            self.assertGreaterEqual(report["calls"], 2000, report)

    def test_deadline_exceeded_and_propagated(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stubs.unary(Req(sleep_ms=3000), timeout=0.5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # The backend sees the client's deadline, not an unbounded call.
        resp = self.stubs.unary(Req(), timeout=7)
        self.assertGreater(resp.deadline_ms, 5000)
        self.assertLessEqual(resp.deadline_ms, 7100)  # grpc-timeout rounds up
        resp = self.stubs.unary(Req(), timeout=None)
        self.assertEqual(resp.deadline_ms, -1)

    def test_client_cancellation_reaches_backend(self):
        tag = f"cancel-{time.monotonic_ns()}"
        future = self.stubs.unary.future(Req(sleep_ms=10000, tag=tag), timeout=TIMEOUT)
        time.sleep(0.5)
        self.assertTrue(future.cancel())
        deadline = time.monotonic() + 5
        stats = None
        while time.monotonic() < deadline:
            stats = self.direct.stats(StatsReq(tag=tag), timeout=TIMEOUT)
            if stats.cancelled:
                break
            time.sleep(0.05)
        self.assertTrue(stats.cancelled, "the backend never saw the cancellation")

    def test_stream_cancellation_reaches_backend(self):
        tag = f"scancel-{time.monotonic_ns()}"
        stream = self.stubs.server_stream(Req(count=100000, sleep_ms=20, tag=tag),
                                          timeout=TIMEOUT)
        next(stream)
        stream.cancel()
        deadline = time.monotonic() + 5
        stats = None
        while time.monotonic() < deadline:
            stats = self.direct.stats(StatsReq(tag=tag), timeout=TIMEOUT)
            if stats.cancelled:
                break
            time.sleep(0.05)
        self.assertTrue(stats.cancelled, "the backend never saw the cancellation")

    def test_unknown_method_is_unimplemented(self):
        call = self.stubs.channel.unary_unary("/gateway.test.v1.Echo/Missing")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("/gateway.test.v1.Echo/Missing", cm.exception.details())
        call = self.stubs.channel.unary_unary("/other.Service/Method")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class GrpcProxyOnTheRelayTest(GrpcProxyTest):
    """The same tests through the HTTP listener's gRPC relay (nghttp2 on the HTTP workers,
    the worker's own upstream), with the same limits."""

    relay_config = """
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
"""


class BackendFailureTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def test_backend_down_is_unavailable(self):
        # A port nobody listens on: bind one, remember it, close it.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()
        gw = self.ws.gatewayd(gateway_config(dead))
        stubs = Stubs(gw.address)
        with self.assertRaises(grpc.RpcError) as cm:
            stubs.unary(Req(), timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        stubs.close()
        self.assertEqual(gw.stop(), 0)

    def test_backend_killed_mid_stream(self):
        backend = self.ws.echo_backend()
        address = backend.address
        gw = self.ws.gatewayd(gateway_config(address))
        stubs = Stubs(gw.address)
        stream = stubs.server_stream(Req(count=100, exit_after=5, sleep_ms=5),
                                     timeout=TIMEOUT)
        got = 0
        with self.assertRaises(grpc.RpcError) as cm:
            for _ in stream:
                got += 1
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(got, 5)
        backend.proc.wait(10)
        self.assertTrue(gw.alive())
        # A new backend on the same address: the gateway reconnects and serves again.
        self.ws.echo_backend(listen=address)
        deadline = time.monotonic() + 10
        while True:
            try:
                resp = stubs.unary(Req(payload=b"again"), timeout=2, wait_for_ready=True)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
        self.assertEqual(resp.payload, b"again")
        stubs.close()
        self.assertEqual(gw.stop(), 0)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class TargetsAndFlowControlTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def test_unix_socket_backend(self):
        # Socket paths are limited to 107 bytes; the test's own directory may be longer.
        sock_dir = tempfile.mkdtemp(prefix="gw-", dir="/tmp")
        self.addCleanup(shutil.rmtree, sock_dir, True)
        path = os.path.join(sock_dir, "echo.sock")
        self.ws.echo_backend(listen=f"unix:{path}")
        gw = self.ws.gatewayd(gateway_config("x").replace('"ipv4:x"', f'"unix:{path}"'))
        stubs = Stubs(gw.address)
        self.assertEqual(stubs.unary(Req(payload=b"uds"), timeout=TIMEOUT).payload, b"uds")
        stubs.close()

    def test_round_robin_over_two_backends(self):
        a = self.ws.echo_backend()
        b = self.ws.echo_backend()
        gw = self.ws.gatewayd(gateway_config(f"{a.address},{b.address}"))
        stubs = Stubs(gw.address)
        # Round robin spreads calls over the connected endpoints: wait (bounded) until both
        # backends have taken a call, so a slow first connect does not decide the test.
        directs = {"a": Stubs(a.address), "b": Stubs(b.address)}
        warmed = set()
        deadline = time.monotonic() + TIMEOUT
        i = 0
        while warmed != {"a", "b"} and time.monotonic() < deadline:
            tag = f"warm-{i}"
            i += 1
            stubs.unary(Req(tag=tag), timeout=TIMEOUT, wait_for_ready=True)
            for name, direct in directs.items():
                if direct.stats(StatsReq(tag=tag), timeout=TIMEOUT).finished:
                    warmed.add(name)
            if warmed != {"a", "b"}:
                time.sleep(0.05)
        for direct in directs.values():
            direct.close()
        self.assertEqual(warmed, {"a", "b"}, "both backends take calls within the bound")
        tags = [f"rr-{i}" for i in range(20)]
        for tag in tags:
            stubs.unary(Req(tag=tag), timeout=TIMEOUT, wait_for_ready=True)
        served = {}
        for name, backend in (("a", a), ("b", b)):
            direct = Stubs(backend.address)
            served[name] = {t for t in tags
                            if direct.stats(StatsReq(tag=t), timeout=TIMEOUT).finished}
            direct.close()
        self.assertEqual(served["a"] | served["b"], set(tags))
        self.assertFalse(served["a"] & served["b"])
        # Both backends take calls (round robin, once both are connected).
        self.assertGreaterEqual(len(served["a"]), 5, served)
        self.assertGreaterEqual(len(served["b"]), 5, served)
        stubs.close()

    def test_slow_client_does_not_make_the_gateway_buffer(self):
        """A backend streams 200 MB at a client that reads slowly: the gateway holds a few
        messages at most, not the stream."""
        backend = self.ws.echo_backend()
        gw = self.ws.gatewayd(gateway_config(backend.address), memory_measured=True)
        stubs = Stubs(gw.address)
        self.assertEqual(stubs.unary(Req(), timeout=TIMEOUT).payload, b"")
        before = rss_kib(gw.proc.pid)
        stream = stubs.server_stream(Req(payload=b"x" * (1 << 20), count=200),
                                     timeout=TIMEOUT)
        got = 0
        peak = before
        for _ in stream:
            got += 1
            if got <= 10:
                time.sleep(0.3)  # slow reader at first: back-pressure must hold
                peak = max(peak, rss_kib(gw.proc.pid))
        self.assertEqual(got, 200)
        growth_mib = (peak - before) / 1024
        self.assertLess(growth_mib, 40, f"gateway grew by {growth_mib:.0f} MiB")
        stubs.close()


class CompressionTest(unittest.TestCase):
    """Compressed messages pass through the relay untouched, both ways: the gateway reads
    only the 5-byte prefixes and forwards grpc-encoding / grpc-accept-encoding."""

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def test_gzip_messages_pass_through_both_ways_without_decompression(self):
        backend = self.ws.echo_backend(extra_args=["--gzip"])
        log_path = os.path.join(self.ws.dir, "access.log")
        gw = self.ws.gatewayd(gateway_config(backend.address, f"""
access_log: {{format: JSON, path: "{log_path}", fields: [GRPC_METHOD, BYTES_IN, BYTES_OUT, GRPC_STATUS]}}
"""))
        channel = grpc.insecure_channel(gw.address, compression=grpc.Compression.Gzip)
        unary = channel.unary_unary(SERVICE + "Unary", request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
        bidi = channel.stream_stream(SERVICE + "Bidi", request_serializer=Req.SerializeToString,
                                     response_deserializer=Resp.FromString)
        payload = b"x" * (1 << 20)  # 1 MiB that gzip shrinks to about 1 KiB
        self.assertEqual(unary(Req(payload=payload), timeout=TIMEOUT).payload, payload)
        got = [r.payload for r in bidi(iter([Req(payload=payload), Req(payload=b"y" * 5000)]),
                                       timeout=TIMEOUT)]
        self.assertEqual(got, [payload, b"y" * 5000])
        channel.close()
        # The gateway counted the bytes it relayed: compressed, far below the payloads.
        deadline = time.monotonic() + TIMEOUT
        lines = []
        while time.monotonic() < deadline and len(lines) < 2:
            time.sleep(0.1)
            if os.path.exists(log_path):
                with open(log_path) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(len(lines), 2, lines)
        for line in lines:
            self.assertEqual(line["grpc_status"], 0, line)
            self.assertGreater(line["bytes_in"], 0, line)
            self.assertLess(line["bytes_in"], 64 * 1024, line)
            self.assertGreater(line["bytes_out"], 0, line)
            self.assertLess(line["bytes_out"], 64 * 1024, line)


class ShutdownTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def test_sigterm_drains_calls_in_flight_then_exits_0(self):
        backend = self.ws.echo_backend()
        gw = self.ws.gatewayd(gateway_config(backend.address))
        stubs = Stubs(gw.address)
        self.assertEqual(stubs.unary(Req(payload=b"warm"), timeout=TIMEOUT).payload, b"warm")
        future = stubs.unary.future(Req(payload=b"slow", sleep_ms=1500), timeout=TIMEOUT)
        time.sleep(0.3)
        gw.proc.send_signal(signal.SIGTERM)
        self.assertEqual(future.result().payload, b"slow")
        self.assertEqual(gw.proc.wait(15), 0)
        self.assertIn("draining calls", gw.output())
        stubs.close()

    def test_calls_past_the_grace_period_are_cancelled(self):
        backend = self.ws.echo_backend()
        gw = self.ws.gatewayd(gateway_config(backend.address).replace(
            "shutdown_grace: 5s", "shutdown_grace: 300ms"))
        stubs = Stubs(gw.address)
        future = stubs.unary.future(Req(sleep_ms=8000), timeout=TIMEOUT)
        time.sleep(0.3)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        self.assertEqual(gw.proc.wait(15), 0)
        self.assertLess(time.monotonic() - started, 5)
        with self.assertRaises(grpc.RpcError):
            future.result()
        stubs.close()


class ConfigCheckTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()

    def tearDown(self):
        self.ws.close()

    def run_gatewayd(self, *args):
        return subprocess.run([harness.GATEWAYD, *args], capture_output=True, text=True,
                              timeout=30)

    def test_check_config_accepts_a_valid_config(self):
        path = self.ws.write("ok.yaml", gateway_config("127.0.0.1:1"))
        result = self.run_gatewayd(f"--config={path}", "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("is valid: 1 services, 5 methods, 1 backends", result.stdout)

    def test_bad_config_exits_2_naming_the_key_before_listening(self):
        path = self.ws.write("bad.yaml", gateway_config("127.0.0.1:1").replace(
            "backend: echo", "backend: ecko"))
        for args in ([f"--config={path}", "--check-config"], [f"--config={path}"]):
            result = self.run_gatewayd(*args)
            self.assertEqual(result.returncode, 2)
            self.assertIn('services[0].backend: unknown backend "ecko" (known: echo)',
                          result.stderr)
            self.assertNotIn("listening", result.stderr)

    def test_unknown_key_is_named(self):
        path = self.ws.write("typo.yaml", gateway_config("127.0.0.1:1") + "limitz: {}\n")
        result = self.run_gatewayd(f"--config={path}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("limitz: unknown key", result.stderr)

    def test_missing_config_and_bad_flags(self):
        result = self.run_gatewayd("--config=/nonexistent.yaml")
        self.assertEqual(result.returncode, 2)
        self.assertIn("/nonexistent.yaml: No such file or directory", result.stderr)
        result = self.run_gatewayd()
        self.assertEqual(result.returncode, 2)
        self.assertIn("--config=PATH is required", result.stderr)
        result = self.run_gatewayd("--bogus")
        self.assertEqual(result.returncode, 2)
        self.assertIn('unknown argument "--bogus"', result.stderr)

    def test_port_in_use_exits_1(self):
        backend = self.ws.echo_backend()
        path = self.ws.write("busy.yaml", gateway_config("127.0.0.1:1").replace(
            '"127.0.0.1:0"', f'"{backend.address}"'))
        result = self.run_gatewayd(f"--config={path}")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"cannot listen on {backend.address}", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
