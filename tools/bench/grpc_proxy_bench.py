#!/usr/bin/python3
"""End-to-end benchmark of the gRPC front end: the same load at the echo backend directly,
through gatewayd, and (when nginx is installed) through nginx's grpc_pass, in one run.

  bazel build //gateway:gatewayd //tests/backend:echo_backend //tools/bench:all
  tools/bench/grpc_proxy_bench.py [--duration=10s] [--concurrency=16] [--workers=1]
                                  [--backend=byte|echo] [--stream_bytes=1048576] [--no-nginx]

gatewayd relays on its gRPC listener (--workers event-loop workers, nghttp2 both ways; one by
default, as nginx runs one worker here). The access log is off in this config, as nginx's is
(access_log off).

Phases: unary calls at --concurrency and at 1 in flight (100-byte messages), a ping-pong
bidi stream, and a ping-pong bidi stream of --stream_bytes messages (its MB/s column is
the message bytes relayed per second, each way). For each phase it prints calls/s, p50/p99
latency, and CPU time per call of the backend and of the proxy (user+sys from
/proc/PID/stat over the phase, divided by the calls), and the proxy's CPU per call as a
ratio of the backend's own CPU per call in the same phase. Everything listens on
127.0.0.1; every phase is bounded by --duration.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_util import bazel_bin, cpu_seconds, free_port, start


def run_load(load_bin, target, mode, concurrency, duration, pids, payload=100):
    before = {name: cpu_seconds(pid, children=True) for name, pid in pids.items()}
    out = subprocess.run([load_bin, f"--target={target}", f"--mode={mode}",
                          f"--concurrency={concurrency}", f"--duration={duration}",
                          f"--payload_bytes={payload}"],
                         capture_output=True, text=True, timeout=600)
    after = {name: cpu_seconds(pid, children=True) for name, pid in pids.items()}
    if out.returncode not in (0, 1) or not out.stdout.strip():
        sys.exit(f"grpc_load failed: {out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    calls = max(1, result["calls"])
    result["cpu_us_per_call"] = {name: (after[name] - before[name]) * 1e6 / calls
                                 for name in pids}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1,
                        help="event-loop workers of gatewayd's gRPC listener "
                             "(runtime.worker_threads)")
    parser.add_argument("--stream_bytes", type=int, default=1 << 20,
                        help="message size of the large-message stream phase")
    parser.add_argument("--busy_poll", default="0s",
                        help="gatewayd's runtime.busy_poll (e.g. 100us; default off)")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--backend", choices=["byte", "echo"], default="byte",
                        help="byte: byte_echo_backend (completion queues, the lean "
                             "baseline); echo: tests/backend/echo_backend (sync API)")
    parser.add_argument("--bazel_bin", default="",
                        help="where the binaries are (default: bazel info bazel-bin)")
    args = parser.parse_args()

    bindir = args.bazel_bin or bazel_bin()
    gatewayd = os.path.join(bindir, "gateway/gatewayd")
    backend_bin = os.path.join(bindir, "tools/bench/byte_echo_backend"
                               if args.backend == "byte" else "tests/backend/echo_backend")
    load_bin = os.path.join(bindir, "tools/bench/grpc_load")
    echo_set = os.path.join(bindir, "tests/testdata/echo_proto.pb")
    for path in (gatewayd, backend_bin, load_bin, echo_set):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: bazel build //gateway:gatewayd "
                     "//tests/backend:echo_backend //tools/bench:all")

    work = tempfile.mkdtemp(prefix="grpc-bench-")
    procs = []
    try:
        backend, backend_addr = start([backend_bin, "--listen=127.0.0.1:0"],
                                      os.path.join(work, "backend.log"))
        procs.append(backend)
        config = os.path.join(work, "gateway.yaml")
        with open(config, "w") as f:
            f.write(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
descriptor_sets: ["{echo_set}"]
backends: [{{name: echo, target: "ipv4:{backend_addr}"}}]
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
runtime: {{worker_threads: {args.workers}, busy_poll: {args.busy_poll}}}
access_log: {{enabled: false}}
""")
        gw_log = os.path.join(work, "gw.log")
        gw, gw_addr = start([gatewayd, f"--config={config}"], gw_log,
                            pattern=rb"grpc listening on (\S+)")
        procs.append(gw)

        targets = [("direct", backend_addr, {"backend": backend.pid}),
                   ("gatewayd", gw_addr, {"backend": backend.pid, "proxy": gw.pid})]
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx"
                                          if os.path.exists("/usr/sbin/nginx") else None)
        if nginx and not args.no_nginx:
            port = free_port()
            conf = os.path.join(work, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""
worker_processes 1; daemon off; error_log {work}/nginx-error.log; pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_max_body_size 0;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  upstream echo {{ server {backend_addr}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port} http2;
    http2_max_requests 1000000;
    location / {{ grpc_pass grpc://echo; }}
  }}
}}
""")
            ng = subprocess.Popen([nginx, "-c", conf, "-p", work],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(ng)
            time.sleep(0.5)
            targets.append(("nginx", f"127.0.0.1:{port}", {"backend": backend.pid,
                                                           "proxy": ng.pid}))

        phases = [("unary", args.concurrency, 100), ("unary", 1, 100), ("bidi", 1, 100),
                  ("bidi", 1, args.stream_bytes)]
        print(f"# {args.duration} per phase; CPU from /proc/PID/stat; backend={args.backend}; "
              f"gatewayd workers={args.workers}; nginx 1 worker")
        print(f"{'phase':<20}{'via':<10}{'calls/s':>10}{'MB/s':>8}{'p50 us':>9}{'p99 us':>9}"
              f"{'backend us/call':>17}{'proxy us/call':>15}{'proxy/backend':>15}{'errors':>8}")
        for mode, conc, payload in phases:
            base_p50 = None
            for name, target, pids in targets:
                # Warm up connections and caches.
                subprocess.run([load_bin, f"--target={target}", f"--mode={mode}",
                                "--concurrency=1", "--duration=300ms",
                                f"--payload_bytes={payload}"],
                               capture_output=True, timeout=60)
                r = run_load(load_bin, target, mode, conc, args.duration, pids, payload)
                cpu = r["cpu_us_per_call"]
                proxy = cpu.get("proxy")
                ratio = f"{proxy / cpu['backend']:.2f}x" if proxy and cpu["backend"] else "-"
                if name == "direct":
                    base_p50 = r["p50_us"]
                added = "" if name == "direct" else f" (+{r['p50_us'] - base_p50:.0f})"
                phase = f"{mode} c={conc}" + (f" {payload >> 10}KiB" if payload >= 1024 else "")
                mb_s = r["calls_per_second"] * payload / 1e6
                print(f"{phase:<20}{name:<10}{r['calls_per_second']:>10.0f}{mb_s:>8.1f}"
                      f"{r['p50_us']:>9.0f}{r['p99_us']:>9.0f}{cpu['backend']:>17.1f}"
                      f"{(f'{proxy:.1f}' if proxy else '-'):>15}{ratio:>15}{r['errors']:>8}"
                      f"{added}")
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
