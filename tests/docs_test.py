"""Checks the commands and config examples of the documentation against the programs.

From README.md, docs/*.md and examples/**/README.md it extracts the fenced ```yaml and
```sh blocks and:
- runs every YAML config example through `gatewayd --check-config` (an example that is a
  section only is checked on top of the bookstore config; the files it names are made in a
  temporary directory: descriptor sets, certificates and keys, API key and token files);
- runs the self-contained, bounded command lines (`gatewayd ... --check-config`);
- for every other command line checks that the program exists, that every --flag given to
  gatewayd, gatewayctl or a tools/ script appears in its --help, that every file argument
  exists (bazel-bin/PATH: the file the build makes) and every //package:target is defined.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import yaml

import harness

# Outside Bazel GATEWAY_ROOT is bazel-bin, and the sources are beside it.
ROOTS = [harness.ROOT] + ([os.path.dirname(harness.ROOT)]
                          if os.path.basename(harness.ROOT) == "bazel-bin" else [])
GATEWAYCTL = os.path.join(harness.ROOT, "tools/gatewayctl/gatewayctl")
TIMEOUT = 20
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def find(path):
    """The file for a path as a document names it (relative to the repository root)."""
    if path.startswith("bazel-bin/"):
        path = path[len("bazel-bin/"):]
    for root in ROOTS:
        full = os.path.join(root, path)
        if os.path.exists(full):
            return full
    return None


def documents():
    names = set()
    for root in ROOTS:
        for pattern in ("README.md", "docs/*.md", "examples/**/README.md"):
            for path in glob.glob(os.path.join(root, pattern), recursive=True):
                names.add(os.path.relpath(path, root))
    return sorted(names)


def blocks(language):
    """(document, line, text) of every fenced block in `language`."""
    out = []
    for name in documents():
        with open(find(name)) as f:
            text = f.read()
        for m in _BLOCK.finditer(text):
            if m.group(1) == language:
                out.append((name, text[:m.start()].count("\n") + 2, m.group(2)))
    return out


def command_lines(text):
    """Shell command lines of a block, continuation lines joined, comments dropped."""
    lines = text.replace("\\\n", " ").splitlines()
    return [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]


_help_cache = {}


def help_text(program):
    if program not in _help_cache:
        argv = [program] if os.access(program, os.X_OK) else ["/usr/bin/python3", program]
        result = subprocess.run(argv + ["--help"], capture_output=True, text=True,
                                timeout=TIMEOUT)
        _help_cache[program] = result.stdout + result.stderr
    return _help_cache[program]


class Fixtures:
    """The files a config example names, made in `directory` by the key that names them."""

    def __init__(self, directory):
        self.dir = directory
        self.cert, self.key = harness.self_signed_certificate(directory)

    def make(self, key, value):
        if not isinstance(value, str) or os.path.isabs(value):
            return
        path = os.path.join(self.dir, value)
        if os.path.exists(path):
            return
        if key == "descriptor_sets":
            shutil.copy(harness.BOOKSTORE_SET, path)
        elif key in ("cert_file", "client_ca_file", "ca_file"):
            shutil.copy(self.cert, path)
        elif key == "key_file":
            shutil.copy(self.key, path)
        elif key == "keys_file":
            with open(path, "w") as f:
                f.write("ops " + "ab" * 32 + "\n")
        elif key == "token_file":
            with open(path, "w") as f:
                f.write("an-admin-token\n")

    def walk(self, node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                self.walk(v, k)
        elif isinstance(node, list):
            for v in node:
                self.walk(v, key)
        else:
            self.make(key, node)


BASE_CONFIG = {
    "grpc_listener": {"address": "127.0.0.1:9090"},
    "descriptor_sets": ["bookstore_proto.pb"],
    "backends": [{"name": "bookstore", "target": "dns:///127.0.0.1:50051"}],
    "services": [{"name": "bookstore.v1.Bookstore", "backend": "bookstore"}],
}


def check_config(document, line, text):
    """gatewayd --check-config on a config example; returns (exit code, output)."""
    with tempfile.TemporaryDirectory() as directory:
        config = yaml.safe_load(text)
        if "descriptor_sets" not in config:
            config = {**BASE_CONFIG, **config}
        Fixtures(directory).walk(config)
        path = os.path.join(directory, "gw.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        result = subprocess.run([harness.GATEWAYD, f"--config={path}", "--check-config"],
                                capture_output=True, text=True, timeout=TIMEOUT)
        return result.returncode, f"{document}:{line}: " + result.stdout + result.stderr


class DocsTest(unittest.TestCase):
    def test_documents_are_found(self):
        names = documents()
        for name in ("README.md", "docs/config.md", "examples/bookstore/README.md"):
            self.assertIn(name, names)
        self.assertGreaterEqual(len(blocks("yaml")), 5)
        self.assertGreaterEqual(len(blocks("sh")), 8)

    def test_config_examples_pass_check_config(self):
        for document, line, text in blocks("yaml"):
            with self.subTest(f"{document}:{line}"):
                if text.startswith("# ") and "not a gateway config" in text.splitlines()[0]:
                    # Another file of the gateway (a service file, a tokens file): valid
                    # YAML, checked by the tests of the program that reads it.
                    self.assertIsInstance(yaml.safe_load(text), dict)
                    continue
                code, out = check_config(document, line, text)
                self.assertEqual(code, 0, out)

    def test_a_wrong_example_is_caught(self):
        code, out = check_config("wrong", 1, "auth:\n  rules:\n    - {selectors: "
                                 '["bookstore.v1.Internal.*"], allow_unauthenticated: true}\n')
        self.assertEqual(code, 2, out)
        self.assertIn("bookstore.v1.Internal", out)

    def test_command_lines_name_what_exists(self):
        checked = 0
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        for document, line, text in blocks("sh"):
            self.scratch = {}  # /tmp/DIR a block makes -> a directory of the test
            for command in command_lines(text):
                with self.subTest(f"{document}:{line}: {command}"):
                    self.check_command(command)
                    checked += 1
        self.assertGreater(checked, 10)

    def check_command(self, command):
        argv = shlex.split(command)
        program = argv[0]
        if program == "bazel":
            # A target is what its package's BUILD file defines (outside Bazel) or what the
            # build made of it (in the test's runfiles: the targets are data of the test).
            for label in (a for a in argv[1:] if a.startswith("//")):
                package, _, name = label[2:].partition(":")
                self.assertIsNotNone(find(package), f"{label}: no package {package}")
                if name and name != "all":
                    build = find(os.path.join(package, "BUILD.bazel"))
                    defined = False
                    if build:
                        with open(build) as f:
                            defined = f'name = "{name}"' in f.read()
                    self.assertTrue(defined or find(os.path.join(package, name)),
                                    f"{label}: no such target")
            return
        if program == "mkdir":
            for d in (a for a in argv[1:] if a.startswith("/tmp/")):
                self.scratch.setdefault(d.rstrip("/"), tempfile.mkdtemp(dir=self.tmp))
            return
        if program == "cp":
            # Files copied from the repository or the build must exist; copies into a
            # directory the block made are made, in a directory of the test.
            for source in argv[1:-1]:
                self.assertIsNotNone(find(source), f"{source}: no such file")
                target = self.scratch.get(argv[-1].rstrip("/"))
                if target:
                    shutil.copy(find(source), target)
            return
        if program in ("curl", "protoc"):
            return
        path = find(program)
        self.assertIsNotNone(path, f"{program}: no such program")
        flags = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")]
        if flags and (program.endswith(("gatewayd", "gatewayctl")) or program.endswith(".py")):
            usage = help_text(path)
            for flag in flags:
                self.assertIn(flag, usage, f"{program} has no {flag}")
        for arg in argv[1:]:
            value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            if value.startswith(("bazel-bin/", "examples/", "tools/", "docs/")):
                self.assertIsNotNone(find(value), f"{value}: no such file")
        if program.endswith("gatewayd") and "--check-config" in argv:
            config = next(a for a in argv if a.startswith("--config=")).split("=", 1)[1]
            directory, base = os.path.split(config)
            config = (os.path.join(self.scratch[directory], base) if directory in self.scratch
                      else find(config))
            self.assertIsNotNone(config, f"{command}: no such config")
            result = subprocess.run([harness.GATEWAYD, f"--config={config}", "--check-config"],
                                    capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
