"""gatewayd as a service: `--version`, and the systemd unit deploy/systemd/gatewayd.service.

The unit is checked as far as a machine without systemd running as PID 1 allows:
- `systemd-analyze verify` accepts it without a warning (the binary path pointed at the
  built gatewayd);
- its [Service] contract is played against a real gatewayd: the ExecReload commands run
  as systemd runs them (the config check, then SIGHUP to $MAINPID) and gatewayd keeps
  serving; KillSignal stops it gracefully, a call in flight finishes, the exit code is 0
  and comes well within TimeoutStopSec, which is above the default runtime.shutdown_grace;
- its sandbox does not refuse what gatewayd does: under strace, every system call of a
  gatewayd that starts, serves gRPC and REST calls, is scraped, reloaded and stopped is in
  the unit's SystemCallFilter and none is refused by its Protect*= options, every socket
  family it opens is in RestrictAddressFamilies, it writes no file outside its state and log
  directories (ProtectSystem=strict) and maps no memory writable and executable
  (MemoryDenyWriteExecute).
"""

import configparser
import glob
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import unittest

import harness
from grpc_proxy_test import Req, Stubs, gateway_config
from metrics_test import metrics_address

UNIT = "deploy/systemd/gatewayd.service"
CONFIG_DOC = "docs/config.md"
TIMEOUT = 20  # seconds; the bound of any call or wait below
INSTALLED_BINARY = "/usr/local/bin/gatewayd"
INSTALLED_CONFIG = "/etc/gatewayd/gateway.yaml"
_RELOAD_LINE = "SIGHUP received"


def source_file(path):
    """A file of the repository: in Bazel's runfiles, or beside GATEWAY_ROOT=bazel-bin."""
    for root in (harness.ROOT, os.path.dirname(harness.ROOT)):
        full = os.path.join(root, path)
        if os.path.exists(full):
            return full
    raise FileNotFoundError(path)


def unit_text():
    with open(source_file(UNIT)) as f:
        return f.read()


def service_section():
    """The [Service] keys of the unit; a key given several times keeps every value."""
    values = {}
    section = None
    for raw in unit_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        if section == "Service":
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def seconds(text):
    """A systemd time span ("30", "30s", "1min 30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "": 1}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text):
        total += float(number) * units[unit]
    return total


def default_shutdown_grace():
    """The default of runtime.shutdown_grace in docs/config.md's runtime table."""
    with open(source_file(CONFIG_DOC)) as f:
        for line in f:
            if line.startswith("| `shutdown_grace`"):
                return seconds(line.split("|")[3].strip().strip("`"))
    raise AssertionError(f"{CONFIG_DOC} has no shutdown_grace row")


def syscall_group(name, seen=None):
    """The system calls of a systemd syscall filter group, nested groups expanded."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, timeout=TIMEOUT, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            calls |= syscall_group(line, seen)
        else:
            calls.add(line)
    return calls


def rest(address, method, path, body=None):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class VersionTest(unittest.TestCase):

    def test_version_is_printed_logged_and_reported(self):
        result = subprocess.run([harness.GATEWAYD, "--version"], capture_output=True,
                                text=True, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stderr, "")
        m = re.fullmatch(r"gatewayd (\d+\.\d+\.\d+)\n", result.stdout)
        self.assertIsNotNone(m, f"not 'gatewayd VERSION': {result.stdout!r}")
        version = m.group(1)
        usage = subprocess.run([harness.GATEWAYD, "--help"], capture_output=True, text=True,
                               timeout=TIMEOUT).stdout
        self.assertIn("--version", usage)

        # The same version in the start log line and in gateway_build_info.
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        backend = ws.echo_backend()
        gw = ws.gatewayd(gateway_config(backend.address,
                                        'metrics_listener: {address: "127.0.0.1:0"}'))
        self.assertIn(f"gatewayd {version} starting", gw.output())
        host, port = metrics_address(gw).rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        conn.request("GET", "/metrics")
        page = conn.getresponse().read().decode()
        conn.close()
        self.assertIn(f'gateway_build_info{{version="{version}"}} 1', page.splitlines())


class SystemdUnitTest(unittest.TestCase):

    def setUp(self):
        self.ws = harness.Workspace()
        self.addCleanup(self.ws.close)
        self.service = service_section()

    def local_unit(self):
        """The unit with the installed binary's path replaced by the built gatewayd's."""
        path = os.path.join(self.ws.dir, "gatewayd.service")
        with open(path, "w") as f:
            f.write(unit_text().replace(INSTALLED_BINARY, harness.GATEWAYD))
        return path

    def test_systemd_analyze_verify_accepts_it_without_a_warning(self):
        self.assertIsNotNone(shutil.which("systemd-analyze"),
                             "systemd-analyze is missing: tools/install_deps.sh installs systemd")
        self.assertIn(f"ExecStart={INSTALLED_BINARY} --config={INSTALLED_CONFIG}", unit_text())
        result = subprocess.run(["systemd-analyze", "verify", self.local_unit()],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout + result.stderr, "")
        # The check fails on a broken unit (so the assertion above can fail).
        broken = self.ws.write("broken.service",
                               unit_text().replace("TimeoutStopSec=", "TimeoutStopSec=x")
                               .replace(INSTALLED_BINARY, harness.GATEWAYD))
        result = subprocess.run(["systemd-analyze", "verify", broken], capture_output=True,
                                text=True, timeout=60)
        self.assertIn("Failed to parse time value", result.stdout + result.stderr)
        # The sandbox's exposure as systemd rates it (0 = locked down, 10 = none).
        result = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                 self.local_unit()], capture_output=True, text=True,
                                timeout=60)
        m = re.search(r"Overall exposure level for gatewayd\.service: (\d+\.\d+)", result.stdout)
        self.assertIsNotNone(m, result.stdout + result.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, result.stdout)

    def test_the_unit_contract_holds_for_a_real_gatewayd(self):
        s = self.service
        self.assertEqual(s["Type"], ["simple"])  # gatewayd does not speak sd_notify
        self.assertEqual(s["KillSignal"], ["SIGTERM"])
        self.assertGreater(seconds(s["TimeoutStopSec"][0]), default_shutdown_grace())
        self.assertEqual(s["ExecReload"][-1], "/bin/kill -HUP $MAINPID")
        self.assertEqual(s["RestartPreventExitStatus"], ["2"])  # a bad config: no loop

        backend = self.ws.echo_backend()
        config = self.ws.write("gateway.yaml", gateway_config(backend.address).replace(
            "shutdown_grace: 5s", "shutdown_grace: 3s"))
        argv = shlex.split(s["ExecStart"][0].replace(INSTALLED_BINARY, harness.GATEWAYD)
                           .replace(INSTALLED_CONFIG, config))
        gw = self.ws.start(argv, "gatewayd")
        stubs = Stubs(gw.address)
        self.addCleanup(stubs.close)

        def reload():
            """`systemctl reload`: each ExecReload in turn, stopping at the first failure."""
            for line in s["ExecReload"]:
                command = (line.replace("$MAINPID", str(gw.proc.pid))
                           .replace(INSTALLED_BINARY, harness.GATEWAYD)
                           .replace(INSTALLED_CONFIG, config))
                result = subprocess.run(shlex.split(command), capture_output=True, text=True,
                                        timeout=TIMEOUT)
                if result.returncode != 0:
                    return result.returncode, result.stdout + result.stderr
            return 0, ""

        self.assertEqual(reload(), (0, ""))
        deadline = time.monotonic() + TIMEOUT
        while _RELOAD_LINE not in gw.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn(_RELOAD_LINE, gw.output())
        self.assertTrue(gw.alive(), gw.output())
        self.assertEqual(stubs.unary(Req(payload=b"reloaded"), timeout=TIMEOUT).payload,
                         b"reloaded")
        # A config that does not pass the check fails the reload before any signal.
        with open(config, "a") as f:
            f.write("no_such_key: 1\n")
        code, out = reload()
        self.assertEqual(code, 2, out)
        self.assertIn("no_such_key", out)
        time.sleep(0.2)
        self.assertEqual(gw.output().count(_RELOAD_LINE), 1, gw.output())

        # `systemctl stop`: KillSignal to the main process, a call in flight finishes.
        future = stubs.unary.future(Req(payload=b"slow", sleep_ms=1500), timeout=TIMEOUT)
        time.sleep(0.3)
        started = time.monotonic()
        gw.proc.send_signal(getattr(signal, s["KillSignal"][0]))
        self.assertEqual(future.result().payload, b"slow")
        self.assertEqual(gw.proc.wait(seconds(s["TimeoutStopSec"][0])), 0, gw.output())
        self.assertLess(time.monotonic() - started, seconds(s["TimeoutStopSec"][0]))
        self.assertIn("received SIGTERM", gw.output())

    def test_the_sandbox_allows_what_gatewayd_does(self):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace is missing: tools/install_deps.sh installs it")
        allowed = set()
        for group in " ".join(v for v in self.service["SystemCallFilter"]
                              if not v.startswith("~")).split():
            allowed |= syscall_group(group) if group.startswith("@") else {group}
        self.assertGreater(len(allowed), 100)
        # Options that refuse system calls of their own (systemd.exec(5)).
        refused = set()
        for option, groups in (("ProtectClock", ["@clock"]),
                               ("ProtectKernelModules", ["@module"]),
                               ("PrivateDevices", ["@raw-io"]),
                               ("ProtectKernelLogs", ["syslog"]),
                               ("ProtectHostname", ["sethostname", "setdomainname"]),
                               ("RestrictNamespaces", ["unshare", "setns"])):
            if self.service.get(option) == ["yes"]:
                for group in groups:
                    refused |= syscall_group(group) if group.startswith("@") else {group}
        self.assertIn("clock_settime", refused)
        families = set(self.service["RestrictAddressFamilies"][0].split())

        bookstore = harness.bookstore_backend(self.ws)
        # Stand-ins for the unit's StateDirectory and LogsDirectory, the only places
        # ProtectSystem=strict leaves writable.
        state = os.path.join(self.ws.dir, "state")
        logs = os.path.join(self.ws.dir, "logs")
        os.mkdir(state)
        os.mkdir(logs)
        config = self.ws.write("gateway.yaml", f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener: {{address: "127.0.0.1:0", worker_threads: 2}}
metrics_listener: {{address: "127.0.0.1:0"}}
admin_listener: {{address: "127.0.0.1:0", registry_directory: "{state}"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "dns:///{bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
access_log: {{path: "{logs}/access.log"}}
runtime: {{shutdown_grace: 2s, worker_threads: 2}}
""")
        # One trace file per thread (-ff): with one file, a call that another thread
        # interrupts is split into "<unfinished ...>" and "<... resumed>" lines, and its
        # result no longer stands beside its arguments.
        trace = os.path.join(self.ws.dir, "strace")
        # LeakSanitizer cannot run under ptrace (it fails the exit of a sanitized build):
        # leaks are checked by every other test, not this one.
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
        gw = self.ws.start([strace, "-ff", "-qq", "-o", trace, "-E", f"ASAN_OPTIONS={asan}",
                            harness.GATEWAYD, f"--config={config}"], "gatewayd", timeout=60)
        http_address = harness.http_address(gw)
        for path in ("/v1/shelves", "/v1/shelves/1", "/v1/shelves/999", "/nope"):
            status, body = rest(http_address, "GET", path)
            self.assertIn(status, (200, 404), body)
        stubs = Stubs(gw.address)
        self.addCleanup(stubs.close)
        shelves = stubs.channel.unary_unary("/bookstore.v1.Bookstore/ListShelves")
        self.assertIsNotNone(shelves(b"", timeout=TIMEOUT))
        host, port = metrics_address(gw).rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        conn.request("GET", "/metrics")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()
        # Signals go to gatewayd itself, strace's child.
        with open(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children") as f:
            (pid,) = [int(p) for p in f.read().split()]
        os.kill(pid, signal.SIGHUP)
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + TIMEOUT
        while _RELOAD_LINE not in gw.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(gw.proc.wait(TIMEOUT), 0, gw.output())  # strace exits as its child

        lines = []
        for name in sorted(glob.glob(trace + ".*")):
            with open(name) as f:
                lines += f.read().splitlines()
        self.assertGreater(len(lines), 100, "strace wrote no trace")
        # "name(args) = result"; signals ("--- SIGHUP ...") and exits ("+++ ...") aside.
        calls = set()
        opened = set()
        for line in lines:
            m = re.match(r"^([a-z_0-9]+)\(", line)
            if m:
                calls.add(m.group(1))
            m = re.match(r"^socket\((AF_\w+),", line)
            if m:
                opened.add(m.group(1))
        calls.discard("execve")  # strace starting gatewayd, before any filter applies
        # ProtectSystem=strict: nothing written outside the writable directories (calls
        # that succeeded: a mkdir of an existing parent fails with EEXIST, as it would there);
        # MemoryDenyWriteExecute: no memory both writable and executable.
        written = set()
        for line in lines:
            if not re.search(r"\) += \d+(?: |$)", line):
                continue
            m = re.match(r'^(?:open|openat|creat)\((?:AT_FDCWD, )?"([^"]+)", ([A-Z_|]+)',
                         line)
            if m and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", m.group(2)):
                written.add(os.path.normpath(m.group(1)))
            m = re.match(r'^(?:mkdir|mkdirat|unlink|unlinkat|rename|renameat2?)\('
                         r'(?:AT_FDCWD, )?"([^"]+)"', line)
            if m:
                written.add(os.path.normpath(m.group(1)))
        self.assertIn(os.path.join(logs, "access.log"), written)
        outside = sorted(p for p in written
                         if not p.startswith((state + "/", logs + "/"))
                         and p not in (state, logs, "/dev/null"))
        self.assertEqual(outside, [], "files gatewayd writes outside its directories")
        self.assertEqual([l for l in lines if re.search(r"\b(mmap|mprotect)\(.*PROT_WRITE\|PROT_EXEC", l)
                          or re.search(r"\b(mmap|mprotect)\(.*PROT_EXEC\|PROT_WRITE", l)],
                         [], "writable and executable memory")
        self.assertTrue(calls & {"accept", "accept4"}, sorted(calls))  # the listeners took calls
        self.assertIn("AF_INET", opened)
        self.assertEqual(sorted(calls - allowed), [],
                         "system calls of gatewayd that the unit's SystemCallFilter refuses")
        self.assertEqual(sorted(calls & refused), [],
                         "system calls of gatewayd that the unit's Protect*= options refuse")
        self.assertEqual(sorted(opened - families), [],
                         "socket families of gatewayd outside RestrictAddressFamilies")


if __name__ == "__main__":
    unittest.main()
