"""Starts the gateway's real processes on loopback for integration tests.

Every process is started with a listen address of port 0 and announces its bound address
on stderr ("... listening on HOST:PORT"); the harness waits for that line (bounded), keeps
the rest of the output in a log file for failure reports, and kills what it started.
"""

import os
import re
import signal
import struct
import subprocess
import tempfile
import time

from google.protobuf import descriptor_pb2, message_factory

ROOT = os.path.abspath(os.environ.get("GATEWAY_ROOT", "."))
GATEWAYD = os.path.join(ROOT, "gateway/gatewayd")
ECHO_BACKEND = os.path.join(ROOT, "tests/backend/echo_backend")
GRPC_LOAD = os.path.join(ROOT, "tools/bench/grpc_load")
ECHO_SET = os.path.join(ROOT, "tests/testdata/echo_proto.pb")

_LISTEN = re.compile(rb"listening on (\S+)")


class Process:
    """A child process whose stderr goes to a file; knows its announced address."""

    def __init__(self, argv, name, workdir, announce=True, timeout=20.0, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.{int(time.time()*1000)}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=workdir, env=env)
        self.address = None
        if announce:
            self.address = self._wait_for_address(timeout)

    def _wait_for_address(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                m = _LISTEN.search(f.read())
            if m:
                return m.group(1).decode()
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.output())
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not announce its address in {timeout}s:\n"
                           + self.output())

    @property
    def port(self):
        return int(self.address.rsplit(":", 1)[1])

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends `sig`, waits (bounded), kills if needed; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


class Workspace:
    """A temp directory with started processes; close() stops them all."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gw-test-", dir=os.environ.get("TEST_TMPDIR"))
        self.processes = []

    def start(self, argv, name, **kwargs):
        p = Process(argv, name, self.dir, **kwargs)
        self.processes.append(p)
        return p

    def echo_backend(self, listen="127.0.0.1:0", extra_args=()):
        return self.start([ECHO_BACKEND, f"--listen={listen}", *extra_args], "echo_backend")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def gatewayd(self, config_text, name="gatewayd", memory_measured=False):
        """Starts gatewayd on `config_text`. `memory_measured`: the test bounds its resident
        memory, so under AddressSanitizer freed memory must not wait in the sanitizer's
        quarantine (256 MiB by default) before reuse: it runs with a small one (the
        variable means nothing to a build without ASan)."""
        path = self.write(f"{name}.yaml", config_text)
        env = None
        if memory_measured:
            env = dict(os.environ)
            asan = env.get("ASAN_OPTIONS")
            env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=4"
        return self.start([GATEWAYD, f"--config={path}"], name, env=env)

    def close(self):
        for p in reversed(self.processes):
            p.stop(signal.SIGKILL if p.name != "gatewayd" else signal.SIGTERM)


def split_frames(data):
    """[(flags, payload)] of each 5-byte-prefixed frame in `data` (gRPC, gRPC-Web, Connect
    envelopes); fails on a truncated one."""
    out = []
    while data:
        if len(data) < 5:
            raise AssertionError(f"truncated frame head: {data!r}")
        flags, n = struct.unpack(">BI", data[:5])
        if len(data) < 5 + n:
            raise AssertionError(f"truncated frame: {data!r}")
        out.append((flags, data[5:5 + n]))
        data = data[5 + n:]
    return out


def varint(n):
    """Protobuf's base-128 varint of `n` (non-negative)."""
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def length_delimited(number, data):
    """Field `number` with wire type 2 (bytes, string, message) holding `data`."""
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def http_post_option(path):
    """MethodOptions bytes binding a method to POST `path` with body "*":
    google.api.http (72295728) = HttpRule{post (4), body (7)}."""
    rule = length_delimited(4, path) + length_delimited(7, "*")
    return length_delimited(72295728, rule)


def load_messages(descriptor_set_path):
    """Message classes by full name, built at run time from a FileDescriptorSet."""
    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set_path, "rb") as f:
        fds.ParseFromString(f.read())
    return message_factory.GetMessages(fds.file)


# --- HTTP front end ---

BOOKSTORE_BACKEND = os.path.join(ROOT, "examples/bookstore/bookstore_backend")
BOOKSTORE_SET = os.path.join(ROOT, "examples/bookstore/bookstore_proto.pb")
_HTTP_LISTEN = re.compile(rb"http listening on (\S+)")


def http_address(process, timeout=20.0):
    """The HOST:PORT that gatewayd's HTTP front end announced ("http listening on ...")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(process.log_path, "rb") as f:
            m = _HTTP_LISTEN.search(f.read())
        if m:
            return m.group(1).decode()
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n" + process.output())
        time.sleep(0.02)
    raise RuntimeError(f"{process.name} did not announce an http address:\n"
                       + process.output())


def bookstore_backend(workspace, listen="127.0.0.1:0"):
    """Starts the example's bookstore backend in `workspace`."""
    return workspace.start([BOOKSTORE_BACKEND, f"--listen={listen}"], "bookstore_backend")


def self_signed_certificate(directory):
    """A P-256 certificate for localhost and 127.0.0.1 with its key, made with the openssl
    command line tool in `directory`; returns (cert path, key path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_server(ws, port=None, timeout=20.0, persistent=False):
    """Starts a redis-server on 127.0.0.1; returns (process, "127.0.0.1:PORT") once it
    answers PING. Throwaway by default; `persistent` keeps an append-only file in ws.dir,
    fsynced on every write, so a restart on the same port restores what was stored."""
    import socket
    port = port or free_port()
    persistence = (["--appendonly", "yes", "--appendfsync", "always"] if persistent
                   else ["--appendonly", "no"])
    p = ws.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
                 + persistence + ["--daemonize", "no", "--dir", ws.dir], "redis",
                 announce=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return p, f"127.0.0.1:{port}"
        except OSError:
            pass
        if not p.alive():
            break
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start:\n" + p.output())
