#include "auth/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "auth/jose_util.h"

namespace gateway::auth {

// Builds Jwk objects (has access to Jwk's private members).
class JwkBuilder {
 public:
  // Parses one JWK. Returns the key, or nullptr with *skip_reason set for a
  // key that is skipped, or an error for a malformed key.
  static absl::StatusOr<std::unique_ptr<const Jwk>> Build(
      const google::protobuf::Struct& jwk, const JwksOptions& options,
      std::string* skip_reason);
};

namespace {

constexpr int kMaxRsaBits = 8192;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Reads an optional string member. Returns nullopt when absent, an error when
// present but not a string.
absl::StatusOr<absl::optional<std::string>> OptionalString(
    const google::protobuf::Struct& obj, absl::string_view name) {
  auto it = obj.fields().find(std::string(name));
  if (it == obj.fields().end()) return absl::optional<std::string>();
  if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is not a string"));
  }
  return absl::optional<std::string>(it->second.string_value());
}

// Reads a required base64url member and decodes it.
absl::StatusOr<std::string> RequiredBytes(const google::protobuf::Struct& obj,
                                          absl::string_view name) {
  absl::StatusOr<absl::optional<std::string>> s = OptionalString(obj, name);
  if (!s.ok()) return s.status();
  if (!s->has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("missing \"", name, "\""));
  }
  absl::StatusOr<std::string> bytes = DecodeBase64Url(**s);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is not base64url: ", bytes.status().message()));
  }
  if (bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is empty"));
  }
  return bytes;
}

// Builds a public key of `type` ("RSA", "EC") from OSSL_PARAMs and checks it.
absl::StatusOr<PkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld,
                                 absl::string_view what) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a valid public key"));
  }
  PkeyPtr pkey(raw);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, " fails the public key check"));
  }
  return pkey;
}

absl::StatusOr<PkeyPtr> BuildRsa(const google::protobuf::Struct& jwk,
                                 const JwksOptions& options, int* bits) {
  absl::StatusOr<std::string> n = RequiredBytes(jwk, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = RequiredBytes(jwk, "e");
  if (!e.ok()) return e.status();
  std::unique_ptr<BIGNUM, BnFree> bn_n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), n->size(), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), e->size(), nullptr));
  if (bn_n == nullptr || bn_e == nullptr) return absl::InternalError("out of memory");
  const int n_bits = BN_num_bits(bn_n.get());
  if (n_bits < options.min_rsa_bits) {
    return absl::InvalidArgumentError(absl::StrCat("RSA modulus has ", n_bits,
                                                   " bits, at least ",
                                                   options.min_rsa_bits, " required"));
  }
  if (n_bits > kMaxRsaBits) {
    return absl::InvalidArgumentError(absl::StrCat("RSA modulus has ", n_bits,
                                                   " bits, at most ", kMaxRsaBits,
                                                   " supported"));
  }
  if (!BN_is_odd(bn_e.get()) || BN_num_bits(bn_e.get()) < 2 || BN_num_bits(bn_e.get()) > 64) {
    return absl::InvalidArgumentError("RSA exponent \"e\" must be odd, at least 3 and at most 64 bits");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return absl::InternalError("out of memory");
  }
  *bits = n_bits;
  return FromData("RSA", bld.get(), "RSA key");
}

struct Curve {
  absl::string_view jwk_name;
  const char* openssl_name;
  int field_bytes;
};
constexpr Curve kCurves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

absl::StatusOr<PkeyPtr> BuildEc(const google::protobuf::Struct& jwk, const Curve& curve) {
  absl::StatusOr<std::string> x = RequiredBytes(jwk, "x");
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = RequiredBytes(jwk, "y");
  if (!y.ok()) return y.status();
  if (static_cast<int>(x->size()) != curve.field_bytes ||
      static_cast<int>(y->size()) != curve.field_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"x\" and \"y\" must have ", curve.field_bytes, " bytes each for ", curve.jwk_name,
        ", got ", x->size(), " and ", y->size()));
  }
  std::string point = absl::StrCat("\x04", *x, *y);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       curve.openssl_name, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return absl::InternalError("out of memory");
  }
  absl::StatusOr<PkeyPtr> pkey = FromData("EC", bld.get(), "EC key");
  if (!pkey.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("EC point is not on curve ", curve.jwk_name));
  }
  return pkey;
}

std::string KeyContext(size_t index, absl::string_view kid) {
  std::string out = absl::StrCat("keys[", index, "]");
  if (!kid.empty()) absl::StrAppend(&out, " (kid ", QuoteForMessage(kid), ")");
  return out;
}

// Digest of a JWS algorithm; null for EdDSA.
const EVP_MD* Digest(Algorithm alg) {
  switch (HashSize(alg)) {
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    case 64: return EVP_sha512();
    default: return nullptr;
  }
}

absl::Status BadSignature() { return absl::UnauthenticatedError("bad signature"); }

}  // namespace

absl::StatusOr<std::unique_ptr<const Jwk>> JwkBuilder::Build(
    const google::protobuf::Struct& jwk, const JwksOptions& options,
    std::string* skip_reason) {
  auto kty = OptionalString(jwk, "kty");
  if (!kty.ok()) return kty.status();
  if (!kty->has_value()) return absl::InvalidArgumentError("missing \"kty\"");
  auto use = OptionalString(jwk, "use");
  if (!use.ok()) return use.status();
  if (use->has_value() && **use != "sig") {
    *skip_reason = absl::StrCat("use ", QuoteForMessage(**use), " is not \"sig\"");
    return nullptr;
  }
  auto alg_name = OptionalString(jwk, "alg");
  if (!alg_name.ok()) return alg_name.status();
  absl::optional<Algorithm> alg;
  if (alg_name->has_value()) {
    alg = ParseAlgorithm(**alg_name);
    if (!alg.has_value()) {
      *skip_reason = absl::StrCat("alg ", QuoteForMessage(**alg_name), " is not supported");
      return nullptr;
    }
  }
  auto kid = OptionalString(jwk, "kid");
  if (!kid.ok()) return kid.status();

  std::unique_ptr<Jwk> key(new Jwk());
  key->kid_ = kid->value_or("");
  key->alg_ = alg;
  const std::string& type = **kty;
  if (type == "RSA") {
    key->type_ = KeyType::kRsa;
    absl::StatusOr<PkeyPtr> pkey = BuildRsa(jwk, options, &key->bits_);
    if (!pkey.ok()) return pkey.status();
    key->pkey_ = pkey->release();
  } else if (type == "EC") {
    key->type_ = KeyType::kEc;
    auto crv = OptionalString(jwk, "crv");
    if (!crv.ok()) return crv.status();
    if (!crv->has_value()) return absl::InvalidArgumentError("missing \"crv\"");
    const Curve* curve = nullptr;
    for (const Curve& c : kCurves) {
      if (c.jwk_name == **crv) curve = &c;
    }
    if (curve == nullptr) {
      *skip_reason = absl::StrCat("EC curve ", QuoteForMessage(**crv), " is not supported");
      return nullptr;
    }
    absl::StatusOr<PkeyPtr> pkey = BuildEc(jwk, *curve);
    if (!pkey.ok()) return pkey.status();
    key->pkey_ = pkey->release();
    key->curve_ = std::string(curve->jwk_name);
    key->bits_ = curve->jwk_name == "P-521" ? 521 : curve->field_bytes * 8;
  } else if (type == "OKP") {
    key->type_ = KeyType::kOkp;
    auto crv = OptionalString(jwk, "crv");
    if (!crv.ok()) return crv.status();
    if (!crv->has_value()) return absl::InvalidArgumentError("missing \"crv\"");
    if (**crv != "Ed25519") {
      *skip_reason = absl::StrCat("OKP curve ", QuoteForMessage(**crv), " is not supported");
      return nullptr;
    }
    absl::StatusOr<std::string> x = RequiredBytes(jwk, "x");
    if (!x.ok()) return x.status();
    if (x->size() != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"x\" must have 32 bytes for Ed25519, got ", x->size()));
    }
    key->pkey_ = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()),
        x->size());
    if (key->pkey_ == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError("Ed25519 key is not valid");
    }
    key->curve_ = "Ed25519";
    key->bits_ = 256;
  } else if (type == "oct") {
    key->type_ = KeyType::kOct;
    absl::StatusOr<std::string> k = RequiredBytes(jwk, "k");
    if (!k.ok()) return k.status();
    if (k->size() < 32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "oct key \"k\" has ", k->size(), " bytes, at least 32 required"));
    }
    key->secret_ = std::move(*k);
    key->bits_ = static_cast<int>(key->secret_.size() * 8);
  } else {
    *skip_reason = absl::StrCat("kty ", QuoteForMessage(type), " is not supported");
    return nullptr;
  }
  if (alg.has_value()) {
    // The key must be able to verify its own declared algorithm.
    absl::Status usable = key->CheckUsableFor(*alg);
    if (!usable.ok()) return absl::InvalidArgumentError(usable.message());
  }
  return std::unique_ptr<const Jwk>(std::move(key));
}

Jwk::~Jwk() {
  EVP_PKEY_free(pkey_);
  if (!secret_.empty()) OPENSSL_cleanse(&secret_[0], secret_.size());
}

absl::Status Jwk::CheckUsableFor(Algorithm alg) const {
  const KeyType required = RequiredKeyType(alg);
  if (type_ != required) {
    return absl::UnauthenticatedError(
        absl::StrCat("algorithm not allowed for this key: ", AlgorithmName(alg), " needs a ",
                     KeyTypeName(required), " key, key ", QuoteForMessage(kid_), " is ",
                     KeyTypeName(type_)));
  }
  const absl::string_view curve = RequiredCurve(alg);
  if (!curve.empty() && curve != curve_) {
    return absl::UnauthenticatedError(
        absl::StrCat("algorithm not allowed for this key: ", AlgorithmName(alg), " needs curve ",
                     curve, ", key ", QuoteForMessage(kid_), " is on ", curve_));
  }
  if (alg_.has_value() && *alg_ != alg) {
    return absl::UnauthenticatedError(
        absl::StrCat("algorithm not allowed for this key: key ", QuoteForMessage(kid_),
                     " is for ", AlgorithmName(*alg_), ", not ", AlgorithmName(alg)));
  }
  if (type_ == KeyType::kOct && static_cast<int>(secret_.size()) < HashSize(alg)) {
    return absl::UnauthenticatedError(
        absl::StrCat("algorithm not allowed for this key: ", AlgorithmName(alg),
                     " needs a secret of at least ", HashSize(alg), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Jwk::Verify(Algorithm alg, absl::string_view signing_input,
                         absl::string_view signature) const {
  if (absl::Status s = CheckUsableFor(alg); !s.ok()) return s;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  const EVP_MD* md = Digest(alg);

  if (type_ == KeyType::kOct) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(md, secret_.data(), static_cast<int>(secret_.size()), data, signing_input.size(),
             mac, &mac_len) == nullptr) {
      ERR_clear_error();
      return absl::InternalError("HMAC failed");
    }
    if (signature.size() != mac_len || CRYPTO_memcmp(mac, sig, mac_len) != 0) {
      return BadSignature();
    }
    return absl::OkStatus();
  }

  std::string der;  // ECDSA: R || S converted to a DER ECDSA-Sig-Value
  if (type_ == KeyType::kEc) {
    const size_t half = static_cast<size_t>((bits_ + 7) / 8);
    if (signature.size() != 2 * half) {
      return absl::UnauthenticatedError(
          absl::StrCat("bad signature: ", AlgorithmName(alg), " signatures have ", 2 * half,
                       " bytes, got ", signature.size()));
    }
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> ecdsa(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(sig, half, nullptr);
    BIGNUM* s = BN_bin2bn(sig + half, half, nullptr);
    if (ecdsa == nullptr || r == nullptr || s == nullptr ||
        ECDSA_SIG_set0(ecdsa.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return absl::InternalError("out of memory");
    }
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(ecdsa.get(), &out);
    if (len <= 0) {
      ERR_clear_error();
      return absl::InternalError("ECDSA signature encoding failed");
    }
    der.assign(reinterpret_cast<const char*>(out), len);
    OPENSSL_free(out);
    sig = reinterpret_cast<const unsigned char*>(der.data());
    signature = der;
  }

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey_) != 1) {
    ERR_clear_error();
    return absl::InternalError("signature verification could not start");
  }
  if (alg == Algorithm::kPS256 || alg == Algorithm::kPS384 || alg == Algorithm::kPS512) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1) {
      ERR_clear_error();
      return absl::InternalError("RSA-PSS parameters could not be set");
    }
  }
  const int ok = EVP_DigestVerify(ctx.get(), sig, signature.size(), data, signing_input.size());
  if (ok != 1) {
    ERR_clear_error();
    return BadSignature();
  }
  return absl::OkStatus();
}

absl::Span<const Jwk* const> KeySet::FindByKid(absl::string_view kid) const {
  auto it = by_kid_.find(kid);
  if (it == by_kid_.end()) return {};
  return it->second;
}

absl::StatusOr<std::shared_ptr<const KeySet>> ParseJwks(absl::string_view json,
                                                        const JwksOptions& options) {
  if (json.size() > options.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JWKS document has ", json.size(), " bytes, at most ", options.max_bytes, " allowed"));
  }
  absl::StatusOr<google::protobuf::Struct> doc = ParseJsonObject(json, "JWKS document");
  if (!doc.ok()) return doc.status();
  auto it = doc->fields().find("keys");
  if (it == doc->fields().end()) {
    return absl::InvalidArgumentError("JWKS document has no \"keys\" member");
  }
  if (it->second.kind_case() != google::protobuf::Value::kListValue) {
    return absl::InvalidArgumentError("JWKS \"keys\" is not an array");
  }
  const auto& list = it->second.list_value().values();
  if (static_cast<size_t>(list.size()) > options.max_keys) {
    return absl::InvalidArgumentError(absl::StrCat("JWKS has ", list.size(),
                                                   " keys, at most ", options.max_keys,
                                                   " allowed"));
  }
  auto set = std::shared_ptr<KeySet>(new KeySet());
  for (int i = 0; i < list.size(); ++i) {
    // A key the gateway cannot use (malformed, too weak, off its curve, not for
    // signatures, of an unknown type) is skipped; the others stay usable.
    if (list[i].kind_case() != google::protobuf::Value::kStructValue) {
      set->skipped_.push_back(absl::StrCat("keys[", i, "]: not a JSON object"));
      continue;
    }
    const google::protobuf::Struct& jwk = list[i].struct_value();
    std::string kid;
    if (auto k = jwk.fields().find("kid");
        k != jwk.fields().end() && k->second.kind_case() == google::protobuf::Value::kStringValue) {
      kid = k->second.string_value();
    }
    std::string skip_reason;
    absl::StatusOr<std::unique_ptr<const Jwk>> key = JwkBuilder::Build(jwk, options, &skip_reason);
    if (!key.ok()) skip_reason = std::string(key.status().message());
    if (!key.ok() || *key == nullptr) {
      set->skipped_.push_back(absl::StrCat(KeyContext(i, kid), ": ", skip_reason));
      continue;
    }
    set->keys_.push_back(std::move(*key));
  }
  if (set->keys_.empty()) {
    std::string message = "JWKS document has no usable signing keys";
    if (!set->skipped_.empty()) {
      absl::StrAppend(&message, " (skipped ", absl::StrJoin(set->skipped_, "; "), ")");
    }
    return absl::InvalidArgumentError(message);
  }
  for (const auto& key : set->keys_) set->by_kid_[key->kid()].push_back(key.get());
  return std::shared_ptr<const KeySet>(std::move(set));
}

KeySetHolder::KeySetHolder(JwksOptions options) : options_(options) {}

absl::Status KeySetHolder::Replace(absl::string_view jwks_json) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(jwks_json.data()), jwks_json.size(), digest);
  std::string digest_str(reinterpret_cast<const char*>(digest), sizeof(digest));
  {
    absl::MutexLock lock(&mu_);
    if (keys_ != nullptr && digest_ == digest_str) return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> keys = ParseJwks(jwks_json, options_);
  if (!keys.ok()) return keys.status();
  absl::MutexLock lock(&mu_);
  keys_ = std::move(*keys);
  digest_ = std::move(digest_str);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

void KeySetHolder::Set(std::shared_ptr<const KeySet> keys) {
  absl::MutexLock lock(&mu_);
  keys_ = std::move(keys);
  digest_.clear();
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

bool KeySetHolder::TryBeginRefresh(absl::Time now, absl::Duration min_interval) {
  absl::MutexLock lock(&mu_);
  if (last_refresh_ != absl::InfinitePast() && now < last_refresh_ + min_interval) return false;
  last_refresh_ = now;
  return true;
}

KeySetHolder::Snapshot KeySetHolder::Current() const {
  absl::MutexLock lock(&mu_);
  return Snapshot{keys_, generation_.load(std::memory_order_acquire)};
}

}  // namespace gateway::auth
