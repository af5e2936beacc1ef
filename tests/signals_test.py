"""Integration test of how gatewayd treats signals: SIGHUP (sent by `systemctl reload`)
reloads the config, the process keeps serving; SIGTERM still stops it.
"""

import signal
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, Resp, SERVICE, gateway_config

TIMEOUT = 10  # seconds; the bound of any call or wait below
_RELOAD_LINE = "gatewayd: reload applied: "


class SighupTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        backend = self.ws.echo_backend()
        self.gateway = self.ws.gatewayd(gateway_config(backend.address))
        self.channel = grpc.insecure_channel(self.gateway.address)
        self.addCleanup(self.channel.close)
        self.unary = self.channel.unary_unary(SERVICE + "Unary",
                                              request_serializer=Req.SerializeToString,
                                              response_deserializer=Resp.FromString)

    def call(self, payload):
        return self.unary(Req(payload=payload), timeout=TIMEOUT).payload

    def test_sighup_reloads_and_keeps_serving(self):
        self.assertEqual(self.call(b"before"), b"before")
        # Twice, one after the other is logged (pending signals of one kind merge).
        for count in (1, 2):
            self.gateway.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + TIMEOUT
            while (self.gateway.output().count(_RELOAD_LINE) < count and self.gateway.alive()
                   and time.monotonic() < deadline):
                time.sleep(0.02)
        self.assertTrue(self.gateway.alive(),
                        f"exit code {self.gateway.proc.returncode}:\n{self.gateway.output()}")
        self.assertEqual(self.gateway.output().count(_RELOAD_LINE), 2, self.gateway.output())
        self.assertEqual(self.call(b"after"), b"after")
        # SIGTERM still stops it, cleanly.
        self.assertEqual(self.gateway.stop(signal.SIGTERM, timeout=TIMEOUT), 0)
        self.assertIn("received SIGTERM", self.gateway.output())


if __name__ == "__main__":
    unittest.main()
