"""What the benchmark scripts of tools/bench share: finding the binaries, starting a
process and waiting for its address, CPU time and context switches of a process from /proc,
gRPC framing, and driving wrk (HTTP/1.1) and h2load (h2c) with a fixed body and headers."""

import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bazel_bin():
    out = subprocess.run(["bazel", "info", "bazel-bin"], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of `pid` so far (with `children`: of its child processes
    too, e.g. nginx's worker)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        try:
            for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
                total += cpu_seconds(int(child), children=True)
        except OSError:
            pass
    return total


def context_switches(pid):
    """Voluntary plus involuntary context switches of every thread of `pid` so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total


def start(argv, log_path, pattern=rb"listening on (\S+)", timeout=20):
    """Starts `argv` (output to `log_path`) and waits for `pattern` in its log: returns the
    process and the pattern's first group; ends the benchmark if it does not appear."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    return proc, wait_for_log(proc, log_path, pattern, timeout)


def wait_for_log(proc, log_path, pattern, timeout=20):
    """The first group of `pattern` once it appears in the log of the started `proc`; kills
    `proc` and ends the benchmark if it does not appear in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, open(log_path, "rb").read())
        if m:
            return m.group(1).decode()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"{proc.args[0]} did not log {pattern!r}:\n" + open(log_path).read())


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def grpc_frame(message, flags=0):
    return bytes([flags]) + len(message).to_bytes(4, "big") + message


def percentile(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def to_us(text):
    """wrk's latency text ("512.00us", "1.20ms", "2.01s", "1.50m") in microseconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}[unit]


def lua_string(data):
    """A Lua string literal of any bytes (decimal escapes)."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def run_wrk(url, connections, duration, work, body=None, headers=None):
    """wrk over HTTP/1.1 for `duration` seconds: a GET, or a POST of `body`; `headers` a
    dict. Returns (calls, errors, p50 us, p99 us)."""
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency"]
    if body is not None or headers:
        script = os.path.join(work, "request.lua")
        with open(script, "w") as f:
            if body is not None:
                f.write('wrk.method = "POST"\n')
                f.write(f"wrk.body = {lua_string(body)}\n")
            for name, value in (headers or {}).items():
                f.write(f"wrk.headers[{lua_string(name.encode())}] = "
                        f"{lua_string(value.encode())}\n")
        argv += ["-s", script]
    r = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60)
    out = r.stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        sys.exit(f"wrk failed:\n{out}{r.stderr}")
    calls = int(m.group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    # The distribution's own lines ("     50%    1.09ms"), not a "+/- Stdev" figure such as
    # "97.50%" earlier in the output.
    p50 = to_us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return calls, errors, p50, p99


def run_h2load(url, connections, duration, work, body=None, headers=None):
    """h2load over h2c (one request in flight per connection) for `duration` seconds: a
    GET, or a POST of `body`; `headers` a dict. Returns (calls, errors, p50 us, p99 us)."""
    log = os.path.join(work, "h2load.log")
    if os.path.exists(log):
        os.remove(log)
    argv = ["h2load", "-c", str(connections), "-m", "1", "-D", str(duration),
            "--log-file", log]
    if body is not None:
        path = os.path.join(work, "h2load.body")
        with open(path, "wb") as f:
            f.write(body)
        argv += ["-d", path]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    r = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60)
    if not os.path.exists(log):
        sys.exit(f"h2load failed:\n{r.stdout}{r.stderr}")
    latencies = []
    errors = 0
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                latencies.append(int(parts[2]))
                if not parts[1].startswith("2"):
                    errors += 1
    m = re.search(r"(\d+) failed, (\d+) errored", r.stdout)
    if m:
        errors += int(m.group(1))
    return len(latencies), errors, percentile(latencies, 50), percentile(latencies, 99)
