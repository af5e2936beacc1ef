#!/usr/bin/python3
"""One unary method, five protocols, one run: gateway.test.v1.Echo/Unary (the echo backend
of tests/backend, the same process for every phase) called through gatewayd as

  REST JSON      POST /gateway.test.v1.Echo/Unary, application/json (transcoding, the
                 method's gRPC path exposed: transcoding.expose_grpc_paths)
  gRPC-Web       POST of application/grpc-web+proto (binary, one framed message)
  Connect JSON   POST of application/json with connect-protocol-version: 1
  Connect proto  POST of application/proto
  gRPC           native gRPC on the gRPC listener (h2c only: tools/bench/grpc_load)

each over HTTP/1.1 keep-alive (wrk, a Lua script sets the method, headers and body) and
over h2c with prior knowledge (h2load -d body -H ..., one stream in flight per
connection). The request carries the same --payload_bytes payload in every protocol.

  bazel build //gateway:gatewayd //tests/backend:echo_backend \\
      //tests/testdata:echo_proto.pb //tools/bench:grpc_load
  tools/bench/protocols_bench.py [--duration=10] [--connections=16] [--payload_bytes=768]

Per phase (bounded by --duration after a 1 s warm-up): calls/s, p50 and p99 latency (wrk
--latency; h2load --log-file; grpc_load's own), CPU per call of gatewayd (user+sys of the
process from /proc/PID/stat over the phase, divided by the calls) and of the backend, and
errors (non-2xx answers, socket errors, failed streams; for gRPC, failed calls). Before
each phase one call of that protocol is made with http.client (or grpc_load --calls=1) and
its answer checked (status, grpc-status 0, the payload back), so that a phase cannot
measure refusals. The access log is off; gatewayd runs 1 HTTP and 1 gRPC worker thread.
The load generators run on the same machine: on a 2-core machine they share a core with
gatewayd's neighbours, so compare rows of one run, not runs of different machines.
"""

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench_util import bazel_bin, cpu_seconds, grpc_frame, run_h2load, run_wrk, start, varint

METHOD = "/gateway.test.v1.Echo/Unary"


def run_grpc_load(grpc_load, target, connections, duration, payload_bytes, calls=0):
    argv = [grpc_load, f"--target={target}", "--mode=unary", f"--concurrency={connections}",
            f"--duration={duration}s", f"--payload_bytes={payload_bytes}"]
    if calls:
        argv.append(f"--calls={calls}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"grpc_load failed:\n{r.stdout}{r.stderr}")
    result = json.loads(lines[-1])
    return result["calls"], result["errors"], result["p50_us"], result["p99_us"], result


def check_http(address, body, headers, payload, protocol):
    """One call over HTTP/1.1; exits naming the protocol when the answer is not a success
    carrying `payload` back."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", METHOD, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("content-type", "")
    finally:
        conn.close()
    problem = None
    if resp.status != 200:
        problem = f"HTTP {resp.status}: {data[:300]!r}"
    elif protocol in ("rest", "connect-json"):
        got = base64.b64decode(json.loads(data).get("payload", ""))
        if got != payload:
            problem = f"payload not echoed: {data[:300]!r}"
    elif protocol == "connect-proto":
        if payload not in data or ctype != "application/proto":
            problem = f"{ctype}: payload not echoed: {data[:100]!r}"
    elif protocol == "grpc-web":
        if payload not in data or not re.search(rb"grpc-status: ?0\r\n", data):
            problem = f"no message or grpc-status 0: {data[-200:]!r}"
    if problem:
        sys.exit(f"{protocol}: the check call failed: {problem}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=16,
                        help="connections (wrk, h2load) or calls in flight (grpc_load)")
    parser.add_argument("--payload_bytes", type=int, default=768,
                        help="EchoRequest.payload size (JSON: base64, 4/3 larger)")
    parser.add_argument("--bazel_bin", default="",
                        help="where the binaries are (default: `bazel info bazel-bin`)")
    args = parser.parse_args()
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (tools/install_deps.sh)")

    bindir = args.bazel_bin or bazel_bin()
    paths = {name: os.path.join(bindir, rel) for name, rel in {
        "gatewayd": "gateway/gatewayd",
        "echo": "tests/backend/echo_backend",
        "echo_set": "tests/testdata/echo_proto.pb",
        "grpc_load": "tools/bench/grpc_load"}.items()}
    for path in paths.values():
        if not os.path.exists(path):
            sys.exit(f"missing {path} (see the bazel build line in --help)")

    work = tempfile.mkdtemp(prefix="protocols-bench-")
    procs = []
    try:
        echo, echo_addr = start([paths["echo"], "--listen=127.0.0.1:0"],
                                os.path.join(work, "echo.log"), rb"listening on (\S+)")
        procs.append(echo)
        config = os.path.join(work, "gateway.yaml")
        with open(config, "w") as f:
            f.write(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{paths['echo_set']}"]
backends: [{{name: echo, target: "ipv4:{echo_addr}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
runtime: {{worker_threads: 1}}
http_listener:
  address: "127.0.0.1:0"
  worker_threads: 1
  transcoding: {{expose_grpc_paths: true}}
""")
        gw, http_addr = start([paths["gatewayd"], f"--config={config}"],
                              os.path.join(work, "gw.log"), rb"http listening on (\S+)")
        procs.append(gw)
        m = re.search(rb"grpc listening on (\S+)", open(os.path.join(work, "gw.log"), "rb").read())
        if not m:
            sys.exit("gatewayd did not log its gRPC address:\n" +
                     open(os.path.join(work, "gw.log")).read())
        grpc_addr = m.group(1).decode()

        payload = b"x" * args.payload_bytes  # grpc_load's payload
        proto = b"\x0a" + varint(len(payload)) + payload  # EchoRequest{payload}
        json_body = json.dumps({"payload": base64.b64encode(payload).decode()}).encode()
        protocols = {
            "rest": ("REST JSON", json_body, {"content-type": "application/json"}),
            "grpc-web": ("gRPC-Web", grpc_frame(proto),
                         {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}),
            "connect-json": ("Connect JSON", json_body,
                             {"content-type": "application/json",
                              "connect-protocol-version": "1"}),
            "connect-proto": ("Connect proto", proto,
                              {"content-type": "application/proto",
                               "connect-protocol-version": "1"}),
        }
        url = f"http://{http_addr}{METHOD}"
        phases = []
        for key, (name, body, headers) in protocols.items():
            check_http(http_addr, body, headers, payload, key)
            phases.append((name, "HTTP/1.1 wrk",
                           lambda c, d, b=body, h=headers: run_wrk(url, c, d, work, b, h)))
            phases.append((name, "h2c h2load",
                           lambda c, d, b=body, h=headers: run_h2load(url, c, d, work, b, h)))
        check = run_grpc_load(paths["grpc_load"], grpc_addr, 1, 5, args.payload_bytes, calls=1)
        if check[1] or check[0] != 1:
            sys.exit(f"gRPC: the check call failed: {check[4]}")
        phases.append(("gRPC", "h2c grpc_load",
                       lambda c, d: run_grpc_load(paths["grpc_load"], grpc_addr, c, d,
                                                  args.payload_bytes)[:4]))

        print(f"# {METHOD}, payload {args.payload_bytes} bytes; {args.duration}s per phase, "
              f"{args.connections} connections (gRPC: calls in flight on one channel); CPU "
              f"user+sys from /proc/PID/stat; gatewayd 1 HTTP + 1 gRPC worker, access log off; "
              f"{os.cpu_count()} cores shared with the load generator")
        print(f"{'protocol':<15}{'transport':<15}{'calls/s':>9}{'p50 us':>9}{'p99 us':>9}"
              f"{'gw us/call':>12}{'backend us/call':>17}{'errors':>8}")
        for name, transport, run in phases:
            run(1, 1)  # warm up: connections made, caches filled
            before_g, before_b = cpu_seconds(gw.pid), cpu_seconds(echo.pid)
            t0 = time.monotonic()
            calls, errors, p50, p99 = run(args.connections, args.duration)
            elapsed = time.monotonic() - t0
            after_g, after_b = cpu_seconds(gw.pid), cpu_seconds(echo.pid)
            n = max(1, calls)
            # calls/s over the phase's nominal duration (the tools' own start-up excluded).
            print(f"{name:<15}{transport:<15}{calls / args.duration:>9.0f}{p50:>9.0f}"
                  f"{p99:>9.0f}{(after_g - before_g) * 1e6 / n:>12.1f}"
                  f"{(after_b - before_b) * 1e6 / n:>17.1f}{errors:>8}"
                  + ("" if elapsed < args.duration + 5 else f"  (phase took {elapsed:.1f}s)"))
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
