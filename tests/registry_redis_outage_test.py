"""Integration tests of a registry shared through Redis when Redis is down: a gateway starts
from the state it cached, serves it, says so in its log and in /readyz, reconnects in the
background and converges once Redis answers again.

Real processes on loopback: redis-server (append-only file in the test's directory, so a
restarted server keeps its data), gatewayd, the bookstore and echo backends, gatewayctl.
Every call carries a timeout; every wait is bounded.
"""

import os
import signal
import subprocess
import time
import unittest

import grpc

import harness
import registry_test
from registry_test import ECHO_HTTP_V1, ECHO_HTTP_V2, TIMEOUT, echo_request

WAIT = 20  # seconds; the bound of every wait for a state below


def start_redis(ws, port):
    """A persistent redis-server on 127.0.0.1:`port` (a restart on the same port restores
    what was stored); returns the process once it answers PING."""
    return harness.redis_server(ws, port=port, timeout=WAIT, persistent=True)[0]


def wait_until(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class RedisOutageTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        self.port = harness.free_port()
        self.redis_address = f"127.0.0.1:{self.port}"
        self.cache = os.path.join(self.ws.dir, "registry-cache")

    def gateway(self, name, cache=True):
        options = f'registry_redis_cache_directory: "{self.cache}"' if cache else ""
        return registry_test.Gateway(self.ws, self.bookstore.address, self.echo.address,
                                     name=name, redis=self.redis_address,
                                     admin_options=options)

    def register(self, gw, descriptor_set, *extra):
        return gw.ctl("register", "gateway.test.v1.Echo", f"--descriptor-set={descriptor_set}",
                      "--backend=echo", "--owner=platform-test", *extra)

    def echo_answers(self, gw):
        try:
            return b"cached" in gw.grpc_call("/gateway.test.v1.Echo/Unary",
                                             echo_request(b"cached"))
        except grpc.RpcError:
            return False

    def readyz(self, gw):
        status, body = gw.rest("GET", "/readyz")
        return status, body.decode()

    def test_starts_from_the_cache_and_converges_when_redis_is_back(self):
        redis = start_redis(self.ws, self.port)
        a = self.gateway("gatewayd_a")
        code, out = self.register(a, ECHO_HTTP_V1)
        self.assertEqual(code, 0, out)
        self.assertTrue(self.echo_answers(a))
        self.assertEqual(a.stop(), 0)
        redis.stop(signal.SIGTERM)

        # Redis is down: the gateway starts anyway and serves the service it cached.
        b = self.gateway("gatewayd_b")
        self.assertTrue(self.echo_answers(b))
        self.assertEqual(b.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 200)
        log = b.process.output()
        self.assertIn(f"registry: redis {self.redis_address} unavailable at start (", log)
        self.assertIn(f"): serving the cached state from ", log)
        self.assertIn(f"registry: redis {self.redis_address} unavailable (", log)
        # Ready (once its backends' channels connect), saying what it serves.
        wait_until(lambda: self.readyz(b)[0] == 200)
        status, body = self.readyz(b)
        self.assertEqual(status, 200, body)
        self.assertIn(f"degraded: registry: redis {self.redis_address} unavailable (", body)
        self.assertIn("serving cached state from ", body)
        # Changes need Redis.
        code, out = self.register(b, ECHO_HTTP_V2, "--force")
        self.assertNotEqual(code, 0, out)
        self.assertIn("changes need Redis", out)

        # Redis is back (with what it stored); another gateway registers v2 meanwhile.
        start_redis(self.ws, self.port)
        c = self.gateway("gatewayd_c", cache=False)
        code, out = self.register(c, ECHO_HTTP_V2, "--force")
        self.assertEqual(code, 0, out)
        self.assertIn("registered v2", out)
        start = time.monotonic()
        self.assertTrue(wait_until(
            lambda: b.rest("POST", "/v2/echo", {"payload": "aGk="})[0] == 200),
            b.process.output())
        print(f"\ngateway b served v2 {time.monotonic() - start:.1f} s after it was "
              "registered", file=__import__("sys").stderr)
        self.assertEqual(b.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 404)
        self.assertTrue(wait_until(lambda: self.readyz(b) == (200, "ready\n")), self.readyz(b))
        self.assertIn(f"registry: redis {self.redis_address} answers again", b.process.output())
        # And b's cache now holds v2: a gateway started while Redis is down again serves it.
        self.assertEqual(b.stop(), 0)
        self.assertEqual(c.stop(), 0)
        for p in self.ws.processes:
            if p.name == "redis":
                p.stop(signal.SIGTERM)
        d = self.gateway("gatewayd_d")
        self.assertEqual(d.rest("POST", "/v2/echo", {"payload": "aGk="})[0], 200)

    def test_cache_follows_a_redis_that_was_emptied(self):
        # Redis restarted without its data: version numbers start over, and the cache must
        # hold the new content under the old file names.
        redis = start_redis(self.ws, self.port)
        a = self.gateway("gatewayd_a")
        self.assertEqual(self.register(a, ECHO_HTTP_V1)[0], 0)
        redis.stop(signal.SIGTERM)
        for name in os.listdir(self.ws.dir):
            if name.startswith("appendonly"):
                subprocess.run(["rm", "-rf", os.path.join(self.ws.dir, name)], check=True,
                               timeout=30)
        redis = start_redis(self.ws, self.port)
        other = self.gateway("gatewayd_other", cache=False)
        code, out = self.register(other, ECHO_HTTP_V2)
        self.assertEqual(code, 0, out)
        self.assertIn("registered v1", out)
        self.assertTrue(wait_until(
            lambda: a.rest("POST", "/v2/echo", {"payload": "aGk="})[0] == 200),
            a.process.output())
        self.assertEqual(a.stop(), 0)
        redis.stop(signal.SIGTERM)
        b = self.gateway("gatewayd_b")
        self.assertEqual(b.rest("POST", "/v2/echo", {"payload": "aGk="})[0], 200)
        self.assertEqual(b.rest("POST", "/v1/echo", {"payload": "aGk="})[0], 404)

    def test_without_a_cache_it_starts_not_ready_and_converges(self):
        gw = self.gateway("gatewayd", cache=False)
        status, body = self.readyz(gw)
        self.assertEqual(status, 503, body)
        self.assertIn("no cached state: registered services are not served", body)
        self.assertIn("admin_listener.registry_redis_cache_directory is not set",
                      gw.process.output())
        self.assertFalse(self.echo_answers(gw))
        # The config's services are served meanwhile.
        gw.grpc_call("/bookstore.v1.Bookstore/ListShelves")
        start_redis(self.ws, self.port)
        other = self.gateway("gatewayd_other", cache=False)
        code, out = self.register(other, ECHO_HTTP_V1)
        self.assertEqual(code, 0, out)
        self.assertTrue(wait_until(lambda: self.echo_answers(gw)), gw.process.output())
        self.assertTrue(wait_until(lambda: self.readyz(gw)[0] == 200), self.readyz(gw))


if __name__ == "__main__":
    unittest.main()
