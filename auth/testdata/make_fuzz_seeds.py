#!/usr/bin/env python3
"""Writes the seed corpora of auth/jwt_fuzz and auth/jwks_fuzz.

The keys are derived from fixed values, so the tokens verify against the JWKS
that jwt_fuzz.cc embeds (printed by --print-jwks). Needs python3-cryptography.

Usage: auth/testdata/make_fuzz_seeds.py [--print-jwks]
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = b"fuzz-secret-0123456789abcdef-0123456789abcdef"
EC_PRIVATE = ec.derive_private_key(0x1F2E3D4C5B6A79880102030405060708090A0B0C0D0E0F101112131415161718,
                                   ec.SECP256R1())
ED_PRIVATE = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NOW = 1800000000


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks():
    nums = EC_PRIVATE.public_key().public_numbers()
    ed_raw = ED_PRIVATE.public_key().public_bytes_raw()
    return {"keys": [
        {"kty": "oct", "kid": "hs", "k": b64(SECRET)},
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(nums.x.to_bytes(32, "big")),
         "y": b64(nums.y.to_bytes(32, "big"))},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed_raw)},
    ]}


def token(header, payload, alg):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(payload if isinstance(payload, bytes) else
            json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{h}.{p}".encode()
    if alg.startswith("HS"):
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        sig = hmac.new(SECRET, signing_input, digest).digest()
    elif alg == "ES256":
        der = EC_PRIVATE.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = ED_PRIVATE.sign(signing_input)
    else:
        sig = b"\x00" * 8
    return f"{h}.{p}.{b64(sig)}"


def claims(**extra):
    c = {"iss": "https://issuer.example", "aud": "api", "sub": "user-1",
         "exp": NOW + 3600, "iat": NOW, "scope": "read write"}
    c.update(extra)
    return c


def write(target, name, data):
    d = os.path.join(HERE, "fuzz", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    if "--print-jwks" in sys.argv:
        print(json.dumps(jwks(), separators=(",", ":")))
        return
    seeds = {
        "hs256_valid": token({"alg": "HS256", "kid": "hs"}, claims(), "HS256"),
        "hs512_valid": token({"alg": "HS512", "kid": "hs", "typ": "JWT"}, claims(), "HS512"),
        "es256_valid": token({"alg": "ES256", "kid": "ec"}, claims(), "ES256"),
        "eddsa_valid": token({"alg": "EdDSA", "kid": "ed"}, claims(), "EdDSA"),
        "no_kid": token({"alg": "HS256"}, claims(aud=["x", "api"], nbf=NOW - 5), "HS256"),
        "expired": token({"alg": "HS256", "kid": "hs"}, claims(exp=NOW - 3600), "HS256"),
        "payload_array": token({"alg": "HS256", "kid": "hs"}, b"[1,2,3]", "HS256"),
        "exp_string": token({"alg": "HS256", "kid": "hs"}, claims(exp="soon"), "HS256"),
        "nested_claims": token({"alg": "HS256", "kid": "hs"},
                               claims(realm={"roles": ["a", "b"]}, scp=["x"]), "HS256"),
        "alg_none": token({"alg": "none"}, claims(), "none"),
        "crit": token({"alg": "HS256", "kid": "hs", "crit": ["b64"], "b64": False}, claims(),
                      "HS256"),
        "unknown_kid": token({"alg": "ES256", "kid": "other"}, claims(), "ES256"),
        "bearer": "Bearer " + token({"alg": "HS256", "kid": "hs"}, claims(), "HS256"),
        "garbage": "a.b.c",
    }
    for name, data in seeds.items():
        write("jwt_fuzz", name, data)

    rsa_public = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    documents = {
        "fixed": jwks(),
        "rsa": {"keys": [{"kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig",
                          "n": b64(rsa_public.n.to_bytes(256, "big")),
                          "e": b64(rsa_public.e.to_bytes(3, "big"))}]},
        "ec_curves": {"keys": [
            {"kty": "EC", "crv": crv, "x": b64(n.x.to_bytes(size, "big")),
             "y": b64(n.y.to_bytes(size, "big"))}
            for crv, curve, size in (("P-384", ec.SECP384R1(), 48), ("P-521", ec.SECP521R1(), 66))
            for n in [ec.generate_private_key(curve).public_key().public_numbers()]]},
        "skipped": {"keys": [{"kty": "OKP", "crv": "X25519", "x": b64(bytes(32))},
                             {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
                             {"kty": "oct", "k": b64(SECRET), "alg": "HS384"}]},
    }
    for name, doc in documents.items():
        write("jwks_fuzz", name, json.dumps(doc, separators=(",", ":")))
    write("jwks_fuzz", "off_curve", json.dumps({"keys": [
        {"kty": "EC", "crv": "P-256", "x": b64(bytes(31) + b"\x01"), "y": b64(bytes(31) + b"\x02")}]}))


if __name__ == "__main__":
    main()
