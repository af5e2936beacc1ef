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


if __name__ == "__main__":
    unittest.main()
