"""Integration tests of self-service registrations: a service file that carries the
backend serving the service (one the gateway config does not name) and the service's own
deadline and retry rules, applied with `gatewayctl apply -f`; and the audit log's record of
config reloads.

Real processes on loopback: gatewayd (with a directory store), the bookstore and echo
backends, gatewayctl and grpcio. Every call carries a timeout; every wait is bounded.
"""

import json
import os
import signal
import time
import unittest

import grpc

import harness
import registry_test
from registry_test import ECHO_HTTP_V1, TIMEOUT

ECHO = "gateway.test.v1.Echo"


def echo_request(payload, sleep_ms=0):
    # gateway.test.v1.EchoRequest{payload (1, bytes), sleep_ms (2, int32)}; the backend's
    # schema (tests/testdata/echo.proto) has sleep_ms, the registered one does not need it.
    out = b"\x0a" + bytes([len(payload)]) + payload
    if sleep_ms:
        out += b"\x10" + _varint(sleep_ms)
    return out


def _varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def wait_until(predicate, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class ReloadAuditTest(unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        self.audit_file = os.path.join(self.ws.dir, "audit.jsonl")
        self.gw = registry_test.Gateway(
            self.ws, self.bookstore.address, self.echo.address,
            os.path.join(self.ws.dir, "registry"),
            admin_options=f'audit_log_file: "{self.audit_file}"')

    def tearDown(self):
        self.ws.close()

    def audit_lines(self):
        if not os.path.exists(self.audit_file):
            return []
        with open(self.audit_file) as f:
            return [json.loads(line) for line in f.read().splitlines()]

    def test_sighup_and_admin_reloads_are_audited_applied_or_refused(self):
        self.gw.process.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(self.audit_lines()) == 1, "the audit line of SIGHUP's reload")
        line = self.audit_lines()[0]
        self.assertEqual((line["who"], line["action"], line["result"]),
                         ("signal", "reload", "applied"), line)
        self.assertIn("reload applied", line["changes"])

        config_path = os.path.join(self.ws.dir, "gatewayd.yaml")
        with open(config_path) as f:
            good = f.read()
        with open(config_path, "w") as f:
            f.write(good.replace("name: echo,", "name: echo, bogus_key: 1,"))
        self.gw.process.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(self.audit_lines()) == 2, "the audit line of a refused reload")
        line = self.audit_lines()[1]
        self.assertEqual((line["who"], line["result"]), ("signal", "refused"), line)
        self.assertIn("bogus_key", line["changes"])

        code, out = self.gw.ctl("reload")
        self.assertNotEqual(code, 0, out)
        line = self.audit_lines()[2]
        self.assertEqual((line["action"], line["result"]), ("reload", "refused"), line)
        with open(config_path, "w") as f:
            f.write(good)
        code, out = self.gw.ctl("reload")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.audit_lines()[3]["result"], "applied")


class OwnBackendTest(unittest.TestCase):
    """A service file whose `backend` defines the service's own backend: an echo backend
    the gateway config does not name (the config's `echo` backend points elsewhere)."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.config_echo = self.ws.echo_backend()  # named "echo" by the config, unused here
        self.own_echo = self.ws.echo_backend()
        self.registry_dir = os.path.join(self.ws.dir, "registry")
        self.gw = registry_test.Gateway(self.ws, self.bookstore.address,
                                        self.config_echo.address, self.registry_dir)

    def tearDown(self):
        self.ws.close()

    def service_file(self, backend, extra="", name="echo.yaml"):
        return self.ws.write(name, f"""service: {ECHO}
owner: echo-team
descriptor_set: {ECHO_HTTP_V1}
backend: {backend}
{extra}""")

    def served_by(self):
        """The address of the echo backend that answers a gRPC call (x-served-by)."""
        call = self.gw.channel.unary_unary(f"/{ECHO}/Unary")
        response, rpc = call.with_call(echo_request(b"who"), timeout=TIMEOUT)
        self.assertTrue(response.startswith(echo_request(b"who")), response)
        return dict(rpc.initial_metadata())["x-served-by"]

    def test_apply_serves_through_the_files_own_backend_until_removed(self):
        own = f'{{target: "ipv4:{self.own_echo.address}", connect_timeout: 2s}}'
        path = self.service_file(own)
        code, out = self.gw.ctl("diff", "-f", path)
        self.assertEqual(code, 0, out)
        self.assertIn(f'~ backend_config: none -> name: "{ECHO}" target: "ipv4:'
                      f'{self.own_echo.address}"', out)
        code, out = self.gw.ctl("apply", "-f", path)
        self.assertEqual(code, 0, out)
        self.assertIn(f"registered v1 (backend {ECHO}, owner echo-team)", out)

        # gRPC and REST reach the service's own backend, not the config's "echo".
        self.assertEqual(self.served_by(), self.own_echo.address)
        status, body = self.gw.rest("POST", "/v1/echo", {"payload": "aGVsbG8="})
        self.assertEqual((status, json.loads(body)), (200, {"payload": "aGVsbG8="}), body)

        # The same file again changes nothing; show names the definition.
        code, out = self.gw.ctl("apply", "-f", path)
        self.assertEqual(code, 0, out)
        self.assertIn("unchanged, v1", out)
        code, out = self.gw.ctl("diff", "-f", self.service_file(
            f'{{target: "ipv4:{self.config_echo.address}"}}', name="moved.yaml"))
        self.assertEqual(code, 0, out)
        self.assertIn(f'~ backend_config: name: "{ECHO}" target: "ipv4:{self.own_echo.address}"'
                      f' connect_timeout {{ seconds: 2 }} -> name: "{ECHO}" target: "ipv4:'
                      f'{self.config_echo.address}"', out)

        code, out = self.gw.ctl("show", ECHO)
        self.assertEqual(code, 0, out)
        self.assertIn(f'backend:    {ECHO} (its own: name: "{ECHO}" target: "ipv4:'
                      f'{self.own_echo.address}"', out)

        # Restart with the directory store: served again through its own backend.
        self.gw.stop()
        self.gw.start()
        self.assertEqual(self.served_by(), self.own_echo.address)

        # Remove: the routes and the backend go.
        code, out = self.gw.ctl("remove", ECHO, "--owner=echo-team")
        self.assertEqual(code, 0, out)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"x"))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        status, _ = self.gw.rest("POST", "/v1/echo", {"payload": "eA=="})
        self.assertEqual(status, 404)

    def test_an_invalid_or_colliding_backend_is_refused_naming_the_key(self):
        code, out = self.gw.ctl("apply", "-f", self.service_file("{target: \"ipv4:x\", bogus: 1}"))
        self.assertEqual(code, 2, out)
        self.assertIn("backend.bogus", out)
        code, out = self.gw.ctl("apply", "-f", self.service_file(
            f'{{name: bookstore, target: "ipv4:{self.own_echo.address}"}}'))
        self.assertEqual(code, 1, out)
        self.assertIn('backend_config.name: "bookstore" is a backend of the gateway config', out)
        code, out = self.gw.ctl("apply", "-f", self.service_file("{target: \"http://x:1\"}"))
        self.assertEqual(code, 1, out)
        self.assertIn('backend_config.target: "http://x:1": unsupported scheme', out)


class OwnRulesTest(unittest.TestCase):
    """A service file with the service's own deadline and retry rules: they apply to its
    methods only, and a rule for another service's methods is refused."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.config_echo = self.ws.echo_backend()
        self.own_echo = self.ws.echo_backend()
        self.gw = registry_test.Gateway(self.ws, self.bookstore.address,
                                        self.config_echo.address,
                                        os.path.join(self.ws.dir, "registry"))

    def tearDown(self):
        self.ws.close()

    def apply(self, rules, command="apply"):
        path = self.ws.write("echo.yaml", f"""service: {ECHO}
owner: echo-team
descriptor_set: {ECHO_HTTP_V1}
backend: {{target: "ipv4:{self.own_echo.address}"}}
{rules}""")
        return self.gw.ctl(command, "-f", path)

    def timed_call(self, sleep_ms):
        """(status code, seconds) of a gRPC call of Echo.Unary that the backend answers
        after sleep_ms, with the client's own deadline 5 s."""
        call = self.gw.channel.unary_unary(f"/{ECHO}/Unary")
        started = time.monotonic()
        try:
            response = call(echo_request(b"slow", sleep_ms), timeout=5)
            self.assertTrue(response.startswith(echo_request(b"slow")), response)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        return code, time.monotonic() - started

    def test_deadline_and_retry_rules_apply_to_the_services_methods(self):
        code, out = self.apply(f"deadlines: {{rules: [{{selectors: [{ECHO}.Unary], "
                               f"max_timeout: 300ms}}]}}")
        self.assertEqual(code, 0, out)
        self.assertIn(f'~ deadlines: none -> rules {{ selectors: "{ECHO}.Unary" max_timeout '
                      f'{{ nanos: 300000000 }} }}', out)
        self.assertEqual(self.timed_call(0)[0], grpc.StatusCode.OK)
        status, elapsed = self.timed_call(2000)
        self.assertEqual(status, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(elapsed, 1.5)
        # The config's service is not governed by the registered rule.
        self.assertIsNotNone(self.gw.grpc_call("/bookstore.v1.Bookstore/ListShelves"))

        # A retry rule (no selectors: the whole service): each attempt gets 200 ms, two in
        # all, so a 600 ms answer fails after two attempts (at least 400 ms), not one.
        code, out = self.apply("retries: {rules: [{max_attempts: 2, per_try_timeout: 200ms, "
                               "retry_on: [DEADLINE_EXCEEDED]}]}", command="diff")
        self.assertEqual(code, 0, out)
        self.assertIn(f"~ deadlines: rules {{ selectors: \"{ECHO}.Unary\" max_timeout {{ nanos: "
                      f"300000000 }} }} -> none", out)
        self.assertIn(f'~ retries: none -> rules {{ selectors: "{ECHO}.*" max_attempts: 2', out)
        code, out = self.apply("retries: {rules: [{max_attempts: 2, per_try_timeout: 200ms, "
                               "retry_on: [DEADLINE_EXCEEDED]}]}")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.timed_call(50)[0], grpc.StatusCode.OK)
        status, elapsed = self.timed_call(600)
        self.assertNotEqual(status, grpc.StatusCode.OK)
        self.assertGreaterEqual(elapsed, 0.39)
        self.assertLess(elapsed, 0.6)

        # Without rules the same call takes its 600 ms and succeeds.
        code, out = self.apply("")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.timed_call(600)[0], grpc.StatusCode.OK)

    def test_a_rule_for_another_services_methods_or_a_gateway_wide_key_is_refused(self):
        code, out = self.apply("deadlines: {rules: [{selectors: [bookstore.v1.Bookstore.*], "
                               "max_timeout: 1s}]}")
        self.assertEqual(code, 1, out)
        self.assertIn('deadlines.rules[0].selectors[0]: "bookstore.v1.Bookstore.*" is not a '
                      f"method of {ECHO} (a registration's rules apply to its own methods "
                      f"only: {ECHO}.* or {ECHO}.METHOD)", out)
        code, out = self.apply("retries: {budget_percent: 90, rules: [{max_attempts: 2}]}")
        self.assertEqual(code, 1, out)
        self.assertIn("retries.budget_percent: gateway-wide, set in the gateway config only",
                      out)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"x"))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    unittest.main()
