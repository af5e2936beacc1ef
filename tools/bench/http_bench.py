#!/usr/bin/python3
"""End-to-end benchmark of the HTTP front end: REST calls through gatewayd beside the same
calls made as gRPC directly to the backend, in one run.

  bazel build //gateway:gatewayd //examples/bookstore:bookstore_backend \\
      //examples/bookstore:bookstore_proto.pb //tests/backend:echo_backend \\
      //tests/testdata:echo_proto.pb
  tools/bench/http_bench.py [--duration=10] [--connections=16] [--workers=1]

Calls:
  GET   REST GET /v1/shelves/1 (bookstore GetShelf)     vs gRPC GetShelf to the backend
  POST  REST POST /gateway.test.v1.Echo/Unary, 1 KB JSON vs gRPC Echo.Unary (same message)
Clients: wrk (HTTP/1.1) and h2load (h2c) for REST; h2load speaking gRPC (POST of a
length-prefixed message with content-type application/grpc) for the direct calls, so the
load generator is the same for h2c and gRPC. Latency percentiles come from wrk --latency
and from h2load --log-file. CPU per call is user+sys from /proc/PID/stat over the phase,
divided by the calls, for the backend and for gatewayd; "gw/backend" is the ratio of the
two in the same phase; "gw cs/call" is gatewayd's context switches (voluntary and
involuntary, all threads, from /proc/PID/task/*/status) per call. A last set of phases at 1 connection gives the latency the gateway
adds (p50 REST minus p50 direct gRPC).
"""

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile

from bench_util import (bazel_bin, context_switches, cpu_seconds, grpc_frame, run_h2load,
                        run_wrk, start, varint)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1,
                        help="http_listener.worker_threads (gRPC workers: 1)")
    parser.add_argument("--busy_poll", default="0s",
                        help="gatewayd's runtime.busy_poll (e.g. 100us; default off)")
    parser.add_argument("--bazel_bin", default="",
                        help="where the binaries are (default: `bazel info bazel-bin`)")
    args = parser.parse_args()
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (tools/install_deps.sh)")

    bindir = args.bazel_bin or bazel_bin()
    paths = {name: os.path.join(bindir, rel) for name, rel in {
        "gatewayd": "gateway/gatewayd",
        "bookstore": "examples/bookstore/bookstore_backend",
        "bookstore_set": "examples/bookstore/bookstore_proto.pb",
        "echo": "tests/backend/echo_backend",
        "echo_set": "tests/testdata/echo_proto.pb"}.items()}
    for path in paths.values():
        if not os.path.exists(path):
            sys.exit(f"missing {path} (see the bazel build line in --help)")

    work = tempfile.mkdtemp(prefix="http-bench-")
    procs = []
    try:
        bookstore, bookstore_addr = start([paths["bookstore"], "--listen=127.0.0.1:0"],
                                          os.path.join(work, "bookstore.log"),
                                          rb"listening on (\S+)")
        procs.append(bookstore)
        echo, echo_addr = start([paths["echo"], "--listen=127.0.0.1:0"],
                                os.path.join(work, "echo.log"), rb"listening on (\S+)")
        procs.append(echo)
        config = os.path.join(work, "gateway.yaml")
        with open(config, "w") as f:
            f.write(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{paths['bookstore_set']}", "{paths['echo_set']}"]
backends:
  - {{name: bookstore, target: "ipv4:{bookstore_addr}"}}
  - {{name: echo, target: "ipv4:{echo_addr}"}}
services:
  - {{name: bookstore.v1.Bookstore, backend: bookstore}}
  - {{name: gateway.test.v1.Echo, backend: echo}}
runtime: {{worker_threads: 1, busy_poll: {args.busy_poll}}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: {args.workers}
  transcoding: {{expose_grpc_paths: true}}
""")
        gw, http_addr = start([paths["gatewayd"], f"--config={config}"],
                              os.path.join(work, "gw.log"), rb"http listening on (\S+)")
        procs.append(gw)

        payload = os.urandom(768)  # 1024 characters of base64
        post_json = ('{"payload":"' + base64.b64encode(payload).decode() + '"}').encode()
        echo_request = b"\x0a" + varint(len(payload)) + payload  # EchoRequest.payload
        get_shelf = b"\x08\x01"  # GetShelfRequest{shelf: 1}
        grpc_headers = {"content-type": "application/grpc", "te": "trailers"}

        def direct_get(c, d):
            return run_h2load(f"http://{bookstore_addr}/bookstore.v1.Bookstore/GetShelf", c, d,
                              work, grpc_frame(get_shelf), grpc_headers)

        def direct_post(c, d):
            return run_h2load(f"http://{echo_addr}/gateway.test.v1.Echo/Unary", c, d, work,
                              grpc_frame(echo_request), grpc_headers)

        rest_get = f"http://{http_addr}/v1/shelves/1"
        rest_post = f"http://{http_addr}/gateway.test.v1.Echo/Unary"
        phases = [
            ("GET", "grpc direct", bookstore, False, direct_get),
            ("GET", "REST wrk h1", bookstore, True,
             lambda c, d: run_wrk(rest_get, c, d, work)),
            ("GET", "REST h2load h2c", bookstore, True,
             lambda c, d: run_h2load(rest_get, c, d, work)),
            ("POST 1KB", "grpc direct", echo, False, direct_post),
            ("POST 1KB", "REST wrk h1", echo, True,
             lambda c, d: run_wrk(rest_post, c, d, work, post_json,
                                  {"Content-Type": "application/json"})),
            ("POST 1KB", "REST h2load h2c", echo, True,
             lambda c, d: run_h2load(rest_post, c, d, work, post_json,
                                     {"content-type": "application/json"})),
        ]
        print(f"# {args.duration}s per phase; CPU from /proc/PID/stat; gatewayd http workers="
              f"{args.workers}, grpc workers=1; {os.cpu_count()} cores shared with the load "
              "generators")
        print(f"{'call':<10}{'via':<17}{'conns':>6}{'calls/s':>10}{'p50 us':>9}{'p99 us':>9}"
              f"{'backend us/call':>17}{'gw us/call':>12}{'gw/backend':>12}{'gw cs/call':>11}"
              f"{'errors':>8}")
        for connections in (args.connections, 1):
            base = {}
            for call, via, backend, through_gw, run in phases:
                run(1, 1)  # warm up
                before_b, before_g = cpu_seconds(backend.pid), cpu_seconds(gw.pid)
                before_cs = context_switches(gw.pid)
                calls, errors, p50, p99 = run(connections, args.duration)
                after_b, after_g = cpu_seconds(backend.pid), cpu_seconds(gw.pid)
                cs = (context_switches(gw.pid) - before_cs) / max(1, calls)
                calls_n = max(1, calls)
                b_us = (after_b - before_b) * 1e6 / calls_n
                g_us = (after_g - before_g) * 1e6 / calls_n
                if not through_gw:
                    base[call] = p50
                added = f" (+{p50 - base[call]:.0f} us p50)" if through_gw else ""
                print(f"{call:<10}{via:<17}{connections:>6}{calls / args.duration:>10.0f}"
                      f"{p50:>9.0f}{p99:>9.0f}{b_us:>17.1f}"
                      f"{(f'{g_us:.1f}' if through_gw else '-'):>12}"
                      f"{(f'{g_us / b_us:.2f}x' if through_gw and b_us else '-'):>12}"
                      f"{(f'{cs:.3f}' if through_gw else '-'):>11}"
                      f"{errors:>8}{added}")
                sys.stdout.flush()
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
