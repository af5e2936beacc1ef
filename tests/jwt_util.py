"""Test-side JWT minting and a loopback HTTPS server for JWKS documents."""

import base64
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class RsaKey:
    def __init__(self, kid, bits=2048):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def jwk(self):
        pub = self.key.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                "n": _uint(pub.n), "e": _uint(pub.e)}

    def token(self, claims, kid=None):
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)


def jwks(*keys):
    return json.dumps({"keys": [k.jwk() for k in keys]}).encode()


def claims(sub="alice", iss="https://idp.test", aud="bookstore", ttl=300, **extra):
    now = int(time.time())
    c = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl}
    c.update(extra)
    return c


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def make_server_cert(directory):
    """A CA and a certificate for 127.0.0.1 signed by it; returns (ca.pem, cert, key)."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True,
                       timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "jwks-ca.key", "-out", "jwks-ca.pem", "-days", "2", "-subj", "/CN=jwks ca")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "jwks.key", "-out", "jwks.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "jwks.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "jwks.csr", "-CA", "jwks-ca.pem", "-CAkey", "jwks-ca.key",
        "-CAcreateserial", "-out", "jwks.pem", "-days", "2", "-extfile", "jwks.ext")
    return (os.path.join(directory, p) for p in ("jwks-ca.pem", "jwks.pem", "jwks.key"))


class JwksServer:
    """Serves one JWKS document over HTTPS on 127.0.0.1; counts the requests."""

    def __init__(self, directory, document):
        self.document = document
        self.requests = 0
        self.ca, cert, key = make_server_cert(directory)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                body = outer.document
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
