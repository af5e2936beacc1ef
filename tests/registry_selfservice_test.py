"""Integration tests of self-service registrations: a service file that carries the
backend serving the service (one the gateway config does not name) and the service's own
deadline, retry, quota and auth rules, applied with `gatewayctl apply -f`; and the audit
log's record of config reloads.

Real processes on loopback: gatewayd (with a directory store), the bookstore and echo
backends, gatewayctl and grpcio. Every call carries a timeout; every wait is bounded.
"""

import hashlib
import http.client
import json
import os
import re
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
        out += b"\x10" + harness.varint(sleep_ms)
    return out


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


QUOTA_NAME = f"{ECHO}/three"


class OwnQuotaAndAuthTest(unittest.TestCase):
    """A service file with the service's own quota and auth rules: they add to the gateway
    config's (never loosen them), keep counting across other registrations, and may not
    define providers or reach other services' methods."""

    API_KEY = "team-key-0123456789"

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()

    def start(self, extra=""):
        self.gw = registry_test.Gateway(self.ws, self.bookstore.address, self.echo.address,
                                        os.path.join(self.ws.dir, "registry"), extra=extra)

    def apply(self, rules, command="apply"):
        path = self.ws.write("echo.yaml", f"""service: {ECHO}
owner: echo-team
descriptor_set: {ECHO_HTTP_V1}
backend: echo
{rules}""")
        return self.gw.ctl(command, "-f", path)

    def grpc_code(self, metadata=()):
        call = self.gw.channel.unary_unary(f"/{ECHO}/Unary")
        try:
            call(echo_request(b"q"), timeout=TIMEOUT, metadata=metadata)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    def rest(self, headers=None):
        return self.gw.rest("POST", "/v1/echo", {"payload": "cQ=="}, headers=headers)

    def register_other_service(self):
        self.ws.write("other.proto", """syntax = "proto3";
package other.v1;
message M {}
service Other { rpc Get(M) returns (M); }
""")
        path = self.ws.write("other.yaml", """service: other.v1.Other
owner: other-team
protos: [other.proto]
backend: echo
force: true
""")
        code, out = self.gw.ctl("apply", "-f", path)
        self.assertEqual(code, 0, out)
        self.assertIn("other.v1.Other: registered v1", out)

    def test_quota_refuses_the_call_past_its_limit_and_keeps_counting(self):
        self.start()
        rules = ("quotas: {rules: [{name: three, requests: 3, per: 3600s, key: GLOBAL}]}")
        code, out = self.apply(rules, command="diff")
        self.assertEqual(code, 0, out)
        self.assertIn(f'~ quotas: none -> rules {{ name: "three" selectors: "{ECHO}.*" key: '
                      f'GLOBAL requests: 3 per {{ seconds: 3600 }} }}', out)
        code, out = self.apply(rules)
        self.assertEqual(code, 0, out)
        code, out = self.gw.ctl("show", ECHO)
        self.assertIn('quotas:     rules { name: "three"', out)
        # Three calls, gRPC and REST alike, then the fourth is refused on both.
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.OK)
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.OK)
        status, body = self.rest()
        self.assertEqual(status, 200, body)
        code, details = self.grpc_code()
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        self.assertIn(f'quota "{QUOTA_NAME}" exceeded (3 calls per 1h', details)
        status, body = self.rest()
        self.assertEqual(status, 429, body)
        self.assertIn(f'quota \\"{QUOTA_NAME}\\" exceeded', body.decode())
        # The config's service is not counted by the registration's rule.
        for _ in range(4):
            self.assertIsNotNone(self.gw.grpc_call("/bookstore.v1.Bookstore/ListShelves"))

        # Another service registered, then the same file again: the count goes on.
        self.register_other_service()
        code, details = self.grpc_code()
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        code, out = self.apply(rules)
        self.assertEqual(code, 0, out)
        self.assertIn("unchanged, v1", out)
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(self.rest()[0], 429)

        # A shared rule needs the config's Redis store, which this gateway has not.
        code, out = self.apply("quotas: {rules: [{name: s, requests: 3, shared: true}]}")
        self.assertEqual(code, 1, out)
        self.assertIn("quotas.rules[0].shared: the gateway config has no shared quota store",
                      out)

    def test_a_stricter_gateway_wide_quota_still_applies(self):
        self.start(extra=f"""quotas: {{rules: [{{name: gateway-two, selectors: ["{ECHO}.*"],
  requests: 2, per: 3600s, key: GLOBAL}}]}}""")
        code, out = self.apply("quotas: {rules: [{name: five, requests: 5, per: 3600s, "
                               "key: GLOBAL}]}")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.OK)
        self.assertEqual(self.rest()[0], 200)
        code, details = self.grpc_code()
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        self.assertIn('quota "gateway-two" exceeded', details)

    def test_auth_rule_requires_the_gateways_api_key_and_defines_nothing(self):
        digest = hashlib.sha256(self.API_KEY.encode()).hexdigest()
        keys = self.ws.write("keys.txt", f"echo-team {digest}\n")
        self.start(extra=f'auth: {{api_keys: {{keys_file: "{keys}"}}}}')
        # Without a rule of its own: the gateway's auth has no rules, the method is open.
        code, out = self.apply("")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.OK)
        code, out = self.apply("auth: {rules: [{providers: [api_key]}]}")
        self.assertEqual(code, 0, out)
        self.assertIn(f'~ auth: none -> rules {{ selectors: "{ECHO}.*" providers: "api_key" }}',
                      out)
        code, details = self.grpc_code()
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, details)
        self.assertIn(f"missing credentials: /{ECHO}/Unary needs an API key", details)
        self.assertEqual(self.grpc_code(metadata=(("x-api-key", self.API_KEY),))[0],
                         grpc.StatusCode.OK)
        self.assertEqual(self.grpc_code(metadata=(("x-api-key", "wrong"),))[0],
                         grpc.StatusCode.UNAUTHENTICATED)
        status, body = self.rest()
        self.assertEqual(status, 401, body)
        status, body = self.rest(headers={"x-api-key": self.API_KEY})
        self.assertEqual(status, 200, body)
        # The config's service stays as the config has it: open.
        self.assertIsNotNone(self.gw.grpc_call("/bookstore.v1.Bookstore/ListShelves"))

        # Providers, JWKS and key files are the gateway's; other services' methods are not
        # the registration's; and a rule cannot open a method.
        code, out = self.apply('auth: {jwt_providers: [{name: mine, issuer: "https://idp", '
                               'jwks_uri: "https://idp.example/jwks"}], '
                               'rules: [{providers: [mine]}]}')
        self.assertEqual(code, 1, out)
        self.assertIn("auth.jwt_providers: gateway-owned: a registration cannot define JWT "
                      "providers, JWKS files or URLs", out)
        code, out = self.apply("auth: {rules: [{providers: [corp]}]}")
        self.assertEqual(code, 1, out)
        self.assertIn('auth.rules[0].providers[0]: unknown provider "corp" (known: api_key)',
                      out)
        code, out = self.apply("auth: {rules: [{selectors: [bookstore.v1.Bookstore.*], "
                               "providers: [api_key]}]}")
        self.assertEqual(code, 1, out)
        self.assertIn('auth.rules[0].selectors[0]: "bookstore.v1.Bookstore.*" is not a method '
                      f"of {ECHO}", out)
        code, out = self.apply("auth: {rules: [{allow_unauthenticated: true}]}")
        self.assertEqual(code, 1, out)
        self.assertIn("auth.rules[0].allow_unauthenticated: these rules only add requirements",
                      out)
        # Still served with the registered rule.
        self.assertEqual(self.grpc_code()[0], grpc.StatusCode.UNAUTHENTICATED)


class OwnBackendObservedTest(unittest.TestCase):
    """A registration's own backend in the upstream metrics and /readyz, like a config
    backend, without holding readiness back."""

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        bookstore = harness.bookstore_backend(self.ws)
        config_echo = self.ws.echo_backend()
        self.own_echo = self.ws.echo_backend()
        self.gw = registry_test.Gateway(self.ws, bookstore.address, config_echo.address,
                                        os.path.join(self.ws.dir, "registry"),
                                        extra='metrics_listener: {address: "127.0.0.1:0"}')
        self.metrics = registry_test.wait_for(self.gw.process,
                                              re.compile(rb"metrics listening on (\S+)"))

    def apply(self, backend):
        path = self.ws.write("echo.yaml", f"""service: {ECHO}
owner: echo-team
descriptor_set: {ECHO_HTTP_V1}
backend: {backend}
""")
        code, out = self.gw.ctl("apply", "-f", path)
        self.assertEqual(code, 0, out)

    def scrape(self):
        host, port = self.metrics.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def test_own_backend_is_in_the_metrics_and_readyz_without_holding_readiness(self):
        self.apply(f'{{target: "ipv4:{self.own_echo.address}"}}')
        call = self.gw.channel.unary_unary(f"/{ECHO}/Unary")
        call(echo_request(b"m"), timeout=TIMEOUT)
        host, port = self.own_echo.address.rsplit(":", 1)
        series = (f'gateway_upstream_requests_total{{backend="{ECHO}",'
                  f'endpoint="{host}:{port}"}} 1')
        wait_until(lambda: series in self.scrape(), "the own backend's request counter")
        self.assertIn(f'gateway_upstream_request_duration_seconds_count{{backend="{ECHO}"}} 1',
                      self.scrape())

        # A backend that cannot be reached is listed by /readyz, which stays 200.
        self.apply('{target: "dns:///backend.invalid:1"}')
        def listed():
            status, body = self.gw.rest("GET", "/readyz")
            return status == 200 and f"backend {ECHO} " in body.decode() and \
                "(not required)" in body.decode()
        wait_until(listed, "/readyz listing the registered backend as not required")
        status, body = self.gw.rest("GET", "/readyz")
        self.assertTrue(body.decode().startswith("ready\n"), body)
        # Removed: its cluster is no longer described.
        code, out = self.gw.ctl("remove", ECHO, "--owner=echo-team")
        self.assertEqual(code, 0, out)
        self.assertNotIn(f'gateway_upstream_pending_requests{{backend="{ECHO}"}}', self.scrape())


if __name__ == "__main__":
    unittest.main()
