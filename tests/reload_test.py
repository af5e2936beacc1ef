"""Config reload (SIGHUP and the admin API's Reload) of a running gatewayd under load.

gatewayd serves gateway.test.v1.Echo from an echo backend (tests/backend:echo_backend) on
both front ends while REST and gRPC clients call Echo.Unary in background threads. The test
rewrites the config file and reloads: a new backend and service are served, a revoked API key
stops working, an invalid config is refused (logged, counted) while the old one serves on, and
a listener address change is named as needing a restart. Across all reloads, no call of the
load fails. Every call and every wait is bounded in time.
"""

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

import grpc

import harness

CALL_TIMEOUT = 10  # seconds; the bound of any single call below
MSGS = harness.load_messages(harness.ECHO_SET)
EchoRequest = MSGS["gateway.test.v1.EchoRequest"]
EchoResponse = MSGS["gateway.test.v1.EchoResponse"]
GATEWAYCTL = os.path.join(harness.ROOT, "tools/gatewayctl/gatewayctl")


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def config_text(echo, keys_file, books=None, grpc_address="127.0.0.1:0", services_extra=""):
    """Echo on `echo`; with `books` (an address), the Bookstore example on backend "books"."""
    sets = [harness.ECHO_SET] + ([harness.BOOKSTORE_SET] if books else [])
    backends = f'  - {{name: echo, target: "{echo}"}}\n'
    services = "  - {name: gateway.test.v1.Echo, backend: echo}\n"
    if books:
        backends += f'  - {{name: books, target: "{books}"}}\n'
        services += "  - {name: bookstore.v1.Bookstore, backend: books}\n"
    books_rule = ""
    if books:
        books_rule = ('    - selectors: ["bookstore.v1.Bookstore.ListShelves"]\n'
                      '      allow_unauthenticated: true\n')
    return f"""
grpc_listener: {{address: "{grpc_address}"}}
descriptor_sets: {json.dumps(sets)}
backends:
{backends}
services:
{services}{services_extra}
runtime: {{shutdown_grace: 5s, worker_threads: 2}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  default_deadline: 10s
  transcoding: {{expose_grpc_paths: true}}
admin_listener: {{address: "127.0.0.1:0"}}
metrics_listener: {{address: "127.0.0.1:0"}}
auth:
  api_keys:
    keys_file: "{keys_file}"
  rules:
    - selectors: ["gateway.test.v1.Echo.ServerStream"]
      providers: [api_key]
    - selectors: ["gateway.test.v1.Echo.Unary", "gateway.test.v1.Echo.Stats",
                  "gateway.test.v1.Echo.ClientStream", "gateway.test.v1.Echo.Bidi"]
      allow_unauthenticated: true
{books_rule}"""


class Load:
    """REST and gRPC clients calling Echo.Unary in a loop until stop(); every outcome is
    kept as (front end, ok, detail)."""

    def __init__(self, http_address, grpc_address, threads=2):
        self.http_address = http_address
        self.grpc_address = grpc_address
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = ([threading.Thread(target=self._rest, daemon=True)
                          for _ in range(threads)] +
                         [threading.Thread(target=self._grpc, daemon=True)
                          for _ in range(threads)])
        for t in self._threads:
            t.start()

    def _add(self, result):
        with self._lock:
            self.results.append(result)

    def _rest(self):
        host, port = self.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
        while not self._stop.is_set():
            try:
                conn.request("POST", "/gateway.test.v1.Echo/Unary",
                             body=json.dumps({"payload": "aGk="}).encode(),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                self._add(("rest", resp.status == 200, f"{resp.status} {body[:200]!r}"))
            except (OSError, http.client.HTTPException) as e:
                self._add(("rest", False, f"{type(e).__name__}: {e}"))
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
        conn.close()

    def _grpc(self):
        with grpc.insecure_channel(self.grpc_address) as channel:
            call = channel.unary_unary("/gateway.test.v1.Echo/Unary",
                                       request_serializer=EchoRequest.SerializeToString,
                                       response_deserializer=EchoResponse.FromString)
            while not self._stop.is_set():
                try:
                    resp = call(EchoRequest(payload=b"hi"), timeout=CALL_TIMEOUT)
                    self._add(("grpc", resp.payload == b"hi", "payload"))
                except grpc.RpcError as e:
                    self._add(("grpc", False, f"{e.code()}: {e.details()}"))

    def count(self):
        with self._lock:
            return len(self.results)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(CALL_TIMEOUT + 5)
        with self._lock:
            return list(self.results)


def wait_for(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class ReloadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.echo = cls.ws.echo_backend()
        cls.books = harness.bookstore_backend(cls.ws)
        cls.keys_file = cls.ws.write(
            "api-keys.txt",
            f"ci-bot {sha256_hex('key-one')}\nold-bot {sha256_hex('key-two')}\n")
        cls.config_path = os.path.join(cls.ws.dir, "gatewayd.yaml")
        cls.gw = cls.ws.gatewayd(config_text(cls.echo.address, cls.keys_file))
        cls.http = harness.http_address(cls.gw)
        cls.admin = re.search(r"admin listening on (\S+)", cls.gw.output()).group(1)
        cls.metrics = re.search(r"metrics listening on (\S+)", cls.gw.output()).group(1)
        cls.channel = grpc.insecure_channel(cls.gw.address)
        cls.load = Load(cls.http, cls.gw.address)

    @classmethod
    def tearDownClass(cls):
        cls.load.stop()
        cls.channel.close()
        cls.ws.close()

    # --- helpers ---

    def rewrite(self, text):
        with open(self.config_path + ".new", "w") as f:
            f.write(text)
        os.replace(self.config_path + ".new", self.config_path)

    def sighup_and_wait(self, line):
        """Sends SIGHUP and waits for one more log line that contains `line`."""
        before = self.gw.output().count(line)
        self.gw.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.gw.output().count(line) > before, 20),
                        f"no {line!r} in the log:\n{self.gw.output()[-3000:]}")
        # Let the load run on the new config for a moment.
        n = self.load.count()
        wait_for(lambda: self.load.count() > n + 20, 10)

    def metric(self, name):
        host, port = self.metrics.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
        conn.request("GET", "/metrics")
        page = conn.getresponse().read().decode()
        conn.close()
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", page, re.M)
        return float(m.group(1)) if m else None

    def rest_get(self, path):
        host, port = self.http.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body

    def server_stream(self, key):
        call = self.channel.unary_stream("/gateway.test.v1.Echo/ServerStream",
                                         request_serializer=EchoRequest.SerializeToString,
                                         response_deserializer=EchoResponse.FromString)
        try:
            list(call(EchoRequest(payload=b"s", count=1), timeout=CALL_TIMEOUT,
                      metadata=[("x-api-key", key)]))
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def gatewayctl(self, *args):
        return subprocess.run([GATEWAYCTL, f"--admin={self.admin}", "--timeout=20", *args],
                              capture_output=True, text=True, timeout=30)

    # --- the test: one gateway, reloads in order, the load running throughout ---

    def test_reloads_under_load(self):
        self.assertEqual(self.metric("gateway_config_last_reload_success_timestamp_seconds"), 0)
        # (a) A new backend and service: not served before, served after.
        self.assertEqual(self.rest_get("/v1/shelves")[0], 404)
        self.rewrite(config_text(self.echo.address, self.keys_file, books=self.books.address))
        self.sighup_and_wait("reload applied")
        self.assertIn("reload applied: 2 services (was 1), 2 backends (was 1), 3 rules (was 2)",
                      self.gw.output())
        status, body = self.rest_get("/v1/shelves")
        self.assertEqual(status, 200, body)
        self.assertEqual(
            self.metric('gateway_config_reloads_total{result="applied"}'), 1)
        self.assertGreater(
            self.metric("gateway_config_last_reload_success_timestamp_seconds"), 0)

        # (b) Revoke an API key (the keys file is read again): key-two stops working.
        self.assertEqual(self.server_stream("key-two"), grpc.StatusCode.OK)
        self.ws.write("api-keys.txt", f"ci-bot {sha256_hex('key-one')}\n")
        self.sighup_and_wait("reload applied")
        self.assertEqual(self.server_stream("key-two"), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.server_stream("key-one"), grpc.StatusCode.OK)

        # (c) An invalid config (a service on an unknown backend) is refused with the error
        # gatewayd gives at start; the old config keeps serving.
        bad = config_text(self.echo.address, self.keys_file, books=self.books.address,
                          services_extra="  - {name: bookstore.v1.Other, backend: nowhere}\n")
        self.rewrite(bad)
        check = subprocess.run([harness.GATEWAYD, f"--config={self.config_path}",
                                "--check-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 2, check.stderr)
        start_error = check.stderr.strip().split(": ", 2)[-1]
        self.sighup_and_wait("reload refused")
        self.assertIn(f"reload refused: invalid config {self.config_path}: {start_error}",
                      self.gw.output())
        self.assertEqual(self.metric('gateway_config_reloads_total{result="refused"}'), 1)
        self.assertEqual(self.rest_get("/v1/shelves")[0], 200)
        self.assertEqual(self.server_stream("key-two"), grpc.StatusCode.UNAUTHENTICATED)
        # The admin API refuses it the same way, and gatewayctl says so (exit code 1).
        r = self.gatewayctl("reload")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"reload refused: invalid config {self.config_path}: {start_error}",
                      r.stderr)

        # (d) A listener address change is named as needing a restart; the rest applies and
        # the old listener keeps serving.
        port = harness.free_port()
        self.rewrite(config_text(self.echo.address, self.keys_file,
                                 grpc_address=f"127.0.0.1:{port}"))
        r = self.gatewayctl("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reload applied: 1 services (was 2), 1 backends (was 2), 2 rules (was 3)", r.stdout)
        self.assertIn("these changes need a restart: grpc_listener.address", r.stdout)
        self.assertIn("these changes need a restart: grpc_listener.address", self.gw.output())
        self.assertEqual(self.rest_get("/v1/shelves")[0], 404)
        self.assertEqual(self.metric('gateway_config_reloads_total{result="applied"}'), 3)

        # gatewayctl config: the effective config, as reloaded.
        r = self.gatewayctl("config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"# {self.config_path}", r.stdout)
        shown = json.loads(r.stdout.split("\n", 1)[1])
        self.assertEqual(shown["grpc_listener"]["address"], f"127.0.0.1:{port}")
        self.assertEqual([b["name"] for b in shown["backends"]], ["echo"])

        # Zero failed calls across every reload.
        n = self.load.count()
        wait_for(lambda: self.load.count() > n + 20, 10)
        results = self.load.stop()
        failed = [r for r in results if not r[1]]
        by_front = {f: sum(1 for r in results if r[0] == f) for f in ("rest", "grpc")}
        print(f"load: {len(results)} calls ({by_front}), {len(failed)} failed", flush=True)
        self.assertGreater(by_front["rest"], 50)
        self.assertGreater(by_front["grpc"], 50)
        self.assertEqual(failed, [])
        self.assertTrue(self.gw.alive())


class TlsRotationTest(unittest.TestCase):
    """(e) The HTTP listener's certificate is rotated by a reload: new connections get the
    new certificate, REST calls on HTTPS keep succeeding, and an unusable certificate file
    is refused while the old one keeps serving."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.certs = []
        for name in ("one", "two"):
            d = os.path.join(self.ws.dir, name)
            os.mkdir(d)
            self.certs.append(harness.self_signed_certificate(d))
        self.cert = os.path.join(self.ws.dir, "live-cert.pem")
        self.key = os.path.join(self.ws.dir, "live-key.pem")
        self.install(0)
        self.echo = self.ws.echo_backend()
        keys_file = self.ws.write("api-keys.txt", f"ci-bot {sha256_hex('key-one')}\n")
        text = config_text(self.echo.address, keys_file).replace(
            "  transcoding: {expose_grpc_paths: true}\n",
            "  transcoding: {expose_grpc_paths: true}\n"
            f'  tls: {{cert_file: "{self.cert}", key_file: "{self.key}"}}\n')
        self.gw = self.ws.gatewayd(text)
        self.http = harness.http_address(self.gw)

    def install(self, i):
        for src, dst in zip(self.certs[i], (self.cert, self.key)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst + ".new", "wb") as f:
                f.write(data)
            os.replace(dst + ".new", dst)

    def context(self):
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def served_certificate(self):
        """The DER certificate a new connection gets, and that connection's call status."""
        host, port = self.http.rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), timeout=CALL_TIMEOUT,
                                           context=self.context())
        conn.request("POST", "/gateway.test.v1.Echo/Unary", body=b'{"payload": "aGk="}',
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        der = conn.sock.getpeercert(binary_form=True)
        conn.close()
        return der, resp.status

    def der(self, i):
        import ssl
        with open(self.certs[i][0]) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def https_load(self, stop, results):
        host, port = self.http.rsplit(":", 1)
        while not stop.is_set():
            conn = http.client.HTTPSConnection(host, int(port), timeout=CALL_TIMEOUT,
                                               context=self.context())
            try:
                for _ in range(5):  # a few calls per connection, then a new handshake
                    conn.request("POST", "/gateway.test.v1.Echo/Unary",
                                 body=b'{"payload": "aGk="}',
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    results.append(resp.status)
            except (OSError, http.client.HTTPException) as e:
                results.append(f"{type(e).__name__}: {e}")
            finally:
                conn.close()

    def reload(self, line):
        before = self.gw.output().count(line)
        self.gw.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.gw.output().count(line) > before, 20),
                        self.gw.output()[-3000:])

    def test_certificate_rotation(self):
        stop, results = threading.Event(), []
        load = threading.Thread(target=self.https_load, args=(stop, results), daemon=True)
        load.start()
        try:
            self.assertEqual(self.served_certificate(), (self.der(0), 200))
            self.install(1)
            self.reload("reload applied")
            self.assertNotIn("need a restart", self.gw.output())
            self.assertEqual(self.served_certificate(), (self.der(1), 200))
            # An unusable certificate file: refused, the rotated certificate still served.
            with open(self.cert, "w") as f:
                f.write("not a certificate\n")
            self.reload("reload refused")
            self.assertEqual(self.served_certificate(), (self.der(1), 200))
            n = len(results)
            wait_for(lambda: len(results) > n + 10, 10)
        finally:
            stop.set()
            load.join(CALL_TIMEOUT + 5)
        self.assertIn("reload refused: invalid config", self.gw.output())
        failed = [r for r in results if r != 200]
        print(f"https load: {len(results)} calls, {len(failed)} failed", flush=True)
        self.assertGreater(len(results), 20)
        self.assertEqual(failed, [])


if __name__ == "__main__":
    unittest.main()
