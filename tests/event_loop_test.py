"""Integration test of gatewayd's event loops: their threads carry names (as `top -H` and
/proc show them), and `runtime.busy_poll` keeps a loop polling between one call and the next
instead of sleeping, which shows in the loop thread's voluntary context switches.
"""

import os
import time
import unittest

import grpc

import harness
from grpc_proxy_test import Req, Resp, SERVICE, gateway_config

TIMEOUT = 10  # seconds; the bound of any call below
CALLS = 200   # calls, one at a time, per measurement


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


def cpu_ticks(pid, tid):
    """utime + stime of a thread, in clock ticks."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is the state, field 3
    return int(fields[11]) + int(fields[12])  # fields 14 and 15


class EventLoopTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.backend = self.ws.echo_backend()

    def start(self, runtime):
        gateway = self.ws.gatewayd(gateway_config(
            self.backend.address, 'http_listener: {address: "127.0.0.1:0", worker_threads: 2}',
            runtime=", " + runtime))
        channel = grpc.insecure_channel(gateway.address)
        self.addCleanup(channel.close)
        unary = channel.unary_unary(SERVICE + "Unary", request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
        return gateway, unary

    def switches_per_call(self, gateway, unary):
        """Voluntary context switches of the gRPC listener's loops (the one that has the
        client's connection, and the idle other) per call, over CALLS calls made one after
        the other."""
        self.assertEqual(unary(Req(payload=b"warm"), timeout=TIMEOUT).payload, b"warm")
        names = threads(gateway.proc.pid)
        loops = names["gw-grpc-0"] + names["gw-grpc-1"]
        before = sum(voluntary_switches(gateway.proc.pid, tid) for tid in loops)
        for i in range(CALLS):
            payload = b"call %d" % i
            self.assertEqual(unary(Req(payload=payload), timeout=TIMEOUT).payload, payload)
        after = sum(voluntary_switches(gateway.proc.pid, tid) for tid in loops)
        return (after - before) / CALLS

    def test_threads_are_named(self):
        gateway, _ = self.start("busy_poll: 0s")
        names = threads(gateway.proc.pid)
        for name in ("gw-grpc-0", "gw-grpc-1", "gw-http-0", "gw-http-1", "gw-upstream",
                     "gw-access-log"):
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
        # An idle loop stops polling and sleeps: a second with no calls costs the loops no
        # CPU beyond the 10ms after the last call.
        names = threads(gateway.proc.pid)
        loops = names["gw-grpc-0"] + names["gw-grpc-1"]
        before = sum(cpu_ticks(gateway.proc.pid, tid) for tid in loops)
        time.sleep(1)
        after = sum(cpu_ticks(gateway.proc.pid, tid) for tid in loops)
        self.assertLess((after - before) / os.sysconf("SC_CLK_TCK"), 0.2,
                        "an idle loop kept polling")
        # The loops still stop: with no call in flight SIGTERM ends the gateway at once, not
        # after the 5s shutdown_grace, and it exits 0.
        started = time.monotonic()
        self.assertEqual(gateway.stop(timeout=TIMEOUT), 0, gateway.output()[-2000:])
        self.assertLess(time.monotonic() - started, 4)


if __name__ == "__main__":
    unittest.main()
