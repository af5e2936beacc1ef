#include "auth/test_util.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "auth/jose_util.h"

namespace gateway::auth {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test_util: %s failed\n", what);
  std::abort();
}

std::string BnParam(EVP_PKEY* pkey, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) Die(name);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(&out[0]), out.size());
  BN_free(bn);
  return out;
}

int FieldBytes(absl::string_view curve) {
  return curve == "P-256" ? 32 : curve == "P-384" ? 48 : 66;
}

const EVP_MD* Md(Algorithm alg) {
  switch (HashSize(alg)) {
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    case 64: return EVP_sha512();
    default: return nullptr;
  }
}

}  // namespace

TestKey TestKey::Rsa(int bits, std::string kid) {
  TestKey key;
  key.pkey_ = EVP_RSA_gen(bits);
  if (key.pkey_ == nullptr) Die("EVP_RSA_gen");
  key.kid_ = std::move(kid);
  return key;
}

TestKey TestKey::Ec(absl::string_view curve, std::string kid) {
  TestKey key;
  const char* name = curve == "P-256" ? "P-256" : curve == "P-384" ? "P-384" : "P-521";
  key.pkey_ = EVP_EC_gen(name);
  if (key.pkey_ == nullptr) Die("EVP_EC_gen");
  key.kid_ = std::move(kid);
  key.curve_ = std::string(curve);
  return key;
}

TestKey TestKey::Ed25519(std::string kid) {
  TestKey key;
  key.pkey_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key.pkey_ == nullptr) Die("EVP_PKEY_Q_keygen(ED25519)");
  key.kid_ = std::move(kid);
  key.curve_ = "Ed25519";
  return key;
}

TestKey TestKey::Hmac(std::string secret, std::string kid) {
  TestKey key;
  key.secret_ = std::move(secret);
  key.kid_ = std::move(kid);
  return key;
}

TestKey::TestKey(TestKey&& o) noexcept
    : pkey_(std::exchange(o.pkey_, nullptr)),
      kid_(std::move(o.kid_)),
      secret_(std::move(o.secret_)),
      curve_(std::move(o.curve_)) {}

TestKey& TestKey::operator=(TestKey&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(pkey_);
    pkey_ = std::exchange(o.pkey_, nullptr);
    kid_ = std::move(o.kid_);
    secret_ = std::move(o.secret_);
    curve_ = std::move(o.curve_);
  }
  return *this;
}

TestKey::~TestKey() { EVP_PKEY_free(pkey_); }

std::string TestKey::PublicJwk(absl::string_view extra_members) const {
  std::vector<std::string> members;
  if (pkey_ == nullptr) {
    members.push_back(R"("kty":"oct")");
    members.push_back(absl::StrCat(R"("k":")", EncodeBase64Url(secret_), "\""));
  } else if (curve_ == "Ed25519") {
    unsigned char raw[32];
    size_t len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey_, raw, &len) != 1) Die("get_raw_public_key");
    members.push_back(R"("kty":"OKP","crv":"Ed25519")");
    members.push_back(absl::StrCat(
        R"("x":")", EncodeBase64Url(absl::string_view(reinterpret_cast<char*>(raw), len)), "\""));
  } else if (!curve_.empty()) {
    const int n = FieldBytes(curve_);
    members.push_back(absl::StrCat(R"("kty":"EC","crv":")", curve_, "\""));
    members.push_back(absl::StrCat(
        R"("x":")", EncodeBase64Url(BnParam(pkey_, OSSL_PKEY_PARAM_EC_PUB_X, n)), "\""));
    members.push_back(absl::StrCat(
        R"("y":")", EncodeBase64Url(BnParam(pkey_, OSSL_PKEY_PARAM_EC_PUB_Y, n)), "\""));
  } else {
    members.push_back(R"("kty":"RSA")");
    members.push_back(absl::StrCat(
        R"("n":")", EncodeBase64Url(BnParam(pkey_, OSSL_PKEY_PARAM_RSA_N, 0)), "\""));
    members.push_back(absl::StrCat(
        R"("e":")", EncodeBase64Url(BnParam(pkey_, OSSL_PKEY_PARAM_RSA_E, 0)), "\""));
  }
  if (!kid_.empty()) members.push_back(absl::StrCat(R"("kid":")", kid_, "\""));
  if (!extra_members.empty()) members.push_back(std::string(extra_members));
  return absl::StrCat("{", absl::StrJoin(members, ","), "}");
}

std::string TestKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, pkey_) != 1) Die("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

std::string TestKey::PublicDer() const {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey_, &der);
  if (len <= 0) Die("i2d_PUBKEY");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

std::string TestKey::Sign(Algorithm alg, absl::string_view input, int pss_salt_length) const {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (pkey_ == nullptr) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(Md(alg), secret_.data(), secret_.size(), data, input.size(), mac, &len) == nullptr) {
      Die("HMAC");
    }
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx, &pctx, Md(alg), nullptr, pkey_) != 1) Die("EVP_DigestSignInit");
  if (alg == Algorithm::kPS256 || alg == Algorithm::kPS384 || alg == Algorithm::kPS512) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(
            pctx, pss_salt_length != 0 ? pss_salt_length : RSA_PSS_SALTLEN_DIGEST) != 1) {
      Die("PSS parameters");
    }
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx, nullptr, &len, data, input.size()) != 1) Die("EVP_DigestSign size");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(&sig[0]), &len, data,
                     input.size()) != 1) {
    Die("EVP_DigestSign");
  }
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!curve_.empty() && curve_ != "Ed25519") {
    // DER ECDSA-Sig-Value -> R || S.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, sig.size());
    if (ecdsa == nullptr) Die("d2i_ECDSA_SIG");
    const int n = FieldBytes(curve_);
    std::string raw(2 * n, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(&raw[0]), n);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(&raw[n]), n);
    ECDSA_SIG_free(ecdsa);
    return raw;
  }
  return sig;
}

std::string MakeJwks(const std::vector<std::string>& jwks) {
  return absl::StrCat(R"({"keys":[)", absl::StrJoin(jwks, ","), "]}");
}

std::string AssembleToken(absl::string_view header_json, absl::string_view payload_json,
                          absl::string_view signature) {
  return absl::StrCat(EncodeBase64Url(header_json), ".", EncodeBase64Url(payload_json), ".",
                      EncodeBase64Url(signature));
}

std::string MintToken(const TestKey& key, Algorithm alg, absl::string_view header_json,
                      absl::string_view payload_json) {
  const std::string input =
      absl::StrCat(EncodeBase64Url(header_json), ".", EncodeBase64Url(payload_json));
  return absl::StrCat(input, ".", EncodeBase64Url(key.Sign(alg, input)));
}

}  // namespace gateway::auth
