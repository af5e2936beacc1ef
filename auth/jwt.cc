#include "auth/jwt.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "auth/jose_util.h"

namespace gateway::auth {
namespace {

constexpr absl::string_view kUnknownKidPayload = "type.googleapis.com/gateway.auth.UnknownKeyId";

// The largest NumericDate accepted: 9999-12-31T23:59:59Z.
constexpr double kMaxNumericDate = 253402300799.0;

// A token without "kid" is tried against at most this many keys of its
// algorithm, bounding the signature checks one token can cause.
constexpr int kMaxKeysTriedWithoutKid = 4;

absl::Status Malformed(absl::string_view detail) {
  return absl::UnauthenticatedError(absl::StrCat("malformed token: ", detail));
}

absl::Status UnknownKey(std::string message) {
  absl::Status status = absl::UnauthenticatedError(message);
  status.SetPayload(kUnknownKidPayload, absl::Cord("1"));
  return status;
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

const google::protobuf::Value* FindField(const google::protobuf::Struct& obj,
                                         absl::string_view name) {
  auto it = obj.fields().find(std::string(name));
  return it == obj.fields().end() ? nullptr : &it->second;
}

// Reads an optional NumericDate claim into *out. Leaves *out when absent.
absl::Status ReadNumericDate(const google::protobuf::Struct& claims, absl::string_view name,
                             bool* present, absl::Time* out) {
  const google::protobuf::Value* v = FindField(claims, name);
  *present = v != nullptr;
  if (v == nullptr) return absl::OkStatus();
  if (v->kind_case() != google::protobuf::Value::kNumberValue) {
    return Malformed(absl::StrCat("claim \"", name, "\" is not a number"));
  }
  const double seconds = v->number_value();
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxNumericDate) {
    return Malformed(absl::StrCat("claim \"", name, "\" is out of range"));
  }
  *out = absl::UnixEpoch() + absl::Seconds(seconds);
  return absl::OkStatus();
}

// Reads an optional string claim; a present non-string value is malformed.
absl::Status ReadString(const google::protobuf::Struct& obj, absl::string_view name,
                        absl::string_view where, std::string* out) {
  const google::protobuf::Value* v = FindField(obj, name);
  if (v == nullptr) return absl::OkStatus();
  if (v->kind_case() != google::protobuf::Value::kStringValue) {
    return Malformed(absl::StrCat(where, " \"", name, "\" is not a string"));
  }
  *out = v->string_value();
  return absl::OkStatus();
}

bool IsToken68Char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

}  // namespace

JwtVerifier::JwtVerifier(const JwtProviderConfig& config, std::shared_ptr<KeySetHolder> keys,
                         Clock clock)
    : config_(config),
      keys_(std::move(keys)),
      clock_(std::move(clock)),
      cache_(TokenCache::Options{config.cache_entries, 16}) {}

absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifier::Create(
    const JwtProviderConfig& config, std::shared_ptr<KeySetHolder> keys, Clock clock) {
  if (config.issuer.empty()) {
    return absl::InvalidArgumentError("issuer must not be empty");
  }
  if (keys == nullptr) return absl::InvalidArgumentError("keys must not be null");
  if (config.clock_skew < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("clock_skew must not be negative");
  }
  if (config.max_token_bytes == 0) {
    return absl::InvalidArgumentError("max_token_bytes must be positive");
  }
  uint32_t mask = 0;
  if (config.allowed_algorithms.empty()) {
    for (Algorithm alg : AllAlgorithms()) {
      if (IsAsymmetric(alg)) mask |= 1u << static_cast<int>(alg);
    }
  }
  for (size_t i = 0; i < config.allowed_algorithms.size(); ++i) {
    absl::optional<Algorithm> alg = ParseAlgorithm(config.allowed_algorithms[i]);
    if (!alg.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowed_algorithms[", i, "]: unsupported algorithm ",
                       QuoteForMessage(config.allowed_algorithms[i])));
    }
    mask |= 1u << static_cast<int>(*alg);
  }
  if (clock == nullptr) clock = [] { return absl::Now(); };
  auto verifier = std::shared_ptr<JwtVerifier>(
      new JwtVerifier(config, std::move(keys), std::move(clock)));
  verifier->allowed_mask_ = mask;
  return std::shared_ptr<const JwtVerifier>(std::move(verifier));
}

absl::StatusOr<std::shared_ptr<const VerifiedJwt>> JwtVerifier::Verify(
    absl::string_view token) const {
  if (token.size() > config_.max_token_bytes) {
    return absl::UnauthenticatedError(absl::StrCat("token too large: ", token.size(),
                                                   " bytes, at most ",
                                                   config_.max_token_bytes, " allowed"));
  }
  const absl::Time now = clock_();
  const bool use_cache = config_.cache_entries > 0;
  TokenCache::Key key;
  if (use_cache) {
    key = TokenCache::KeyFor(token);
    if (auto hit = cache_.Lookup(key, keys_->generation(), now)) return hit;
  }
  const KeySetHolder::Snapshot snapshot = keys_->Current();
  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> result =
      VerifyUncached(token, snapshot.keys.get(), now);
  if (use_cache && result.ok() && (*result)->expiry != absl::InfiniteFuture()) {
    cache_.Insert(key, snapshot.generation, (*result)->expiry + config_.clock_skew, *result);
  }
  return result;
}

absl::StatusOr<std::shared_ptr<const VerifiedJwt>> JwtVerifier::VerifyUncached(
    absl::string_view token, const KeySet* keys, absl::Time now) const {
  // Split into exactly three segments.
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == absl::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == absl::string_view::npos) {
    return Malformed("expected three base64url segments separated by '.'");
  }
  if (token.find('.', dot2 + 1) != absl::string_view::npos) {
    return Malformed("more than three segments (encrypted JWE tokens are not supported)");
  }
  const absl::string_view header_b64 = token.substr(0, dot1);
  const absl::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const absl::string_view signature_b64 = token.substr(dot2 + 1);
  const absl::string_view signing_input = token.substr(0, dot2);

  auto jwt = std::make_shared<VerifiedJwt>();

  // Header.
  absl::StatusOr<std::string> header_json = DecodeBase64Url(header_b64);
  if (!header_json.ok()) return Malformed(absl::StrCat("header: ", header_json.status().message()));
  absl::StatusOr<google::protobuf::Struct> header = ParseJsonObject(*header_json, "header");
  if (!header.ok()) return Malformed(header.status().message());
  const google::protobuf::Value* alg_value = FindField(*header, "alg");
  if (alg_value == nullptr) return Malformed("header has no \"alg\"");
  if (alg_value->kind_case() != google::protobuf::Value::kStringValue) {
    return Malformed("header \"alg\" is not a string");
  }
  const std::string& alg_name = alg_value->string_value();
  if (absl::EqualsIgnoreCase(alg_name, "none")) {
    return absl::UnauthenticatedError(
        "algorithm not allowed: \"none\" (unsigned tokens are never accepted)");
  }
  absl::optional<Algorithm> alg = ParseAlgorithm(alg_name);
  if (!alg.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("algorithm not allowed: unsupported algorithm ", QuoteForMessage(alg_name)));
  }
  if ((allowed_mask_ & (1u << static_cast<int>(*alg))) == 0) {
    return absl::UnauthenticatedError(absl::StrCat(
        "algorithm not allowed: ", AlgorithmName(*alg), " is not accepted for issuer ",
        QuoteForMessage(config_.issuer)));
  }
  if (FindField(*header, "crit") != nullptr) {
    return absl::UnauthenticatedError(
        "malformed token: header has \"crit\", and no critical extension is supported");
  }
  if (const google::protobuf::Value* b64 = FindField(*header, "b64"); b64 != nullptr) {
    if (b64->kind_case() != google::protobuf::Value::kBoolValue || !b64->bool_value()) {
      return Malformed("unencoded payloads (\"b64\" other than true) are not supported");
    }
  }
  std::string kid;
  const bool has_kid = FindField(*header, "kid") != nullptr;
  if (absl::Status s = ReadString(*header, "kid", "header", &kid); !s.ok()) return s;

  // Payload and signature bytes.
  absl::StatusOr<std::string> payload_json = DecodeBase64Url(payload_b64);
  if (!payload_json.ok()) {
    return Malformed(absl::StrCat("payload: ", payload_json.status().message()));
  }
  absl::StatusOr<std::string> signature = DecodeBase64Url(signature_b64);
  if (!signature.ok()) {
    return Malformed(absl::StrCat("signature: ", signature.status().message()));
  }
  if (signature->empty()) return Malformed("empty signature");

  // Key selection and signature.
  if (keys == nullptr) return UnknownKey("no keys loaded");
  absl::Status last_error;
  bool verified = false;
  if (has_kid) {
    absl::Span<const Jwk* const> candidates = keys->FindByKid(kid);
    if (candidates.empty()) {
      return UnknownKey(absl::StrCat("unknown key id ", QuoteForMessage(kid)));
    }
    for (const Jwk* key : candidates) {
      last_error = key->Verify(*alg, signing_input, *signature);
      if (last_error.ok()) {
        verified = true;
        break;
      }
    }
  } else {
    int tried = 0;
    for (const auto& key : keys->keys()) {
      if (!key->CheckUsableFor(*alg).ok()) continue;
      if (++tried > kMaxKeysTriedWithoutKid) break;
      last_error = key->Verify(*alg, signing_input, *signature);
      if (last_error.ok()) {
        verified = true;
        break;
      }
    }
    if (tried == 0) {
      return UnknownKey(absl::StrCat("unknown key id: the token has no \"kid\" and no key verifies ",
                                     AlgorithmName(*alg)));
    }
  }
  if (!verified) return last_error;

  // Claims, only once the signature holds.
  absl::StatusOr<google::protobuf::Struct> claims = ParseJsonObject(*payload_json, "payload");
  if (!claims.ok()) return Malformed(claims.status().message());

  if (absl::Status s = ReadString(*claims, "iss", "claim", &jwt->issuer); !s.ok()) return s;
  if (FindField(*claims, "iss") == nullptr) {
    return absl::UnauthenticatedError("wrong issuer: the token has no \"iss\" claim");
  }
  if (jwt->issuer != config_.issuer) {
    return absl::UnauthenticatedError(
        absl::StrCat("wrong issuer: ", QuoteForMessage(jwt->issuer), " is not ",
                     QuoteForMessage(config_.issuer)));
  }

  if (const google::protobuf::Value* aud = FindField(*claims, "aud"); aud != nullptr) {
    if (aud->kind_case() == google::protobuf::Value::kStringValue) {
      jwt->audiences.push_back(aud->string_value());
    } else if (aud->kind_case() == google::protobuf::Value::kListValue) {
      for (const google::protobuf::Value& v : aud->list_value().values()) {
        if (v.kind_case() != google::protobuf::Value::kStringValue) {
          return Malformed("claim \"aud\" is not a string or an array of strings");
        }
        jwt->audiences.push_back(v.string_value());
      }
    } else {
      return Malformed("claim \"aud\" is not a string or an array of strings");
    }
  }
  if (!config_.audiences.empty()) {
    if (jwt->audiences.empty()) {
      return absl::UnauthenticatedError("wrong audience: the token has no \"aud\" claim");
    }
    bool match = false;
    for (const std::string& a : jwt->audiences) {
      for (const std::string& accepted : config_.audiences) {
        if (a == accepted) match = true;
      }
    }
    if (!match) {
      return absl::UnauthenticatedError(
          "wrong audience: none of the token's audiences is accepted by this provider");
    }
  }

  bool has_exp = false, has_nbf = false, has_iat = false;
  if (absl::Status s = ReadNumericDate(*claims, "exp", &has_exp, &jwt->expiry); !s.ok()) return s;
  if (absl::Status s = ReadNumericDate(*claims, "nbf", &has_nbf, &jwt->not_before); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadNumericDate(*claims, "iat", &has_iat, &jwt->issued_at); !s.ok()) {
    return s;
  }
  if (!has_exp && config_.require_expiration) {
    return Malformed("the token has no \"exp\" claim");
  }
  const absl::Duration skew = config_.clock_skew;
  if (has_exp && now >= jwt->expiry + skew) {
    return absl::UnauthenticatedError(absl::StrCat("token expired at ", FormatUtc(jwt->expiry)));
  }
  if (has_nbf && now + skew < jwt->not_before) {
    return absl::UnauthenticatedError(
        absl::StrCat("token not yet valid: \"nbf\" is ", FormatUtc(jwt->not_before)));
  }
  if (has_iat && now + skew < jwt->issued_at) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token not yet valid: issued in the future (\"iat\" is ", FormatUtc(jwt->issued_at),
        ")"));
  }
  if (absl::Status s = ReadString(*claims, "sub", "claim", &jwt->subject); !s.ok()) return s;
  if (const google::protobuf::Value* id = FindField(*claims, config_.caller_id_claim);
      id != nullptr && id->kind_case() == google::protobuf::Value::kStringValue) {
    jwt->caller_id = id->string_value();
  }

  jwt->algorithm = *alg;
  jwt->key_id = std::move(kid);
  jwt->header_json = std::move(*header_json);
  jwt->payload_json = std::move(*payload_json);
  jwt->payload_base64url = std::string(payload_b64);
  jwt->header = std::move(*header);
  jwt->claims = std::move(*claims);
  return std::shared_ptr<const VerifiedJwt>(std::move(jwt));
}

bool IsUnknownKeyId(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnauthenticated &&
         status.GetPayload(kUnknownKidPayload).has_value();
}

absl::StatusOr<absl::string_view> ExtractBearerToken(absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return absl::UnauthenticatedError("authorization header is not a Bearer token");
  }
  absl::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return absl::UnauthenticatedError("authorization header has an empty token");
  for (char c : token) {
    if (!IsToken68Char(c)) {
      return absl::UnauthenticatedError("authorization header token has invalid characters");
    }
  }
  return token;
}

}  // namespace gateway::auth
