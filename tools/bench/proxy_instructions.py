#!/usr/bin/python3
"""Instructions per proxied call, counted by callgrind: a measure of the gateway's CPU cost
that does not depend on what else the machine is doing (the same binary and load give the
same count).

  bazel build //gateway:gatewayd //tools/bench:all //tests/testdata:echo_proto.pb
  tools/bench/proxy_instructions.py [--mode=unary|bidi] [--calls=1000]

It runs byte_echo_backend under callgrind with the load aimed at it directly, then
gatewayd under callgrind in front of a plain byte_echo_backend, each twice (with 200 and
200+--calls calls, one at a time) so that start-up and shutdown cancel out, and prints the
instructions per call of each and their ratio.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


def bazel_bin():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run(["bazel", "info", "bazel-bin"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()


def start(argv, log_path, timeout=120):
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(rb"listening on (\S+)", open(log_path, "rb").read())
        if m:
            return proc, m.group(1).decode()
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"{argv} did not start:\n{open(log_path).read()}")


def total_instructions(callgrind_out):
    text = open(callgrind_out).read()
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    return int(m.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["unary", "bidi"], default="unary")
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    b = bazel_bin()
    backend_bin = f"{b}/tools/bench/byte_echo_backend"
    load = f"{b}/tools/bench/grpc_load"
    work = tempfile.mkdtemp(prefix="proxy-instr-")
    callgrind = ["valgrind", "--tool=callgrind"]

    def measure(under_test):
        counts = []
        for n in (200, 200 + args.calls):
            out = os.path.join(work, f"{under_test}.{n}.callgrind")
            procs = []
            if under_test == "backend":
                be, addr = start(callgrind + [f"--callgrind-out-file={out}", backend_bin,
                                              "--listen=127.0.0.1:0"],
                                 os.path.join(work, f"be.{n}.log"))
                procs.append(be)
                target, measured = addr, be
            else:
                be, addr = start([backend_bin, "--listen=127.0.0.1:0"],
                                 os.path.join(work, f"be.{n}.log"))
                procs.append(be)
                config = os.path.join(work, "gw.yaml")
                with open(config, "w") as f:
                    f.write(f'grpc_listener: {{address: "127.0.0.1:0"}}\n'
                            f'descriptor_sets: ["{b}/tests/testdata/echo_proto.pb"]\n'
                            f'backends: [{{name: echo, target: "ipv4:{addr}"}}]\n'
                            f'services: [{{name: gateway.test.v1.Echo, backend: echo}}]\n'
                            f'runtime: {{worker_threads: 1, shutdown_grace: 1s}}\n')
                gw, target = start(callgrind + [f"--callgrind-out-file={out}",
                                                f"{b}/gateway/gatewayd", f"--config={config}"],
                                   os.path.join(work, f"gw.{n}.log"))
                procs.append(gw)
                measured = gw
            r = subprocess.run([load, f"--target={target}", f"--mode={args.mode}",
                                "--concurrency=1", f"--calls={n}", "--duration=600s"],
                               capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                sys.exit(f"load failed: {r.stdout} {r.stderr}")
            measured.send_signal(signal.SIGTERM)
            measured.wait(300)
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(30)
            counts.append(total_instructions(out))
        return (counts[1] - counts[0]) / args.calls

    backend = measure("backend")
    gateway = measure("gatewayd")
    print(f"mode={args.mode} calls={args.calls} (one at a time)")
    print(f"byte_echo_backend: {backend:,.0f} instructions per call")
    print(f"gatewayd:          {gateway:,.0f} instructions per call "
          f"({gateway / backend:.2f}x the backend)")


if __name__ == "__main__":
    main()
