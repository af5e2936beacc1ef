"""TLS on both sides of gatewayd: the listener serving TLS, and backends called over TLS
with a CA, an overridden server name, and mutual TLS. Certificates are made by the test with
the openssl command line tool."""

import http.client
import json
import os
import ssl
import subprocess
import unittest

import grpc

import harness
from grpc_proxy_test import Req, Resp, SERVICE

TIMEOUT = 20


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for `names`, a client certificate, and a stranger CA."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=test {ca}", cwd=d)

    def leaf(name, subj, san):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)

    leaf("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    leaf("internal", "/CN=echo.internal", "DNS:echo.internal")
    leaf("client", "/CN=gateway", "URI:spiffe://test/gateway")


def config(backend_address, backend_tls="", listener_tls=""):
    return f"""
grpc_listener:
  address: "127.0.0.1:0"
{listener_tls}
descriptor_sets: ["{harness.ECHO_SET}"]
backends:
  - name: echo
    target: "ipv4:{backend_address}"
{backend_tls}
services: [{{name: gateway.test.v1.Echo, backend: echo}}]
runtime: {{shutdown_grace: 1s}}
"""


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.pki = cls.ws.dir
        make_pki(cls.pki)

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def path(self, name):
        return os.path.join(self.pki, name)

    def backend(self, cert="server", client_ca=None):
        argv = [harness.ECHO_BACKEND, "--listen=127.0.0.1:0",
                f"--tls_cert={self.path(cert + '.pem')}", f"--tls_key={self.path(cert + '.key')}"]
        if client_ca:
            argv.append(f"--tls_client_ca={self.path(client_ca)}")
        return self.ws.start(argv, "echo_backend")

    def call(self, gateway, credentials=None):
        channel = (grpc.secure_channel(gateway.address, credentials) if credentials
                   else grpc.insecure_channel(gateway.address))
        unary = channel.unary_unary(SERVICE + "Unary", request_serializer=Req.SerializeToString,
                                    response_deserializer=Resp.FromString)
        try:
            return unary(Req(payload=b"tls"), timeout=TIMEOUT)
        finally:
            channel.close()

    def test_backend_over_tls_with_ca(self):
        backend = self.backend()
        gw = self.ws.gatewayd(config(backend.address,
                                     f"    tls: {{ca_file: \"{self.path('ca.pem')}\"}}"))
        self.assertEqual(self.call(gw).payload, b"tls")

    def test_backend_with_unknown_ca_is_unavailable(self):
        backend = self.backend()
        gw = self.ws.gatewayd(config(backend.address,
                                     f"    tls: {{ca_file: \"{self.path('other-ca.pem')}\"}}"))
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_plaintext_to_a_tls_backend_is_unavailable(self):
        backend = self.backend()
        gw = self.ws.gatewayd(config(backend.address))
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_server_name_override(self):
        backend = self.backend(cert="internal")
        tls = (f"    tls: {{ca_file: \"{self.path('ca.pem')}\", "
               "server_name: echo.internal}")
        gw = self.ws.gatewayd(config(backend.address, tls))
        self.assertEqual(self.call(gw).payload, b"tls")
        # Without the override the certificate does not match 127.0.0.1.
        gw2 = self.ws.gatewayd(config(backend.address,
                                      f"    tls: {{ca_file: \"{self.path('ca.pem')}\"}}"),
                               name="gatewayd2")
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_mutual_tls_to_the_backend(self):
        backend = self.backend(client_ca="ca.pem")
        with_cert = (f"    tls: {{ca_file: \"{self.path('ca.pem')}\", "
                     f"cert_file: \"{self.path('client.pem')}\", "
                     f"key_file: \"{self.path('client.key')}\"}}")
        gw = self.ws.gatewayd(config(backend.address, with_cert))
        self.assertEqual(self.call(gw).payload, b"tls")
        without = f"    tls: {{ca_file: \"{self.path('ca.pem')}\"}}"
        gw2 = self.ws.gatewayd(config(backend.address, without), name="gatewayd2")
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_listener_serves_tls(self):
        backend = self.ws.echo_backend()
        listener = (f"  tls: {{cert_file: \"{self.path('server.pem')}\", "
                    f"key_file: \"{self.path('server.key')}\"}}")
        gw = self.ws.gatewayd(config(backend.address, listener_tls=listener))
        with open(self.path("ca.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.assertEqual(self.call(gw, creds).payload, b"tls")
        # A plaintext client cannot talk to the TLS listener.
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_client_certificate_identity_is_checked_by_auth_rules(self):
        backend = self.ws.echo_backend()
        listener = (f"  tls: {{cert_file: \"{self.path('server.pem')}\", "
                    f"key_file: \"{self.path('server.key')}\", "
                    f"client_ca_file: \"{self.path('ca.pem')}\"}}")
        rules = """
auth:
  rules:
    - {selectors: ["gateway.test.v1.Echo.Unary"], identities: ["spiffe://test/*"]}
    - {selectors: ["gateway.test.v1.Echo.Stats"], identities: ["spiffe://other/x"]}
"""
        gw = self.ws.gatewayd(config(backend.address, listener_tls=listener) + rules)
        with open(self.path("ca.pem"), "rb") as f:
            ca = f.read()
        with open(self.path("client.pem"), "rb") as f:
            cert = f.read()
        with open(self.path("client.key"), "rb") as f:
            key = f.read()
        with_cert = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                                 certificate_chain=cert)
        self.assertEqual(self.call(gw, with_cert).payload, b"tls")
        # Without a client certificate the handshake itself fails.
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(gw, grpc.ssl_channel_credentials(root_certificates=ca))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # A certificate whose identity the rule does not list: PERMISSION_DENIED.
        channel = grpc.secure_channel(gw.address, with_cert)
        stats = channel.unary_unary("/gateway.test.v1.Echo/Stats")
        with self.assertRaises(grpc.RpcError) as cm:
            stats(b"", timeout=TIMEOUT)
        channel.close()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn('client identity "spiffe://test/gateway" may not call', cm.exception.details())


    def test_http_listener_client_certificates_and_identity_rules(self):
        """Mutual TLS on the HTTP listener: HTTP/1.1 and HTTP/2 (ALPN) clients must present a
        certificate of the CA; its identity is what auth rules match, as on gRPC."""
        bookstore = harness.bookstore_backend(self.ws)
        gw = self.ws.gatewayd(f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener:
  address: "127.0.0.1:0"
  tls: {{cert_file: "{self.path('server.pem')}", key_file: "{self.path('server.key')}",
        client_ca_file: "{self.path('ca.pem')}"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
runtime: {{shutdown_grace: 1s}}
auth:
  rules:
    - {{selectors: ["bookstore.v1.Bookstore.ListShelves"], identities: ["spiffe://test/*"]}}
    - {{selectors: ["bookstore.v1.Bookstore.*"], identities: ["spiffe://other/x"]}}
""")
        host, port = harness.http_address(gw).rsplit(":", 1)

        def get(path, cert=True):
            ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
            if cert:
                ctx.load_cert_chain(self.path("client.pem"), self.path("client.key"))
            conn = http.client.HTTPSConnection("localhost", int(port), context=ctx,
                                               timeout=TIMEOUT)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read().decode()
            finally:
                conn.close()

        status, body = get("/v1/shelves")
        self.assertEqual(status, 200, body)
        self.assertIn("shelves", body)
        status, body = get("/v1/shelves/1")
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["message"], 'client identity "spiffe://test/gateway" '
                         'may not call /bookstore.v1.Bookstore/GetShelf')
        # Without a client certificate the handshake fails (TLS 1.3 reports it on first read).
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            get("/v1/shelves", cert=False)
        # HTTP/2 over TLS (ALPN h2) carries the identity too.
        def h2_get(path):
            out = subprocess.run(
                ["curl", "-sS", "--http2", "--max-time", "10", "--cacert", self.path("ca.pem"),
                 "--cert", self.path("client.pem"), "--key", self.path("client.key"),
                 "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}{path}"],
                capture_output=True, text=True, timeout=30)
            return out.stdout, out.stderr

        out, err = h2_get("/v1/shelves")
        self.assertEqual(out, "2 200", err)
        out, err = h2_get("/v1/shelves/1")
        self.assertEqual(out, "2 403", err)

    def test_http_listener_client_ca_file_must_be_readable(self):
        bookstore = harness.bookstore_backend(self.ws)
        config_path = self.ws.write("bad-ca.yaml", f"""
grpc_listener: {{address: "127.0.0.1:0"}}
http_listener:
  address: "127.0.0.1:0"
  tls: {{cert_file: "{self.path('server.pem')}", key_file: "{self.path('server.key')}",
        client_ca_file: "{self.path('missing-ca.pem')}"}}
descriptor_sets: ["{harness.BOOKSTORE_SET}"]
backends: [{{name: bookstore, target: "ipv4:{bookstore.address}"}}]
services: [{{name: bookstore.v1.Bookstore, backend: bookstore}}]
""")
        result = subprocess.run([harness.GATEWAYD, f"--config={config_path}"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("http_listener.tls.client_ca_file", result.stderr)
        self.assertIn("missing-ca.pem", result.stderr)

if __name__ == "__main__":
    unittest.main(verbosity=2)
