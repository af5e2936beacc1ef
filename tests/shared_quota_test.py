"""Shared quotas: two gatewayd processes enforce one limit through a real redis-server, and
behave as configured (fail open / fail closed) when Redis goes away."""

import concurrent.futures
import signal
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, StatsReq, Stubs, TIMEOUT, gateway_config


def shared_config(backend, redis, failure_mode="FAIL_OPEN", requests=30):
    return gateway_config(backend, f"""
quotas:
  redis: {{address: "{redis}", failure_mode: {failure_mode}, timeout: 200ms}}
  rules:
    - name: shared-stats
      selectors: ["gateway.test.v1.Echo.Stats"]
      key: GLOBAL
      requests: {requests}
      per: 1h
      shared: true
""")


def call(stubs):
    try:
        stubs.stats(StatsReq(tag="s"), timeout=TIMEOUT)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


class SharedQuotaTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.backend = self.ws.echo_backend()

    def tearDown(self):
        self.ws.close()

    def test_two_gateways_share_one_limit_exactly(self):
        _, redis = harness.redis_server(self.ws)
        a = Stubs(self.ws.gatewayd(shared_config(self.backend.address, redis), "gw-a").address)
        b = Stubs(self.ws.gatewayd(shared_config(self.backend.address, redis), "gw-b").address)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda i: call(a if i % 2 else b), range(100)))
        self.assertEqual(codes.count(grpc.StatusCode.OK), 30, codes)
        self.assertEqual(codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED), 70, codes)
        with self.assertRaises(grpc.RpcError) as cm:
            b.stats(StatsReq(tag="s"), timeout=TIMEOUT)
        self.assertIn('quota "shared-stats" exceeded', cm.exception.details())
        self.assertIn("retry-after", dict(cm.exception.trailing_metadata()))
        # Methods without a shared rule never wait for Redis.
        self.assertEqual(a.unary(Req(payload=b"x"), timeout=TIMEOUT).payload, b"x")
        a.close()
        b.close()

    def test_redis_down_fails_open_or_closed_as_configured(self):
        redis_proc, redis = harness.redis_server(self.ws)
        open_gw = self.ws.gatewayd(shared_config(self.backend.address, redis, "FAIL_OPEN", 1000),
                                   "gw-open")
        closed_gw = self.ws.gatewayd(
            shared_config(self.backend.address, redis, "FAIL_CLOSED", 1000), "gw-closed")
        fail_open = Stubs(open_gw.address)
        fail_closed = Stubs(closed_gw.address)
        self.assertEqual(call(fail_open), grpc.StatusCode.OK)
        self.assertEqual(call(fail_closed), grpc.StatusCode.OK)

        redis_proc.stop(signal.SIGKILL)
        started = time.monotonic()
        self.assertEqual([call(fail_open) for _ in range(5)], [grpc.StatusCode.OK] * 5)
        self.assertEqual([call(fail_closed) for _ in range(5)],
                         [grpc.StatusCode.UNAVAILABLE] * 5)
        # Failing is fast: no call waits long for a dead Redis.
        self.assertLess(time.monotonic() - started, 5)
        with self.assertRaises(grpc.RpcError) as cm:
            fail_closed.stats(StatsReq(tag="s"), timeout=TIMEOUT)
        self.assertIn("quota store unavailable", cm.exception.details())
        self.assertIn("quota store unavailable", open_gw.output())
        self.assertIn("failing open", open_gw.output())

        # Redis back on the same port: the gateways reconnect (at most 1 s backoff).
        harness.redis_server(self.ws, port=int(redis.rsplit(":", 1)[1]))
        deadline = time.monotonic() + 10
        while call(fail_closed) != grpc.StatusCode.OK:
            self.assertLess(time.monotonic(), deadline, "fail-closed gateway never recovered")
            time.sleep(0.2)
        self.assertTrue(open_gw.alive() and closed_gw.alive())
        fail_open.close()
        fail_closed.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
