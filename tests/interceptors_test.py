"""The interceptor chain on the gRPC front end: quotas (exactness under concurrency, the
rejection's status and trailers) and deadlines (default, cap, what the backend sees)."""

import concurrent.futures
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, StatsReq, Stubs, TIMEOUT, gateway_config


class InterceptorsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.backend = cls.ws.echo_backend()
        extra = """
quotas:
  rules:
    - name: stats-global
      selectors: ["gateway.test.v1.Echo.Stats"]
      key: GLOBAL
      requests: 25
      per: 1h
    - name: per-tenant
      selectors: ["gateway.test.v1.Echo.ClientStream"]
      key: HEADER
      header: x-tenant
      requests: 2
      per: 1h
deadlines:
  rules:
    - selectors: ["gateway.test.v1.Echo.Unary"]
      default_timeout: 3s
      max_timeout: 5s
    - selectors: ["gateway.test.v1.Echo.ServerStream"]
      max_timeout: 500ms
"""
        cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address, extra))
        cls.stubs = Stubs(cls.gateway.address)

    @classmethod
    def tearDownClass(cls):
        cls.stubs.close()
        cls.ws.close()

    def test_of_many_concurrent_calls_exactly_the_quota_is_allowed(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(self._stats_call) for _ in range(100)]
            codes = [f.result() for f in futures]
        self.assertEqual(codes.count(grpc.StatusCode.OK), 25, codes)
        self.assertEqual(codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED), 75, codes)

    def _stats_call(self):
        try:
            self.stubs.stats(StatsReq(tag="q"), timeout=TIMEOUT)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def test_rejection_names_the_rule_and_sends_rate_limit_trailers(self):
        for i in range(2):
            self.stubs.client_stream(iter([Req()]), timeout=TIMEOUT,
                                     metadata=[("x-tenant", "acme")])
        with self.assertRaises(grpc.RpcError) as cm:
            self.stubs.client_stream(iter([Req()]), timeout=TIMEOUT,
                                     metadata=[("x-tenant", "acme")])
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn('quota "per-tenant" exceeded (2 calls per 1h, burst 2)', err.details())
        trailers = dict(err.trailing_metadata())
        self.assertEqual(trailers["ratelimit-limit"], "2")
        self.assertEqual(trailers["ratelimit-remaining"], "0")
        self.assertGreater(int(trailers["retry-after"]), 0)
        # Another tenant has its own bucket.
        self.stubs.client_stream(iter([Req()]), timeout=TIMEOUT,
                                 metadata=[("x-tenant", "other")])

    def test_default_deadline_applies_when_the_client_sets_none(self):
        resp = self.stubs.unary(Req(), timeout=None)
        self.assertGreater(resp.deadline_ms, 2000)
        self.assertLessEqual(resp.deadline_ms, 3100)  # grpc-timeout rounds up

    def test_client_deadline_is_capped_at_the_maximum(self):
        resp = self.stubs.unary(Req(), timeout=60)
        self.assertGreater(resp.deadline_ms, 4000)
        self.assertLessEqual(resp.deadline_ms, 5100)
        # A shorter client deadline is kept.
        resp = self.stubs.unary(Req(), timeout=2)
        self.assertLessEqual(resp.deadline_ms, 2100)

    def test_capped_deadline_expires_as_deadline_exceeded(self):
        started = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.stubs.server_stream(Req(count=100, sleep_ms=100), timeout=30))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - started, 5)

    def test_methods_without_rules_are_untouched(self):
        got = list(self.stubs.bidi(iter([Req(payload=b"x")] * 50), timeout=TIMEOUT))
        self.assertEqual(len(got), 50)
        resp = self.stubs.unary(Req(), timeout=TIMEOUT)  # Unary has no quota
        self.assertEqual(resp.payload, b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
