"""Integration test of gatewayd's event loops: their threads carry names (as `top -H` and
/proc show them), and `runtime.busy_poll` keeps a loop polling between one call and the next
instead of sleeping, which shows in the loop thread's voluntary context switches.
"""

import os
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, Resp, SERVICE

TIMEOUT = 10  # seconds; the bound of any call below
CALLS = 200   # calls, one at a time, per measurement


def config(backend_address, runtime):
    return f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2}}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
services:
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{shutdown_grace: 1s, worker_threads: 1, {runtime}}}
"""


def threads(pid):
    """{thread name: [thread id, ...]} of process pid."""
    names = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.setdefault(f.read().strip(), []).append(tid)
    return names


def voluntary_switches(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches in /proc/{pid}/task/{tid}/status")


class EventLoopTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.backend = self.ws.echo_backend()

    def start(self, runtime):
        gateway = self.ws.gatewayd(config(self.backend.address, runtime))
        channel = grpc.insecure_channel(gateway.address)
        self.addCleanup(channel.close)
        unary = channel.unary_unary(SERVICE + "Unary", request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
        return gateway, unary

    def switches_per_call(self, gateway, unary):
        """Voluntary context switches of the gRPC listener's loop per call, over CALLS calls
        made one after the other."""
        self.assertEqual(unary(Req(payload=b"warm"), timeout=TIMEOUT).payload, b"warm")
        (tid,) = threads(gateway.proc.pid)["gw-grpc-0"]
        before = voluntary_switches(gateway.proc.pid, tid)
        for i in range(CALLS):
            payload = b"call %d" % i
            self.assertEqual(unary(Req(payload=payload), timeout=TIMEOUT).payload, payload)
        return (voluntary_switches(gateway.proc.pid, tid) - before) / CALLS

    def test_threads_are_named(self):
        gateway, _ = self.start("busy_poll: 0s")
        names = threads(gateway.proc.pid)
        for name in ("gw-grpc-0", "gw-http-0", "gw-http-1", "gw-upstream", "gw-access-log"):
            self.assertEqual(len(names.get(name, [])), 1, f"{name} in {sorted(names)}")

    def test_without_busy_poll_the_loop_sleeps_during_each_call(self):
        # Each call leaves the loop waiting for the backend and then for the client's next
        # call: it sleeps at least once per call.
        gateway, unary = self.start("busy_poll: 0s")
        per_call = self.switches_per_call(gateway, unary)
        self.assertGreater(per_call, 0.8, "the loop slept less than once per call")

    def test_busy_poll_keeps_the_loop_awake_between_calls(self):
        # Every wait of a call one at a time (the backend's answer, the client's next call)
        # is far shorter than 10ms on loopback: the loop polls through it. Being preempted
        # is an involuntary switch and does not count.
        gateway, unary = self.start("busy_poll: 10ms")
        per_call = self.switches_per_call(gateway, unary)
        self.assertLess(per_call, 0.3, "the loop slept between calls despite busy_poll")
        # An idle loop stops polling and sleeps: a second with no calls costs it no CPU
        # beyond the 10ms after the last call.
        (tid,) = threads(gateway.proc.pid)["gw-grpc-0"]
        with open(f"/proc/{gateway.proc.pid}/task/{tid}/stat") as f:
            before = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
        time.sleep(1)
        with open(f"/proc/{gateway.proc.pid}/task/{tid}/stat") as f:
            after = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
        ticks = os.sysconf("SC_CLK_TCK")
        self.assertLess((after - before) / ticks, 0.2, "the idle loop kept polling")


if __name__ == "__main__":
    unittest.main()
