"""Integration tests of the admin API's team credentials and audit log: a tokens file of
SHA-256 digests bound to owners, roles, packages and path prefixes; a team's token refused
outside what it owns; one audit line per change; the tokens file read again on reload.

Real processes on loopback: gatewayd, the bookstore and echo backends, gatewayctl and
grpcio. Every call carries a timeout; every wait is bounded.
"""

import hashlib
import json
import os
import signal
import time
import unittest

import grpc

import harness
import registry_test
from registry_test import ECHO_HTTP_V1, ECHO_HTTP_V2, echo_request

ECHO = "gateway.test.v1.Echo"
TOKENS = {
    # name: (token, owner, role, packages, path_prefixes)
    "echo": ("echo-team-token", "echo-team", "team", ["gateway.test"], ["/v1/echo"]),
    "books": ("books-team-token", "books-team", "team", ["library"], ["/v1/library"]),
    "narrow": ("narrow-team-token", "echo-team", "team", ["gateway.test"], ["/v9/other"]),
    "root": ("platform-admin-token", "platform", "admin", [], []),
}


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_yaml(names):
    lines = ["tokens:"]
    for name in names:
        token, owner, role, packages, prefixes = TOKENS[name]
        lines.append(f"  - sha256: {digest(token)}")
        lines.append(f"    owner: {owner}")
        lines.append(f"    role: {role}")
        if packages:
            lines.append(f"    packages: [{', '.join(packages)}]")
        if prefixes:
            lines.append(f"    path_prefixes: [{', '.join(prefixes)}]")
    return "\n".join(lines) + "\n"


class TeamTokensTest(unittest.TestCase):
    def setUp(self):
        self.ws = harness.Workspace()
        self.bookstore = harness.bookstore_backend(self.ws)
        self.echo = self.ws.echo_backend()
        self.tokens_file = self.ws.write("tokens.yaml", tokens_yaml(["echo", "books", "narrow",
                                                                     "root"]))
        self.audit_file = os.path.join(self.ws.dir, "audit.jsonl")
        self.legacy_token_file = self.ws.write("token", "legacy-admin-token\n")
        for name, (token, *_rest) in TOKENS.items():
            self.ws.write(f"{name}.token", token + "\n")
        self.ws.write("wrong.token", "not-a-known-token\n")
        self.gw = registry_test.Gateway(
            self.ws, self.bookstore.address, self.echo.address,
            os.path.join(self.ws.dir, "registry"), token_file=self.legacy_token_file,
            admin_options=f'tokens_file: "{self.tokens_file}", '
                          f'audit_log_file: "{self.audit_file}"')

    def tearDown(self):
        self.ws.close()

    def ctl(self, who, *args):
        """gatewayctl with the token of TOKENS[who] ("legacy": the token_file's)."""
        path = (self.legacy_token_file if who == "legacy"
                else os.path.join(self.ws.dir, f"{who}.token"))
        saved = self.gw.token_file
        self.gw.token_file = path
        try:
            return self.gw.ctl(*args)
        finally:
            self.gw.token_file = saved

    def register(self, who, *extra, descriptor_set=ECHO_HTTP_V1):
        return self.ctl(who, "register", ECHO, f"--descriptor-set={descriptor_set}",
                        "--backend=echo", *extra)

    def audit_lines(self):
        if not os.path.exists(self.audit_file):
            return []
        with open(self.audit_file) as f:
            return [json.loads(line) for line in f.read().splitlines()]

    def assert_not_served(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"x"))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED,
                         ctx.exception.details())

    def test_team_token_is_refused_outside_its_packages_prefixes_and_owner(self):
        code, out = self.register("books")
        self.assertEqual(code, 1, out)
        self.assertIn("package gateway.test.v1 of service gateway.test.v1.Echo is not one "
                      "this token may register in (library)", out)
        code, out = self.register("narrow")
        self.assertEqual(code, 1, out)
        self.assertIn("routes of gateway.test.v1.Echo outside the path prefixes this token "
                      "may claim (/v9/other):\nPOST /v1/echo -> gateway.test.v1.Echo.Unary", out)
        code, out = self.register("narrow", "--dry-run")
        self.assertEqual(code, 1, out)
        self.assertIn("outside the path prefixes", out)
        code, out = self.register("echo", "--owner=books-team")
        self.assertEqual(code, 1, out)
        self.assertIn('owner: the token of "echo-team" may not act as owner "books-team"', out)
        code, out = self.register("wrong")
        self.assertEqual(code, 4, out)
        self.assert_not_served()
        self.assertEqual(self.audit_lines(), [], "refusals are not changes")

        # Its own package and prefix: served, owned by the token's owner.
        code, out = self.register("echo")
        self.assertEqual(code, 0, out)
        self.assertIn(b"hi", self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"hi")))
        code, out = self.ctl("echo", "show", ECHO)
        self.assertIn("owner:      echo-team", out)

        # /v2/echo lies outside /v1/echo: the same team cannot move its routes there.
        code, out = self.register("echo", "--force", descriptor_set=ECHO_HTTP_V2)
        self.assertEqual(code, 1, out)
        self.assertIn("POST /v2/echo -> gateway.test.v1.Echo.Unary", out)

        # Another team can neither remove nor roll back it, nor reload the config.
        code, out = self.ctl("books", "remove", ECHO)
        self.assertEqual(code, 1, out)
        self.assertIn('service gateway.test.v1.Echo is owned by "echo-team", not "books-team"',
                      out)
        code, out = self.ctl("books", "remove", ECHO, "--owner=echo-team")
        self.assertEqual(code, 1, out)
        self.assertIn('the token of "books-team" may not act as owner "echo-team"', out)
        code, out = self.ctl("books", "rollback", ECHO)
        self.assertEqual(code, 1, out)
        self.assertIn("is owned by", out)
        code, out = self.ctl("echo", "reload")
        self.assertEqual(code, 1, out)
        self.assertIn('Reload needs an admin token; the token of "echo-team" is a team\'s', out)
        self.assertIn(b"hi", self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"hi")))

        # An admin (tokens file or the single token_file token) may do everything.
        code, out = self.ctl("root", "remove", ECHO, "--owner=echo-team")
        self.assertEqual(code, 0, out)
        self.assert_not_served()
        code, out = self.ctl("legacy", "rollback", ECHO, "--owner=echo-team")
        self.assertEqual(code, 0, out)
        self.assertIn(b"hi", self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"hi")))

    def test_every_change_writes_one_audit_line_and_the_history_keeps_who(self):
        echo_who = f"echo-team (sha256:{digest('echo-team-token')[:8]})"
        root_who = f"platform (sha256:{digest('platform-admin-token')[:8]})"
        legacy_who = f"admin (token_file, sha256:{digest('legacy-admin-token')[:8]})"
        self.assertEqual(self.register("echo")[0], 0)
        self.assertEqual(self.register("echo", "--dry-run")[0], 0)    # not a change
        self.assertEqual(self.register("echo")[0], 0)                 # unchanged: not a change
        self.assertEqual(self.ctl("root", "remove", ECHO, "--owner=echo-team")[0], 0)
        self.assertEqual(self.ctl("echo", "rollback", ECHO)[0], 0)
        code, out = self.ctl("legacy", "reload")
        self.assertEqual(code, 0, out)

        lines = self.audit_lines()
        self.assertEqual([(l["action"], l["who"], l.get("service"), l.get("version"))
                          for l in lines],
                         [("register", echo_who, ECHO, 1),
                          ("remove", root_who, ECHO, 2),
                          ("rollback", echo_who, ECHO, 3),
                          ("reload", legacy_who, None, None)])
        self.assertEqual(lines[0]["owner"], "echo-team")
        self.assertEqual(lines[0]["changes"], "+1 services, +1 methods, +1 routes")
        self.assertEqual(lines[1]["changes"], "-1 services, -1 methods, -1 routes")
        self.assertIn("reload applied", lines[3]["changes"])
        for line in lines:
            self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        with open(self.audit_file) as f:
            text = f.read()
        for token, *_rest in TOKENS.values():
            self.assertNotIn(token, text)
        self.assertNotIn("legacy-admin-token", text)

        code, out = self.ctl("echo", "show", ECHO, "--versions")
        self.assertEqual(code, 0, out)
        versions = out.strip().splitlines()
        self.assertEqual(len(versions), 3, out)
        self.assertTrue(versions[0].startswith("v1 ") and versions[0].endswith("by " + echo_who),
                        out)
        self.assertTrue(versions[1].endswith("(removed)  by " + root_who), out)
        self.assertTrue(versions[2].endswith("by " + echo_who), out)

        # The history survives a restart (kept with each stored version).
        self.gw.stop()
        self.gw.start()
        code, out = self.ctl("echo", "show", ECHO, "--versions")
        self.assertEqual(code, 0, out)
        self.assertTrue(out.strip().splitlines()[0].endswith("by " + echo_who), out)

    def test_tokens_file_is_read_again_on_reload(self):
        # The books team's token is withdrawn and a new admin added; SIGHUP applies it.
        self.ws.write("tokens.yaml", tokens_yaml(["echo", "root"]))
        self.gw.process.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            code, out = self.ctl("books", "list")
            if code == 4:
                break
            time.sleep(0.1)
        self.assertEqual(code, 4, out)
        self.assertIn("wrong admin token", out)
        self.assertEqual(self.ctl("echo", "list")[0], 0)

        # A tokens file that does not validate refuses the reload; the old tokens stay.
        self.ws.write("tokens.yaml", "tokens:\n  - {sha256: nope, owner: x, role: admin}\n")
        code, out = self.ctl("root", "reload")
        self.assertEqual(code, 1, out)
        self.assertIn("tokens[0].sha256: required: the token's SHA-256 digest as 64 hex digits",
                      out)
        self.assertEqual(self.ctl("echo", "list")[0], 0)

    def test_apply_and_diff_take_a_service_file_next_to_the_protos(self):
        team_dir = os.path.join(self.ws.dir, "echo-repo")
        os.makedirs(team_dir)
        with open(ECHO_HTTP_V1, "rb") as src, open(os.path.join(team_dir, "echo.pb"), "wb") as dst:
            dst.write(src.read())
        service_file = os.path.join(team_dir, "service.yaml")
        with open(service_file, "w") as f:
            f.write(f"service: {ECHO}\nbackend: echo\ndescriptor_set: echo.pb\n")

        code, out = self.ctl("echo", "diff", "-f", service_file)
        self.assertEqual(code, 0, out)
        self.assertIn("+ service gateway.test.v1.Echo", out)
        self.assert_not_served()
        self.assertEqual(self.audit_lines(), [])

        code, out = self.ctl("echo", "apply", "-f", service_file)
        self.assertEqual(code, 0, out)
        self.assertIn(b"hi", self.gw.grpc_call(f"/{ECHO}/Unary", echo_request(b"hi")))
        self.assertEqual([l["action"] for l in self.audit_lines()], ["register"])
        code, out = self.ctl("echo", "show", ECHO)
        self.assertIn("owner:      echo-team", out)

        # The same file applied by a team that does not own the package is refused.
        code, out = self.ctl("books", "apply", "-f", service_file)
        self.assertEqual(code, 1, out)
        self.assertIn("is not one this token may register in (library)", out)

        # A key the file format does not know is refused, naming the file and the key.
        with open(service_file, "a") as f:
            f.write("rules: []\n")
        code, out = self.ctl("echo", "apply", "-f", service_file)
        self.assertEqual(code, 2, out)
        self.assertIn(f"{service_file}: rules: unknown key (known: service, owner, backend, "
                      "descriptor_set, protos, proto_paths, deadlines, retries, auth, quotas, "
                      "force)", out)


if __name__ == "__main__":
    unittest.main()
