"""Authentication on the gRPC front end with real tokens: JWTs verified against a JWKS
served over HTTPS by a loopback server (key rotation picked up), API keys, scopes, open
and closed methods, caller ids feeding quotas."""

import base64
import json
import subprocess
import time
import unittest

import grpc

import harness
import jwt_util
from grpc_proxy_test import Req, StatsReq, Stubs, TIMEOUT, gateway_config


def code_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, None
    except grpc.RpcError as e:
        return e.code(), e


class AuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.key1 = jwt_util.RsaKey("k1")
        cls.key2 = jwt_util.RsaKey("k2")
        cls.jwks = jwt_util.JwksServer(cls.ws.dir, jwt_util.jwks(cls.key1))
        keys_file = cls.ws.write("api-keys.txt",
                                 f"# id  sha256\nci-bot {jwt_util.sha256_hex('s3cret-key')}\n")
        cls.backend = cls.ws.echo_backend()
        extra = f"""
auth:
  jwt_providers:
    - name: idp
      issuer: https://idp.test
      audiences: [bookstore]
      algorithms: [RS256]
      jwks_uri: "{cls.jwks.url}"
      jwks_ca_file: "{cls.jwks.ca}"
      jwks_min_refresh_interval: 1s
      forward_payload_header: x-jwt-payload
  api_keys:
    keys_file: "{keys_file}"
  rules:
    - selectors: ["gateway.test.v1.Echo.Unary"]
      providers: [idp, api_key]
    - selectors: ["gateway.test.v1.Echo.ServerStream"]
      providers: [idp]
      required_scopes: [stream.read]
    - selectors: ["gateway.test.v1.Echo.Stats"]
      allow_unauthenticated: true
    - selectors: ["gateway.test.v1.Echo.ClientStream"]
      providers: [idp]
quotas:
  rules:
    - {{name: per-caller, selectors: ["gateway.test.v1.Echo.ClientStream"], requests: 2, per: 1h}}
"""
        cls.gateway = cls.ws.gatewayd(gateway_config(cls.backend.address, extra))
        cls.stubs = Stubs(cls.gateway.address)

    @classmethod
    def tearDownClass(cls):
        cls.stubs.close()
        cls.ws.close()
        cls.jwks.close()

    def bearer(self, token):
        return [("authorization", f"Bearer {token}")]

    def test_valid_token_reaches_the_backend_with_its_payload(self):
        token = self.key1.token(jwt_util.claims(sub="alice"))
        resp = self.stubs.unary(Req(payload=b"hi"), timeout=TIMEOUT, metadata=self.bearer(token))
        self.assertEqual(resp.payload, b"hi")
        seen = dict(m.split("=", 1) for m in resp.metadata)
        payload = json.loads(base64.urlsafe_b64decode(seen["x-jwt-payload"] + "=="))
        self.assertEqual(payload["sub"], "alice")

    def test_missing_credentials_are_unauthenticated_with_a_challenge(self):
        code, err = code_of(self.stubs.unary, Req(), timeout=TIMEOUT)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("missing credentials", err.details())
        self.assertIn("a bearer token of idp", err.details())
        self.assertIn("an API key", err.details())
        self.assertIn('Bearer realm="gateway"', dict(err.trailing_metadata())["www-authenticate"])

    def test_attacks_are_rejected_with_a_reason(self):
        good = self.key1.token(jwt_util.claims())
        head, body, sig = good.split(".")
        cases = {
            "expired": (self.key1.token(jwt_util.claims(ttl=-3600)), "token expired"),
            "wrong audience": (self.key1.token(jwt_util.claims(aud="other")), "wrong audience"),
            "wrong issuer": (self.key1.token(jwt_util.claims(iss="https://evil")),
                             "wrong issuer"),
            "bad signature": (f"{head}.{body}.{sig[:-4]}AAAA", "bad signature"),
            "alg none": (jwt_util.b64url(b'{"alg":"none","kid":"k1"}') + "." + body + ".",
                         "algorithm not allowed"),
            "garbage": ("abc.def", "malformed token"),
        }
        for name, (token, reason) in cases.items():
            code, err = code_of(self.stubs.unary, Req(), timeout=TIMEOUT,
                                metadata=self.bearer(token))
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, name)
            self.assertIn(reason, err.details(), name)
            self.assertNotIn(token, err.details(), name)
            challenge = dict(err.trailing_metadata())["www-authenticate"]
            self.assertIn('error="invalid_token"', challenge, name)

    def test_api_keys(self):
        resp = self.stubs.unary(Req(payload=b"k"), timeout=TIMEOUT,
                                metadata=[("x-api-key", "s3cret-key")])
        self.assertEqual(resp.payload, b"k")
        code, err = code_of(self.stubs.unary, Req(), timeout=TIMEOUT,
                            metadata=[("x-api-key", "wrong-key")])
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("unknown API key", err.details())
        self.assertNotIn("wrong-key", err.details())

    def test_missing_scope_is_permission_denied(self):
        without = self.key1.token(jwt_util.claims())
        code, err = code_of(lambda: list(self.stubs.server_stream(
            Req(count=1), timeout=TIMEOUT, metadata=self.bearer(without))))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn('missing scope "stream.read"', err.details())
        with_scope = self.key1.token(jwt_util.claims(scope="books stream.read"))
        got = list(self.stubs.server_stream(Req(count=3), timeout=TIMEOUT,
                                            metadata=self.bearer(with_scope)))
        self.assertEqual(len(got), 3)

    def test_open_and_uncovered_methods(self):
        self.assertEqual(code_of(self.stubs.stats, StatsReq(tag="x"), timeout=TIMEOUT)[0],
                         grpc.StatusCode.OK)
        token = self.key1.token(jwt_util.claims())
        code, err = code_of(lambda: list(self.stubs.bidi(iter([Req()]), timeout=TIMEOUT,
                                                         metadata=self.bearer(token))))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("no auth rule allows /gateway.test.v1.Echo/Bidi", err.details())

    def test_quota_counts_per_verified_caller(self):
        def call(sub):
            token = self.key1.token(jwt_util.claims(sub=sub))
            return code_of(self.stubs.client_stream, iter([Req()]), timeout=TIMEOUT,
                           metadata=self.bearer(token))[0]
        self.assertEqual([call("bob"), call("bob"), call("bob")],
                         [grpc.StatusCode.OK, grpc.StatusCode.OK,
                          grpc.StatusCode.RESOURCE_EXHAUSTED])
        self.assertEqual(call("carol"), grpc.StatusCode.OK)

    def test_key_rotation_is_picked_up_on_an_unknown_kid(self):
        rotated = self.key2.token(jwt_util.claims(sub="dave"))
        before = self.jwks.requests
        self.jwks.document = jwt_util.jwks(self.key1, self.key2)
        time.sleep(1.1)  # past jwks_min_refresh_interval since any earlier reload
        resp = self.stubs.unary(Req(payload=b"r"), timeout=TIMEOUT,
                                metadata=self.bearer(rotated))
        self.assertEqual(resp.payload, b"r")
        self.assertGreater(self.jwks.requests, before)
        # A kid nobody publishes: one reload at most per interval, then a clear error.
        unknown = jwt_util.RsaKey("k9").token(jwt_util.claims())
        code, err = code_of(self.stubs.unary, Req(), timeout=TIMEOUT,
                            metadata=self.bearer(unknown))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn('unknown key id "k9"', err.details())


class JwksFileWithUnusableKeysTest(unittest.TestCase):
    """A jwks_file that also holds keys the gateway cannot use: it starts, logs each skipped
    key once, verifies tokens of the good key and refuses tokens naming a skipped one."""

    def test_gateway_starts_and_skips_the_unusable_keys(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        good = jwt_util.RsaKey("good")
        weak = jwt_util.RsaKey("weak", bits=1024)
        enc = dict(jwt_util.RsaKey("enc").jwk(), use="enc")
        enc.pop("alg")
        off_curve = {"kty": "EC", "crv": "P-256", "kid": "off",
                     "x": jwt_util.b64url(b"\x01" * 32), "y": jwt_util.b64url(b"\x02" * 32)}
        jwks_file = ws.write("jwks.json", json.dumps(
            {"keys": [weak.jwk(), off_curve, enc, good.jwk()]}))
        backend = ws.echo_backend()
        extra = f"""
auth:
  jwt_providers:
    - name: idp
      issuer: https://idp.test
      audiences: [bookstore]
      algorithms: [RS256]
      jwks_file: "{jwks_file}"
  rules:
    - selectors: ["gateway.test.v1.Echo.Unary"]
      providers: [idp]
"""
        gateway = ws.gatewayd(gateway_config(backend.address, extra))
        stubs = Stubs(gateway.address)
        self.addCleanup(stubs.close)
        token = good.token(jwt_util.claims())
        stubs.unary(Req(payload=b"ok"), timeout=TIMEOUT,
                    metadata=[("authorization", f"Bearer {token}")])
        for key, kid in ((weak, "weak"), (good, "off"), (good, "enc")):
            code, err = code_of(stubs.unary, Req(), timeout=TIMEOUT,
                                metadata=[("authorization",
                                           f"Bearer {key.token(jwt_util.claims(), kid=kid)}")])
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, kid)
            self.assertIn(f'unknown key id "{kid}"', err.details())
        log = gateway.output()
        for line in ('keys[0] (kid "weak"): RSA modulus has 1024 bits, at least 2048 required',
                     'keys[1] (kid "off"): EC point is not on curve P-256',
                     'keys[2] (kid "enc"): use "enc" is not "sig"'):
            self.assertEqual(log.count("jwt provider idp: JWKS key skipped, not used: " + line),
                             1, log)
        self.assertNotIn('kid "good"', log)

    def test_jwks_file_of_only_unusable_keys_is_refused_with_the_reasons(self):
        ws = harness.Workspace()
        self.addCleanup(ws.close)
        weak = jwt_util.RsaKey("weak", bits=1024)
        jwks_file = ws.write("jwks.json", jwt_util.jwks(weak).decode())
        config = ws.write("gw.yaml", gateway_config("127.0.0.1:1", f"""
auth:
  jwt_providers:
    - name: idp
      issuer: https://idp.test
      jwks_file: "{jwks_file}"
"""))
        result = subprocess.run([harness.GATEWAYD, f"--config={config}", "--check-config"],
                                capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('no usable signing keys (skipped keys[0] (kid "weak"): RSA modulus has '
                      '1024 bits, at least 2048 required)', result.stderr + result.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
