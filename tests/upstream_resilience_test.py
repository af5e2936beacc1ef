"""The HTTP front end's own upstream under failure, with real processes on loopback.

gatewayd calls several echo backends (tests/backend/echo_backend) through its HTTP/2 upstream
while REST clients (http.client, several threads, keep-alive) call it; the tests kill,
restart, drain and health-flip backends, overload a circuit breaker, fail every call to
exhaust a retry budget, and put a hostile HTTP/2 server (python3-h2) behind the gateway. Each
response names the backend that served it (the backends' "x-served-by" metadata, exposed as a
response header), and each backend counts the Unary calls per tag it received (Stats.calls).
Every call and every wait is bounded in time; the times and counts measured are printed.
"""

import http.client
import json
import re
import signal
import socket
import struct
import threading
import time
import unittest

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions

import harness

CALL_TIMEOUT = 10  # seconds; the bound of any single REST call below
MSGS = harness.load_messages(harness.ECHO_SET)
StatsRequest = MSGS["gateway.test.v1.StatsRequest"]
StatsResponse = MSGS["gateway.test.v1.StatsResponse"]
UNARY_PATH = "/gateway.test.v1.Echo/Unary"


def gateway_config(target, backend_extra="", retries="", http_extra=""):
    """gatewayd config: Echo on backend "echo" at `target`, Bookstore on "hostile" when
    `backend_extra` has no say; REST on with gRPC paths and x-served-by exposed."""
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "{target}"
{backend_extra}
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
{retries}
runtime: {{shutdown_grace: 5s, worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 2
  default_deadline: 10s
  exposed_response_metadata: [x-served-by]
  transcoding: {{expose_grpc_paths: true}}
{http_extra}
"""


def unary_retry_rule(max_attempts, budget=""):
    return f"""
retries:
{budget}
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], max_attempts: {max_attempts}, retry_on: [UNAVAILABLE]}}
"""


class Result:
    """One REST call: when it ended, its HTTP status, the backend that served it, its body."""

    def __init__(self, start, end, status, served_by, body):
        self.start, self.end, self.status, self.served_by, self.body = (
            start, end, status, served_by, body)


def rest_call(conn, path, body, headers=None):
    """POSTs `body` as JSON on `conn`; returns a Result (status 0 with the error as body
    when the connection failed)."""
    start = time.monotonic()
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data.decode(errors="replace")
        # Unary sends x-served-by as initial and trailing metadata: "A, A".
        served_by = (resp.getheader("x-served-by") or "").split(",")[0].strip() or None
        return Result(start, time.monotonic(), resp.status, served_by, parsed)
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        return Result(start, time.monotonic(), 0, None, f"{type(e).__name__}: {e}")


def http_conn(address):
    host, port = address.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)


class Load:
    """`threads` REST clients calling Unary in a loop, each on its own keep-alive
    connection, until stop(); every Result is kept."""

    def __init__(self, address, threads=4, body=None):
        self.address = address
        self.body = body or {"payload": "aGk="}
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        conn = http_conn(self.address)
        while not self._stop.is_set():
            r = rest_call(conn, UNARY_PATH, self.body)
            with self._lock:
                self.results.append(r)
            if r.status == 0:
                conn = http_conn(self.address)
        conn.close()

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(CALL_TIMEOUT + 5)
        return self.snapshot()


def metrics_page(gw):
    """gatewayd's /metrics page (its metrics_listener's address is in its log)."""
    m = re.search(r"metrics listening on (\S+)", gw.output())
    host, port = m.group(1).rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def failures(results):
    return [(r.status, r.body) for r in results if r.status != 200]


def stats(backend_address, tag):
    with grpc.insecure_channel(backend_address) as channel:
        call = channel.unary_unary("/gateway.test.v1.Echo/Stats",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=StatsResponse.FromString)
        return call(StatsRequest(tag=tag), timeout=5)


def wait_for(predicate, timeout, step=0.02):
    """Polls `predicate` until it is true or `timeout` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class UpstreamResilienceTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)

    def start_backends(self, n, health=False):
        argv = [harness.ECHO_BACKEND, "--listen=127.0.0.1:0"] + (["--health"] if health else [])
        return [self.ws.start(argv, f"echo_backend{i}") for i in range(n)]

    def start_gateway(self, config_text, name="gatewayd"):
        gw = self.ws.gatewayd(config_text, name=name)
        return gw, harness.http_address(gw)

    def first_served_by(self, load, address, after, timeout):
        """Seconds from `after` until a call of `load` that started after it was served by
        `address`, or None within `timeout`."""
        def find():
            for r in load.snapshot():
                if r.start >= after and r.served_by == address:
                    return r.end - after
            return None
        return wait_for(find, timeout)

    # 1 -----------------------------------------------------------------------------------
    def test_killed_backend_is_avoided_and_taken_back_after_restart(self):
        backends = self.start_backends(3)
        victim = backends[1]
        target = "ipv4:" + ",".join(b.address for b in backends)
        gw, http = self.start_gateway(gateway_config(
            target, retries=unary_retry_rule(3) + 'metrics_listener: {address: "127.0.0.1:0"}'))
        # Three clients: at the kill every call in flight may be on the victim, and each must
        # be retried; the default retry limits (circuit_breakers.max_retries 3,
        # retries.min_retry_concurrency 3) allow three retries in flight, and a fourth call
        # failing in the same instant would rightly be refused its retry.
        load = Load(http, threads=3)
        try:
            time.sleep(1.0)
            before = load.snapshot()
            served = {r.served_by for r in before}
            self.assertEqual(served, {b.address for b in backends}, "all three serve at first")
            # The kill counts from when the process is reaped (stop waits for it): a call
            # started while the signal was still on its way may rightly be served by it.
            victim.stop(signal.SIGKILL)
            killed_at = time.monotonic()
            # Long enough for the reconnect backoff to reach its cap (100ms x1.6^n -> 1s).
            time.sleep(4.0)
            restarted = self.ws.start([harness.ECHO_BACKEND, f"--listen={victim.address}"],
                                      "echo_backend1_restarted")
            restarted_at = time.monotonic()
            back_after = self.first_served_by(load, victim.address, restarted_at, 10.0)
            time.sleep(0.5)
        finally:
            results = load.stop()
        during = [r for r in results if killed_at <= r.start and r.end <= restarted_at]
        print(f"\n[kill] {len(results)} calls, {len(during)} while the backend was dead; "
              f"restarted backend served again after {back_after}s", flush=True)
        for r in results:
            if r.status != 200:
                print(f"[kill] failed call: started {r.start - killed_at:+.3f}s, ended "
                      f"{r.end - killed_at:+.3f}s after the kill (restart at "
                      f"{restarted_at - killed_at:+.3f}s): {r.status} {r.body}", flush=True)
        if failures(results):
            lines = [l for l in gw.output().splitlines() if " 200 0 " not in l]
            print("[kill] gateway lines of calls that did not end 200 OK:\n" +
                  "\n".join(lines[-40:]), flush=True)
            print("[kill] " + "\n".join(l for l in metrics_page(gw).splitlines()
                                         if "retr" in l and not l.startswith("#")), flush=True)
        # No call may fail: the rule retries UNAVAILABLE, also a call whose response message
        # had arrived when the kill cut its trailers off (nothing had reached the client).
        self.assertEqual(failures(results), [])
        self.assertGreater(len(during), 100)
        self.assertFalse([f"started {r.start - killed_at:+.4f}s ended {r.end - killed_at:+.4f}s"
                          for r in during if r.served_by == victim.address])
        self.assertEqual({r.served_by for r in during},
                         {backends[0].address, backends[2].address})
        self.assertIsNotNone(back_after, "the restarted backend never got a call again")
        # docs/config.md: reconnect_backoff_max (1s, +-20% jitter) plus an outlier ejection
        # (base_ejection_time 1s), plus slack for a loaded machine.
        self.assertLess(back_after, 1.2 + 1.0 + 1.0)

    # 2 -----------------------------------------------------------------------------------
    def test_health_checks_move_calls_and_readiness(self):
        backends = self.start_backends(3, health=True)
        sick = backends[2]
        target = "ipv4:" + ",".join(b.address for b in backends)
        extra = ("    health_check: {interval: 200ms, timeout: 500ms, unhealthy_threshold: 2, "
                 "healthy_threshold: 1}")
        _, http = self.start_gateway(gateway_config(target, backend_extra=extra))
        load = Load(http, threads=4)
        try:
            time.sleep(1.0)
            self.assertIn(sick.address, {r.served_by for r in load.snapshot()})
            t0 = time.monotonic()
            sick.proc.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
            after = [r for r in load.snapshot() if r.start >= t0]
            last = max((r.end - t0 for r in after if r.served_by == sick.address), default=0.0)
            t1 = time.monotonic()
            sick.proc.send_signal(signal.SIGUSR2)
            back_after = self.first_served_by(load, sick.address, t1, 5.0)
        finally:
            results = load.stop()
        print(f"\n[health] NOT_SERVING backend last served {last:.3f}s after SIGUSR1; "
              f"served again {back_after}s after SIGUSR2", flush=True)
        self.assertEqual(failures(results), [])
        # interval x unhealthy_threshold = 400ms, plus up to one interval of phase, plus slack.
        self.assertLess(last, 0.4 + 0.2 + 0.4)
        self.assertIsNotNone(back_after, "the backend never got calls again after SERVING")
        # interval x healthy_threshold = 200ms, plus one interval of phase, plus slack.
        self.assertLess(back_after, 0.2 + 0.2 + 0.6)

        # /readyz: every endpoint NOT_SERVING -> 503 naming the backend.
        conn = http_conn(http)
        self.addCleanup(conn.close)

        def readyz():
            conn.request("GET", "/readyz")
            resp = conn.getresponse()
            return resp.status, resp.read().decode()

        # The gRPC front end's channel connects on the first /readyz (docs: "asking
        # connects idle channels").
        self.assertTrue(wait_for(lambda: readyz()[0] == 200, 3.0), readyz())
        for b in backends:
            b.proc.send_signal(signal.SIGUSR1)
        t2 = time.monotonic()
        status, text = wait_for(lambda: (lambda s: s if s[0] == 503 else None)(readyz()), 3.0) \
            or readyz()
        print(f"[health] /readyz 503 after {time.monotonic() - t2:.3f}s: {text.strip()!r}",
              flush=True)
        self.assertEqual(status, 503, text)
        self.assertIn("backend echo", text)
        self.assertIn("no healthy endpoint (0 of 3)", text)
        for b in backends:
            self.assertNotIn(b.address, text)
            b.proc.send_signal(signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: readyz()[0] == 200, 3.0), readyz())

    # 3 -----------------------------------------------------------------------------------
    def test_graceful_backend_shutdown_loses_no_call_without_retry_rule(self):
        backends = self.start_backends(3)
        draining = backends[0]
        target = "ipv4:" + ",".join(b.address for b in backends)
        _, http = self.start_gateway(gateway_config(target))
        # Calls of 50ms, so that the draining backend has calls in flight at SIGTERM.
        load = Load(http, threads=6, body={"payload": "aGk=", "sleepMs": 50})
        try:
            time.sleep(1.0)
            self.assertIn(draining.address, {r.served_by for r in load.snapshot()})
            t0 = time.monotonic()
            code = draining.stop(signal.SIGTERM)
            stopped = time.monotonic() - t0
            time.sleep(1.5)
        finally:
            results = load.stop()
        drained = [r for r in results if r.start < t0 < r.end and r.served_by == draining.address]
        after = [r for r in results if r.start > t0 + stopped]
        print(f"\n[drain] {len(results)} calls; {len(drained)} finished by the draining backend "
              f"after SIGTERM; it exited {code} after {stopped:.3f}s; {len(after)} calls after",
              flush=True)
        self.assertEqual(code, 0)
        self.assertEqual(failures(results), [], "no call may fail when a backend drains")
        self.assertGreater(len(after), 20)
        self.assertFalse([r for r in after if r.served_by == draining.address])

    # 4 -----------------------------------------------------------------------------------
    def test_circuit_breaker_refuses_over_max_requests_at_once(self):
        (backend,) = self.start_backends(1)
        extra = "    circuit_breakers: {max_requests: 2}"
        _, http = self.start_gateway(gateway_config(f"ipv4:{backend.address}",
                                                    backend_extra=extra))
        slow = []

        def slow_call(i):
            conn = http_conn(http)
            slow.append(rest_call(conn, UNARY_PATH, {"sleepMs": 3000, "tag": f"slow{i}"}))
            conn.close()

        threads = [threading.Thread(target=slow_call, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        arrived = wait_for(lambda: all(stats(backend.address, f"slow{i}").calls == 1
                                       for i in range(2)), 5.0)
        self.assertTrue(arrived, "the two slow calls did not reach the backend")
        conn = http_conn(http)
        self.addCleanup(conn.close)
        third = rest_call(conn, UNARY_PATH, {"tag": "third"})
        took = third.end - third.start
        for t in threads:
            t.join(CALL_TIMEOUT)
        after = rest_call(conn, UNARY_PATH, {"tag": "after"})
        print(f"\n[breaker] third call: {third.status} in {took:.3f}s: {third.body}", flush=True)
        self.assertEqual(third.status, 503, third.body)
        self.assertLess(took, 0.5)
        message = third.body["message"]
        self.assertIn('backend "echo"', message)
        self.assertIn("circuit_breakers.max_requests", message)
        self.assertNotIn(backend.address, message)
        self.assertEqual(stats(backend.address, "third").calls, 0)
        self.assertEqual([r.status for r in slow], [200, 200])
        self.assertEqual(after.status, 200, after.body)

    # 5 -----------------------------------------------------------------------------------
    def run_calls(self, http, k, body):
        """`k` concurrent REST Unary calls with `body`; returns (results, seconds from the
        first start to the last end)."""
        results = []
        lock = threading.Lock()
        go = threading.Event()

        def call():
            conn = http_conn(http)
            go.wait()
            r = rest_call(conn, UNARY_PATH, body)
            conn.close()
            with lock:
                results.append(r)

        threads = [threading.Thread(target=call) for _ in range(k)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(CALL_TIMEOUT + 5)
        window = max(r.end for r in results) - min(r.start for r in results)
        return results, window

    def test_retry_budget_bounds_retries(self):
        """Every attempt runs into the rule's per_try_timeout (the backend sleeps longer and
        has sent nothing yet), so every call would be tried max_attempts times; the budget
        holds the retries back."""
        (backend,) = self.start_backends(1)
        k, max_attempts, per_try = 10, 5, 0.3
        no_outliers = "    outlier_detection: {disabled: true}"
        rule = f"""
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], max_attempts: {max_attempts}, per_try_timeout: {int(per_try * 1000)}ms,}}
"""
        budgeted = "retries:\n  budget_percent: 20\n  min_retry_concurrency: 1" + rule
        unlimited = "retries:\n  budget_percent: 100\n  min_retry_concurrency: 100" + rule
        target = f"ipv4:{backend.address}"
        _, http_budget = self.start_gateway(
            gateway_config(target, backend_extra=no_outliers, retries=budgeted), "gw_budget")
        _, http_unlimited = self.start_gateway(
            gateway_config(target, backend_extra=no_outliers + "\n    circuit_breakers: "
                           "{max_retries: 100}", retries=unlimited), "gw_unlimited")
        slow = {"sleepMs": 5000}

        results, window = self.run_calls(http_budget, k, {**slow, "tag": "budget"})
        budget_calls = stats(backend.address, "budget").calls
        # docs/config.md `retries`: retries in flight <= max(budget_percent x calls in flight,
        # min_retry_concurrency), and <= circuit_breakers.max_retries (3). Calls in flight are
        # at most k, so at most R = max(k * 20 // 100, 1) = 2 retries run at once; each retry
        # attempt lasts per_try_timeout, so within the window at most R * (window / per_try
        # + 1) retry attempts can have started.
        r = min(max(k * 20 // 100, 1), 3)
        bound = k + r * int(window / per_try + 1)
        print(f"\n[budget] {k} calls, max_attempts {max_attempts}, in {window:.3f}s: backend "
              f"saw {budget_calls} (bound {bound}, unlimited would be {k * max_attempts})",
              flush=True)
        self.assertEqual([res.status for res in results], [504] * k, failures(results))
        self.assertGreater(budget_calls, k, "the rule retried nothing")
        self.assertLessEqual(budget_calls, bound)
        self.assertLess(bound, k * max_attempts)

        results, window = self.run_calls(http_unlimited, k, {**slow, "tag": "unlimited"})
        unlimited_calls = stats(backend.address, "unlimited").calls
        print(f"[budget] without budget limits: backend saw {unlimited_calls} in {window:.3f}s",
              flush=True)
        self.assertEqual([res.status for res in results], [504] * k, failures(results))
        self.assertEqual(unlimited_calls, k * max_attempts)

    def test_method_without_rule_is_not_retried(self):
        (backend,) = self.start_backends(1)
        ruleless = """
retries:
  rules:
    - {selectors: ["gateway.test.v1.Echo.ServerStream"], max_attempts: 5}
"""
        _, http = self.start_gateway(gateway_config(f"ipv4:{backend.address}", retries=ruleless))
        k = 10
        results, _ = self.run_calls(http, k, {"tag": "ruleless", "failCode": 14})
        calls = stats(backend.address, "ruleless").calls
        print(f"\n[no rule] {k} calls failed UNAVAILABLE by the backend: it saw {calls}",
              flush=True)
        self.assertEqual([res.status for res in results], [503] * k)
        self.assertEqual(calls, k)

    def test_unavailable_sent_by_backend_is_retried_by_rule(self):
        """docs/config.md `retries`: a call is tried again by a rule "only while no byte of
        the response reached the client". A gRPC server that sets initial metadata sends a
        HEADERS frame before its UNAVAILABLE trailers; nothing of that reaches a REST client
        before the call ends, so the call is still tried again."""
        (backend,) = self.start_backends(1)
        _, http = self.start_gateway(gateway_config(f"ipv4:{backend.address}",
                                                    retries=unary_retry_rule(3)))
        conn = http_conn(http)
        self.addCleanup(conn.close)
        r = rest_call(conn, UNARY_PATH, {"tag": "once", "failCode": 14})
        calls = stats(backend.address, "once").calls
        print(f"\n[rule] a call the backend failed UNAVAILABLE: {r.status}, backend saw "
              f"{calls} attempt(s) of 3", flush=True)
        self.assertEqual(r.status, 503)
        self.assertEqual(calls, 3)

    def test_every_attempt_over_per_try_timeout_is_retried(self):
        """docs/config.md `retries`: "an attempt that runs out [of per_try_timeout] is tried
        again", whatever retry_on says. The gateway sends the attempt's deadline as
        grpc-timeout, so the backend's gRPC ends the attempt with DEADLINE_EXCEEDED at about
        the moment the gateway's own timer does; whichever comes first, the attempt counts as
        run out and is tried again."""
        (backend,) = self.start_backends(1)
        k, max_attempts = 10, 5
        retries = f"""
retries:
  budget_percent: 100
  min_retry_concurrency: 100
  rules:
    - {{selectors: ["gateway.test.v1.Echo.Unary"], max_attempts: {max_attempts}, per_try_timeout: 200ms}}
"""
        _, http = self.start_gateway(gateway_config(
            f"ipv4:{backend.address}", retries=retries,
            backend_extra="    outlier_detection: {disabled: true}\n"
                          "    circuit_breakers: {max_retries: 100}"))
        results, _ = self.run_calls(http, k, {"sleepMs": 5000, "tag": "per-try"})
        calls = stats(backend.address, "per-try").calls
        print(f"\n[per-try] {k} calls x {max_attempts} attempts over per_try_timeout: backend "
              f"saw {calls}", flush=True)
        self.assertEqual([res.status for res in results], [504] * k)
        self.assertEqual(calls, k * max_attempts)

    # 6 -----------------------------------------------------------------------------------
    def hostile_gateway(self, mode, retries=""):
        """An echo backend and a HostileServer(`mode`) behind one gatewayd: Echo on "echo",
        Bookstore on "hostile". Returns (echo, server, gatewayd, http address)."""
        echo = self.start_backends(1)[0]
        server = HostileServer(mode)
        self.addCleanup(server.close)
        config = gateway_config(f"ipv4:{echo.address}", retries=retries).replace(
            f'descriptor_sets: ["{harness.ECHO_SET}"]',
            f'descriptor_sets: ["{harness.ECHO_SET}", "{harness.BOOKSTORE_SET}"]'
        ).replace(
            "services:\n",
            f'  - {{name: hostile, target: "ipv4:{server.address}", required: false}}\n'
            "services:\n  - {name: bookstore.v1.Bookstore, backend: hostile}\n")
        gw, http = self.start_gateway(config, name=f"gw_{mode}")
        return echo, server, gw, http

    def test_hostile_backend_fails_its_calls_clearly_and_alone(self):
        # HTTP statuses per mode: no HTTP/2 at all is a failed connect (UNAVAILABLE, or on a
        # loaded machine 504 "no connection was ready before the deadline" while the gateway
        # still tries to connect); a truncated message is INTERNAL (500, docs/config.md maps
        # codes as gRPC does); a backend that never answers runs into the deadline (504).
        expected = {"garbage": (503, 504), "truncated": (500,), "silent": (504,)}
        deadline = 1.5
        for mode in ("garbage", "truncated", "silent"):
            with self.subTest(mode=mode):
                _, server, gw, http = self.hostile_gateway(mode)
                load = Load(http, threads=2)
                hostile = []
                try:
                    time.sleep(0.3)
                    conn = http_conn(http)
                    self.addCleanup(conn.close)
                    first = time.monotonic()
                    # Calls for at least 0.5s, so that the echo load runs beside them.
                    while not hostile or time.monotonic() - first < 0.5:
                        start = time.monotonic()
                        conn.request("GET", "/v1/shelves/1",
                                     headers={"grpc-timeout": f"{int(deadline * 1000)}m"})
                        resp = conn.getresponse()
                        hostile.append((resp.status, json.loads(resp.read()),
                                        time.monotonic() - start))
                    last = time.monotonic()
                    time.sleep(0.2)
                finally:
                    results = load.stop()
                during = [r for r in results if r.start >= first and r.end <= last]
                slowest = max(t for _, _, t in hostile)
                print(f"\n[hostile {mode}] {len(hostile)} call(s), slowest {slowest:.3f}s: "
                      f"{hostile[0][0]} {hostile[0][1]}; {len(during)} echo calls served "
                      f"meanwhile; the server saw {server.connections} connection(s)",
                      flush=True)
                self.assertGreater(server.connections, 0)
                for status, body, took in hostile:
                    self.assertIn(status, expected[mode], body)
                    self.assertLess(took, deadline + 0.5, "the call outlived its deadline")
                    self.assertNotIn(server.address, body["message"])
                    self.assertNotIn(str(server.port), body["message"])
                    self.assertIn('backend "hostile"', body["message"])
                self.assertEqual(failures(results), [])
                self.assertGreater(len(during), 3, "the healthy backend stopped serving")
                self.assertTrue(gw.alive())
                gw.stop()

    def test_response_lost_before_trailers_is_retried_by_rule(self):
        """docs/config.md `retries`: a rule tries a call again "only while no byte of the
        response reached the client". A backend that sends its headers and a whole response
        message and then loses the connection before the trailers (as a backend killed at
        that moment does): nothing reached the REST client yet (a unary response is written
        once the call ends), so the rule (UNAVAILABLE, 3 attempts) tries it again."""
        retries = """
retries:
  rules:
    - {selectors: ["bookstore.v1.Bookstore.GetShelf"], max_attempts: 3, retry_on: [UNAVAILABLE]}
"""
        _, server, _, http = self.hostile_gateway("message_then_close", retries=retries)
        conn = http_conn(http)
        self.addCleanup(conn.close)
        conn.request("GET", "/v1/shelves/1", headers={"grpc-timeout": "5S"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        print(f"\n[lost trailers] {resp.status} {body}; the backend saw {server.requests} "
              f"attempt(s) of 3", flush=True)
        self.assertEqual(resp.status, 503, body)
        self.assertIn('backend "hostile"', body["message"])
        self.assertEqual(server.requests, 3)

    def test_silent_backend_error_names_backend(self):
        """A backend that accepts a call and never answers: the 504 names the backend that
        did not answer, like every other upstream failure."""
        _, _, _, http = self.hostile_gateway("silent")
        conn = http_conn(http)
        self.addCleanup(conn.close)
        conn.request("GET", "/v1/shelves/1", headers={"grpc-timeout": "500m"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        self.assertEqual(resp.status, 504, body)
        self.assertIn('backend "hostile"', body["message"])


class HostileServer:
    """An HTTP/2 server on 127.0.0.1 that misbehaves in one way (`mode`):
    "garbage" answers the connection preface with bytes that are not HTTP/2;
    "truncated" answers each call with a gRPC message prefix announcing 100 bytes, sends 10
    and ends the stream (no trailers); "silent" accepts the connection and the calls and
    never answers them; "message_then_close" answers a call with headers and a whole (empty)
    message, then closes the connection without trailers."""

    def __init__(self, mode):
        self.mode = mode
        self.connections = 0
        self.requests = 0  # calls (HTTP/2 streams) whose request ended
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._closed = threading.Event()
        self._conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.mode == "garbage":
                sock.recv(65536)
                sock.sendall(b"HTTP/1.1 418 not h2\r\n\r\n" + bytes(range(256)) * 4)
                while sock.recv(65536):
                    pass
                return
            h2c = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
            h2c.initiate_connection()
            sock.sendall(h2c.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                close = False
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.StreamEnded):
                        self.requests += 1
                    if isinstance(event, h2.events.StreamEnded) and self.mode == "message_then_close":
                        h2c.send_headers(event.stream_id, [(":status", "200"),
                                                          ("content-type", "application/grpc")])
                        h2c.send_data(event.stream_id, struct.pack(">BI", 0, 0))
                        close = True
                    elif isinstance(event, h2.events.StreamEnded) and self.mode == "truncated":
                        h2c.send_headers(event.stream_id, [(":status", "200"),
                                                          ("content-type", "application/grpc")])
                        h2c.send_data(event.stream_id, struct.pack(">BI", 0, 100) + b"x" * 10,
                                      end_stream=True)
                    elif isinstance(event, h2.events.DataReceived):
                        h2c.acknowledge_received_data(event.flow_controlled_length,
                                                      event.stream_id)
                sock.sendall(h2c.data_to_send())
                if close:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
        except (OSError, h2.exceptions.ProtocolError):
            return

    def close(self):
        self._closed.set()
        self._sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


if __name__ == "__main__":
    unittest.main()
