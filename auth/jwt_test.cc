#include "auth/jwt.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <openssl/rsa.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "auth/jose_util.h"
#include "auth/jwt_requirement.h"
#include "auth/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kIssuer = "https://issuer.example";
constexpr int64_t kNow = 1800000000;

// Keys generated once for the whole test binary.
struct Keys {
  TestKey rsa = TestKey::Rsa(2048, "rsa");
  TestKey ec256 = TestKey::Ec("P-256", "ec256");
  TestKey ec384 = TestKey::Ec("P-384", "ec384");
  TestKey ec521 = TestKey::Ec("P-521", "ec521");
  TestKey ed = TestKey::Ed25519("ed");
  TestKey hs = TestKey::Hmac(std::string(64, 'k'), "hs");

  std::string Jwks() const {
    return MakeJwks({rsa.PublicJwk(), ec256.PublicJwk(), ec384.PublicJwk(), ec521.PublicJwk(),
                     ed.PublicJwk(), hs.PublicJwk()});
  }
};

const Keys& GetKeys() {
  static const Keys* const keys = new Keys();
  return *keys;
}

std::string Claims(absl::string_view extra = "") {
  return absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"api","sub":"user-1","exp":)",
                      kNow + 3600, R"(,"iat":)", kNow, extra, "}");
}

std::string Header(Algorithm alg, absl::string_view kid, absl::string_view extra = "") {
  return absl::StrCat(R"({"alg":")", AlgorithmName(alg), R"(","kid":")", kid, "\"", extra,
                      "}");
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    holder_ = std::make_shared<KeySetHolder>();
    ASSERT_TRUE(holder_->Replace(GetKeys().Jwks()).ok());
    config_.issuer = std::string(kIssuer);
    config_.audiences = {"api", "other"};
    for (Algorithm alg : AllAlgorithms()) {
      config_.allowed_algorithms.push_back(std::string(AlgorithmName(alg)));
    }
    config_.clock_skew = absl::Seconds(60);
    Rebuild();
  }

  void Rebuild() {
    auto verifier = JwtVerifier::Create(config_, holder_, [this] { return now_; });
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *verifier;
  }

  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> Verify(absl::string_view token) {
    return verifier_->Verify(token);
  }

  // Expects UNAUTHENTICATED with a message starting with `prefix`.
  void ExpectRejected(absl::string_view token, absl::string_view prefix) {
    auto result = Verify(token);
    ASSERT_FALSE(result.ok()) << "accepted: " << token;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(result.status().message()), StartsWith(std::string(prefix)));
  }

  const Keys& keys_ = GetKeys();
  absl::Time now_ = absl::FromUnixSeconds(kNow);
  std::shared_ptr<KeySetHolder> holder_;
  JwtProviderConfig config_;
  std::shared_ptr<const JwtVerifier> verifier_;
};

// ---------------------------------------------------------------------------
// Success paths, one per algorithm.

class JwtAlgorithmTest : public JwtVerifierTest,
                         public ::testing::WithParamInterface<Algorithm> {};

const TestKey& KeyFor(Algorithm alg) {
  const Keys& k = GetKeys();
  switch (RequiredKeyType(alg)) {
    case KeyType::kRsa: return k.rsa;
    case KeyType::kOkp: return k.ed;
    case KeyType::kOct: return k.hs;
    case KeyType::kEc:
      return RequiredCurve(alg) == "P-256" ? k.ec256
             : RequiredCurve(alg) == "P-384" ? k.ec384
                                             : k.ec521;
  }
  return k.rsa;
}

TEST_P(JwtAlgorithmTest, VerifiesValidToken) {
  const Algorithm alg = GetParam();
  const TestKey& key = KeyFor(alg);
  const std::string token = MintToken(key, alg, Header(alg, key.kid()), Claims());
  auto jwt = Verify(token);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ((*jwt)->algorithm, alg);
  EXPECT_EQ((*jwt)->key_id, key.kid());
  EXPECT_EQ((*jwt)->subject, "user-1");
  EXPECT_EQ((*jwt)->caller_id, "user-1");
  EXPECT_EQ((*jwt)->issuer, kIssuer);
  EXPECT_EQ((*jwt)->expiry, absl::FromUnixSeconds(kNow + 3600));
}

TEST_P(JwtAlgorithmTest, RejectsOneFlippedSignatureBit) {
  const Algorithm alg = GetParam();
  const TestKey& key = KeyFor(alg);
  const std::string header = Header(alg, key.kid());
  const std::string input =
      absl::StrCat(EncodeBase64Url(header), ".", EncodeBase64Url(Claims()));
  std::string sig = key.Sign(alg, input);
  sig[sig.size() / 2] ^= 0x01;
  ExpectRejected(absl::StrCat(input, ".", EncodeBase64Url(sig)), "bad signature");
}

TEST_P(JwtAlgorithmTest, RejectsModifiedPayload) {
  const Algorithm alg = GetParam();
  const TestKey& key = KeyFor(alg);
  const std::string header = Header(alg, key.kid());
  const std::string input =
      absl::StrCat(EncodeBase64Url(header), ".", EncodeBase64Url(Claims()));
  const std::string sig = key.Sign(alg, input);
  const std::string forged = absl::StrCat(EncodeBase64Url(header), ".",
                                          EncodeBase64Url(Claims(R"(,"admin":true)")), ".",
                                          EncodeBase64Url(sig));
  ExpectRejected(forged, "bad signature");
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, JwtAlgorithmTest,
                         ::testing::ValuesIn(AllAlgorithms()),
                         [](const ::testing::TestParamInfo<Algorithm>& info) {
                           return std::string(AlgorithmName(info.param));
                         });

// ---------------------------------------------------------------------------
// Verified token contents.

TEST_F(JwtVerifierTest, ExposesPayloadBytesClaimsAndAudiences) {
  const std::string payload = absl::StrCat(
      R"({"iss":")", kIssuer, R"(","aud":["x","api"],"sub":"u","tenant":"acme","exp":)",
      kNow + 10, R"(,"nbf":)", kNow - 10, "}");
  const std::string token =
      MintToken(keys_.ec256, Algorithm::kES256, Header(Algorithm::kES256, "ec256"), payload);
  auto jwt = Verify(token);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ((*jwt)->payload_json, payload);
  EXPECT_EQ((*jwt)->payload_base64url, EncodeBase64Url(payload));
  EXPECT_THAT((*jwt)->audiences, ::testing::ElementsAre("x", "api"));
  EXPECT_EQ((*jwt)->claims.fields().at("tenant").string_value(), "acme");
  EXPECT_EQ((*jwt)->header.fields().at("kid").string_value(), "ec256");
  EXPECT_EQ((*jwt)->not_before, absl::FromUnixSeconds(kNow - 10));
}

TEST_F(JwtVerifierTest, CallerIdComesFromConfiguredClaim) {
  config_.caller_id_claim = "client_id";
  Rebuild();
  const std::string token = MintToken(keys_.ed, Algorithm::kEdDSA,
                                      Header(Algorithm::kEdDSA, "ed"),
                                      Claims(R"(,"client_id":"svc-7")"));
  auto jwt = Verify(token);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ((*jwt)->caller_id, "svc-7");
}

TEST_F(JwtVerifierTest, TokenWithoutKidIsVerifiedByAKeyOfItsAlgorithm) {
  const std::string token = MintToken(keys_.ec384, Algorithm::kES384,
                                      R"({"alg":"ES384","typ":"JWT"})", Claims());
  auto jwt = Verify(token);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ((*jwt)->key_id, "");
}

TEST_F(JwtVerifierTest, AudienceNotCheckedWhenNoneConfigured) {
  config_.audiences.clear();
  Rebuild();
  const std::string payload =
      absl::StrCat(R"({"iss":")", kIssuer, R"(","exp":)", kNow + 60, "}");
  EXPECT_TRUE(
      Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload))
          .ok());
}

TEST_F(JwtVerifierTest, AcceptsExpiryWithinClockSkew) {
  now_ = absl::FromUnixSeconds(kNow + 3600 + 30);
  EXPECT_TRUE(
      Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims()))
          .ok());
}

TEST_F(JwtVerifierTest, TokenWithoutExpAcceptedWhenNotRequired) {
  config_.require_expiration = false;
  Rebuild();
  const std::string payload = absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"api"})");
  auto jwt = Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                              payload));
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ((*jwt)->expiry, absl::InfiniteFuture());
}

// ---------------------------------------------------------------------------
// Attack catalogue.

TEST_F(JwtVerifierTest, RejectsAlgNoneInEverySpelling) {
  for (const char* none : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = absl::StrCat(R"({"alg":")", none, R"(","kid":"rsa"})");
    const std::string token =
        absl::StrCat(EncodeBase64Url(header), ".", EncodeBase64Url(Claims()), ".");
    ExpectRejected(token, "algorithm not allowed: \"none\"");
    // Also with a non-empty signature segment.
    ExpectRejected(absl::StrCat(token, "AAAA"), "algorithm not allowed: \"none\"");
  }
}

TEST_F(JwtVerifierTest, RejectsHs256SignedWithRsaPublicKeyPem) {
  const TestKey confused = TestKey::Hmac(keys_.rsa.PublicPem(), "rsa");
  ExpectRejected(
      MintToken(confused, Algorithm::kHS256, Header(Algorithm::kHS256, "rsa"), Claims()),
      "algorithm not allowed for this key: HS256 needs a oct key, key \"rsa\" is RSA");
}

TEST_F(JwtVerifierTest, RejectsHs256SignedWithRsaPublicKeyDer) {
  const TestKey confused = TestKey::Hmac(keys_.rsa.PublicDer(), "rsa");
  ExpectRejected(
      MintToken(confused, Algorithm::kHS256, Header(Algorithm::kHS256, "rsa"), Claims()),
      "algorithm not allowed for this key");
}

TEST_F(JwtVerifierTest, RejectsHs256SignedWithEcPublicKeyWithoutKid) {
  // Without a kid only oct keys are tried, and the EC key bytes are not one.
  const TestKey confused = TestKey::Hmac(keys_.ec256.PublicDer(), "");
  ExpectRejected(MintToken(confused, Algorithm::kHS256, R"({"alg":"HS256"})", Claims()),
                 "bad signature");
}

TEST_F(JwtVerifierTest, RejectsAlgorithmNotAllowedByProvider) {
  config_.allowed_algorithms = {"RS256"};
  Rebuild();
  ExpectRejected(
      MintToken(keys_.hs, Algorithm::kHS256, Header(Algorithm::kHS256, "hs"), Claims()),
      "algorithm not allowed: HS256 is not accepted for issuer");
}

TEST_F(JwtVerifierTest, DefaultAlgorithmsExcludeHmac) {
  config_.allowed_algorithms.clear();
  Rebuild();
  ExpectRejected(
      MintToken(keys_.hs, Algorithm::kHS256, Header(Algorithm::kHS256, "hs"), Claims()),
      "algorithm not allowed: HS256");
  EXPECT_TRUE(Verify(MintToken(keys_.rsa, Algorithm::kPS256, Header(Algorithm::kPS256, "rsa"),
                               Claims()))
                  .ok());
}

TEST_F(JwtVerifierTest, RejectsUnsupportedAlgorithm) {
  const std::string token = AssembleToken(R"({"alg":"HS1","kid":"hs"})", Claims(), "sig");
  ExpectRejected(token, "algorithm not allowed: unsupported algorithm \"HS1\"");
}

TEST_F(JwtVerifierTest, RejectsUnknownKidAndSignalsRefresh) {
  const TestKey stranger = TestKey::Ec("P-256", "nope");
  auto result = Verify(
      MintToken(stranger, Algorithm::kES256, Header(Algorithm::kES256, "nope"), Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(result.status().message(), "unknown key id \"nope\"");
  EXPECT_TRUE(IsUnknownKeyId(result.status()));
}

TEST_F(JwtVerifierTest, BadSignatureIsNotAnUnknownKid) {
  const TestKey stranger = TestKey::Ec("P-256", "ec256");
  auto result = Verify(
      MintToken(stranger, Algorithm::kES256, Header(Algorithm::kES256, "ec256"), Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "bad signature");
  EXPECT_FALSE(IsUnknownKeyId(result.status()));
}

TEST_F(JwtVerifierTest, NoKeysLoadedSignalsRefresh) {
  holder_ = std::make_shared<KeySetHolder>();
  Rebuild();
  auto result =
      Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "no keys loaded");
  EXPECT_TRUE(IsUnknownKeyId(result.status()));
}

TEST_F(JwtVerifierTest, IgnoresKeyEmbeddedInHeader) {
  const TestKey attacker = TestKey::Ec("P-256", "ec256");
  const std::string header = absl::StrCat(R"({"alg":"ES256","kid":"ec256","jwk":)",
                                          attacker.PublicJwk(), "}");
  ExpectRejected(MintToken(attacker, Algorithm::kES256, header, Claims()), "bad signature");
}

TEST_F(JwtVerifierTest, RejectsExpiredToken) {
  now_ = absl::FromUnixSeconds(kNow + 3600 + 61);
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims()),
      "token expired at 2027-01-15T09:00:00+00:00");
}

TEST_F(JwtVerifierTest, RejectsTokenBeforeNbf) {
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(absl::StrCat(R"(,"nbf":)", kNow + 120))),
                 "token not yet valid: \"nbf\" is");
  // Within the skew it is accepted.
  EXPECT_TRUE(Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                               Claims(absl::StrCat(R"(,"nbf":)", kNow + 30))))
                  .ok());
}

TEST_F(JwtVerifierTest, RejectsTokenIssuedInTheFutureBeyondSkew) {
  const std::string payload = absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"api","exp":)",
                                           kNow + 3600, R"(,"iat":)", kNow + 600, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "token not yet valid: issued in the future");
}

TEST_F(JwtVerifierTest, RejectsWrongIssuer) {
  const std::string payload = absl::StrCat(R"({"iss":"https://evil.example","aud":"api","exp":)",
                                           kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "wrong issuer: \"https://evil.example\" is not \"https://issuer.example\"");
}

TEST_F(JwtVerifierTest, RejectsMissingIssuer) {
  const std::string payload = absl::StrCat(R"({"aud":"api","exp":)", kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "wrong issuer: the token has no \"iss\" claim");
}

TEST_F(JwtVerifierTest, RejectsWrongAudienceString) {
  const std::string payload =
      absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"elsewhere","exp":)", kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "wrong audience: none of the token's audiences is accepted");
}

TEST_F(JwtVerifierTest, RejectsWrongAudienceArray) {
  const std::string payload = absl::StrCat(R"({"iss":")", kIssuer,
                                           R"(","aud":["a","b"],"exp":)", kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "wrong audience: none of the token's audiences is accepted");
}

TEST_F(JwtVerifierTest, RejectsMissingAudience) {
  const std::string payload = absl::StrCat(R"({"iss":")", kIssuer, R"(","exp":)", kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "wrong audience: the token has no \"aud\" claim");
}

TEST_F(JwtVerifierTest, RejectsAudienceOfWrongType) {
  const std::string payload =
      absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":["api",7],"exp":)", kNow + 60, "}");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "malformed token: claim \"aud\" is not a string or an array of strings");
}

TEST_F(JwtVerifierTest, RejectsTruncatedTokens) {
  const std::string token =
      MintToken(keys_.rsa, Algorithm::kRS256, Header(Algorithm::kRS256, "rsa"), Claims());
  // A shorter signature, cleanly encoded.
  const std::string header = Header(Algorithm::kRS256, "rsa");
  const std::string sig = *DecodeBase64Url(token.substr(token.rfind('.') + 1));
  ASSERT_EQ(sig.size(), 256u);  // 342 base64url characters
  ExpectRejected(AssembleToken(header, Claims(), sig.substr(0, 255)), "bad signature");
  // 341 characters cannot be base64url.
  ExpectRejected(token.substr(0, token.size() - 1),
                 "malformed token: signature: invalid base64url length 341");
  // "AB" would decode to one byte only by ignoring set bits.
  ExpectRejected(absl::StrCat(token.substr(0, token.rfind('.') + 1), "AB"),
                 "malformed token: signature: non-canonical base64url");
  ExpectRejected(token.substr(0, token.rfind('.')), "malformed token: expected three");
  ExpectRejected(token.substr(0, token.find('.')), "malformed token: expected three");
  ExpectRejected(token.substr(0, token.rfind('.') + 1), "malformed token: empty signature");
  ExpectRejected("", "malformed token: expected three");
}

TEST_F(JwtVerifierTest, RejectsGarbage) {
  ExpectRejected("!!!.aaaa.bbbb", "malformed token: header: invalid base64url character at offset 0");
  ExpectRejected("a.b.c.d.e", "malformed token: more than three segments");
  ExpectRejected("....", "malformed token: more than three segments");
  ExpectRejected(absl::StrCat(EncodeBase64Url("not json"), ".e30.AAAA"),
                 "malformed token: header is not valid JSON");
  ExpectRejected(absl::StrCat(EncodeBase64Url("[1]"), ".e30.AAAA"),
                 "malformed token: header is not a JSON object");
  ExpectRejected(absl::StrCat(EncodeBase64Url(R"({"kid":"rsa"})"), ".e30.AAAA"),
                 "malformed token: header has no \"alg\"");
  ExpectRejected(absl::StrCat(EncodeBase64Url(R"({"alg":256})"), ".e30.AAAA"),
                 "malformed token: header \"alg\" is not a string");
  ExpectRejected(absl::StrCat(EncodeBase64Url(R"({"alg":"RS256","kid":1})"), ".e30.AAAA"),
                 "malformed token: header \"kid\" is not a string");
}

TEST_F(JwtVerifierTest, RejectsPaddingAndNonUrlAlphabet) {
  const std::string token =
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims());
  const size_t dot = token.find('.');
  ExpectRejected(absl::StrCat(token.substr(0, dot), "==", token.substr(dot)),
                 "malformed token: header: padding character '='");
  ExpectRejected(absl::StrCat(token, "=="), "malformed token: signature: padding character");
  std::string plus = token;
  plus[dot + 2] = '+';
  ExpectRejected(plus, "malformed token: payload: invalid base64url character");
  ExpectRejected(absl::StrCat(" ", token), "malformed token: header: invalid base64url");
}

TEST_F(JwtVerifierTest, RejectsOneMegabyteToken) {
  const std::string big(1 << 20, 'A');
  ExpectRejected(absl::StrCat(big, ".", big, ".", big),
                 "token too large: 3145730 bytes, at most 16384 allowed");
}

TEST_F(JwtVerifierTest, RejectsWrongCurveForAlgorithm) {
  // An ES256 token whose kid names the P-384 key.
  ExpectRejected(
      MintToken(keys_.ec384, Algorithm::kES256, Header(Algorithm::kES256, "ec384"), Claims()),
      "algorithm not allowed for this key: ES256 needs curve P-256, key \"ec384\" is on P-384");
}

TEST_F(JwtVerifierTest, RejectsRsaKeyForEcAlgorithm) {
  ExpectRejected(
      MintToken(keys_.ec256, Algorithm::kES256, Header(Algorithm::kES256, "rsa"), Claims()),
      "algorithm not allowed for this key: ES256 needs a EC key, key \"rsa\" is RSA");
}

TEST_F(JwtVerifierTest, RejectsEcdsaSignatureOfWrongLength) {
  const std::string header = Header(Algorithm::kES256, "ec256");
  ExpectRejected(AssembleToken(header, Claims(), std::string(70, '\x30')),
                 "bad signature: ES256 signatures have 64 bytes, got 70");
}

TEST_F(JwtVerifierTest, RejectsPssSignatureWithOtherSaltLength) {
  // RFC 7518 section 3.5: the salt is as long as the hash.
  const std::string header = Header(Algorithm::kPS256, "rsa");
  const std::string input = absl::StrCat(EncodeBase64Url(header), ".", EncodeBase64Url(Claims()));
  for (int salt : {RSA_PSS_SALTLEN_MAX, 20}) {
    const std::string sig = keys_.rsa.Sign(Algorithm::kPS256, input, salt);
    ExpectRejected(absl::StrCat(input, ".", EncodeBase64Url(sig)), "bad signature");
  }
}

TEST_F(JwtVerifierTest, RejectsRsaSignatureUsedWithTheOtherPadding) {
  // A valid RS256 signature presented as PS256, and the reverse.
  const std::string claims = Claims();
  const std::string rs_input =
      absl::StrCat(EncodeBase64Url(Header(Algorithm::kPS256, "rsa")), ".", EncodeBase64Url(claims));
  ExpectRejected(
      absl::StrCat(rs_input, ".", EncodeBase64Url(keys_.rsa.Sign(Algorithm::kRS256, rs_input))),
      "bad signature");
  const std::string ps_input =
      absl::StrCat(EncodeBase64Url(Header(Algorithm::kRS256, "rsa")), ".", EncodeBase64Url(claims));
  ExpectRejected(
      absl::StrCat(ps_input, ".", EncodeBase64Url(keys_.rsa.Sign(Algorithm::kPS256, ps_input))),
      "bad signature");
}

TEST_F(JwtVerifierTest, RejectsCritHeader) {
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA,
                           Header(Algorithm::kEdDSA, "ed", R"(,"crit":["exp"],"exp":1)"),
                           Claims()),
                 "malformed token: header has \"crit\"");
}

TEST_F(JwtVerifierTest, RejectsUnencodedPayloadOption) {
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA,
                           Header(Algorithm::kEdDSA, "ed", R"(,"b64":false)"), Claims()),
                 "malformed token: unencoded payloads");
  EXPECT_TRUE(Verify(MintToken(keys_.ed, Algorithm::kEdDSA,
                               Header(Algorithm::kEdDSA, "ed", R"(,"b64":true)"), Claims()))
                  .ok());
}

TEST_F(JwtVerifierTest, RejectsDuplicateJsonKeys) {
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(R"(,"sub":"admin")")),
                 "malformed token: payload is not valid JSON: ");
  auto result = Verify(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                                 Claims(R"(,"sub":"admin")")));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("Repeated map key"));
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA,
                           R"({"alg":"EdDSA","kid":"ed","alg":"none"})", Claims()),
                 "malformed token: header is not valid JSON");
}

TEST_F(JwtVerifierTest, RejectsPayloadThatIsNotAnObject) {
  for (const char* payload : {"[1,2]", "\"x\"", "42", "null", "", "{"}) {
    SCOPED_TRACE(payload);
    auto result = Verify(
        MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(result.status().message()), StartsWith("malformed token: payload is"));
  }
}

TEST_F(JwtVerifierTest, RejectsNonNumericTimeClaims) {
  const std::string with_string_exp = absl::StrCat(
      R"({"iss":")", kIssuer, R"(","aud":"api","exp":")", kNow + 60, "\"}");
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           with_string_exp),
                 "malformed token: claim \"exp\" is not a number");
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(R"(,"nbf":true)")),
                 "malformed token: claim \"nbf\" is not a number");
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(R"(,"nbf":-5)")),
                 "malformed token: claim \"nbf\" is out of range");
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(R"(,"nbf":1e300)")),
                 "malformed token: claim \"nbf\" is out of range");
}

TEST_F(JwtVerifierTest, RejectsMissingExpByDefault) {
  const std::string payload = absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"api"})");
  ExpectRejected(
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), payload),
      "malformed token: the token has no \"exp\" claim");
}

TEST_F(JwtVerifierTest, RejectsNonStringSubject) {
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"api","exp":)",
                                        kNow + 60, R"(,"sub":12})")),
                 "malformed token: claim \"sub\" is not a string");
}

TEST_F(JwtVerifierTest, ErrorMessagesDoNotEchoTheToken) {
  const std::string token = MintToken(keys_.ec256, Algorithm::kES256,
                                      Header(Algorithm::kES256, "ec256"), Claims());
  const std::string corrupted = absl::StrCat(token, "xyz");
  auto result = Verify(corrupted);
  ASSERT_FALSE(result.ok());
  EXPECT_FALSE(absl::StrContains(result.status().message(), token.substr(0, 20)));
  EXPECT_FALSE(absl::StrContains(result.status().message(), token.substr(token.rfind('.') + 1)));
}

// ---------------------------------------------------------------------------
// Key rotation and the cache.

TEST_F(JwtVerifierTest, RotationRetiresOldKeysAndKeepsLastGoodSetOnError) {
  const std::string token =
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims());
  ASSERT_TRUE(Verify(token).ok());

  // A broken document leaves the current set in place.
  EXPECT_FALSE(holder_->Replace("{not json").ok());
  EXPECT_TRUE(Verify(token).ok());

  // The new set lacks "ed": the cached verification must not survive.
  ASSERT_TRUE(holder_->Replace(MakeJwks({keys_.ec256.PublicJwk()})).ok());
  auto result = Verify(token);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "unknown key id \"ed\"");
  EXPECT_TRUE(IsUnknownKeyId(result.status()));
}

TEST_F(JwtVerifierTest, KeysSkippedFromTheJwksNeverVerify) {
  const TestKey weak = TestKey::Rsa(1024, "weak");
  const TestKey off = TestKey::Ec("P-256", "off");
  // "off" is published with a point that is not on P-256.
  std::string off_jwk = off.PublicJwk();
  const size_t y = off_jwk.find("\"y\":\"") + 5;
  off_jwk[y] = off_jwk[y] == 'A' ? 'B' : 'A';
  // A 1024-bit key under the kid of a good key, and an encryption key.
  const TestKey weak_rsa = TestKey::Rsa(1024, "rsa");
  const TestKey enc = TestKey::Rsa(2048, "enc");
  ASSERT_TRUE(holder_->Replace(MakeJwks({weak.PublicJwk(), off_jwk, weak_rsa.PublicJwk(),
                                         enc.PublicJwk(R"("use":"enc")"),
                                         keys_.rsa.PublicJwk(), keys_.ec256.PublicJwk()}))
                  .ok());
  ASSERT_EQ(holder_->Current().keys->skipped().size(), 4u);

  auto rs = Verify(
      MintToken(keys_.rsa, Algorithm::kRS256, Header(Algorithm::kRS256, "rsa"), Claims()));
  EXPECT_TRUE(rs.ok()) << rs.status();
  auto es = Verify(
      MintToken(keys_.ec256, Algorithm::kES256, Header(Algorithm::kES256, "ec256"), Claims()));
  EXPECT_TRUE(es.ok()) << es.status();

  ExpectRejected(MintToken(weak, Algorithm::kRS256, Header(Algorithm::kRS256, "weak"), Claims()),
                 "unknown key id \"weak\"");
  ExpectRejected(MintToken(off, Algorithm::kES256, Header(Algorithm::kES256, "off"), Claims()),
                 "unknown key id \"off\"");
  ExpectRejected(MintToken(enc, Algorithm::kRS256, Header(Algorithm::kRS256, "enc"), Claims()),
                 "unknown key id \"enc\"");
  ExpectRejected(
      MintToken(weak_rsa, Algorithm::kRS256, Header(Algorithm::kRS256, "rsa"), Claims()),
      "bad signature");
  ExpectRejected(MintToken(weak, Algorithm::kRS256, R"({"alg":"RS256"})", Claims()),
                 "bad signature");
}

TEST_F(JwtVerifierTest, CachedTokenIsReturnedUntilExpiry) {
  const std::string token =
      MintToken(keys_.rsa, Algorithm::kRS256, Header(Algorithm::kRS256, "rsa"), Claims());
  auto first = Verify(token);
  ASSERT_TRUE(first.ok());
  auto second = Verify(token);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());  // the same cached object

  now_ = absl::FromUnixSeconds(kNow + 3600 + 59);
  EXPECT_TRUE(Verify(token).ok());
  now_ = absl::FromUnixSeconds(kNow + 3600 + 60);
  ExpectRejected(token, "token expired at");
}

TEST_F(JwtVerifierTest, NoCacheWhenDisabled) {
  config_.cache_entries = 0;
  Rebuild();
  const std::string token =
      MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"), Claims());
  auto first = Verify(token);
  auto second = Verify(token);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->get(), second->get());
}

TEST_F(JwtVerifierTest, RejectsDeeplyNestedPayload) {
  const std::string nested = absl::StrCat(std::string(40, '['), std::string(40, ']'));
  ExpectRejected(MintToken(keys_.ed, Algorithm::kEdDSA, Header(Algorithm::kEdDSA, "ed"),
                           Claims(absl::StrCat(R"(,"deep":)", nested))),
                 "malformed token: payload nests arrays and objects more than 32 levels deep");
}

TEST_F(JwtVerifierTest, TokenWithoutKidTriesAtMostFourKeys) {
  std::vector<TestKey> extra;
  std::vector<std::string> jwks;
  for (int i = 0; i < 5; ++i) {
    extra.push_back(TestKey::Ed25519(""));
    jwks.push_back(extra.back().PublicJwk());
  }
  ASSERT_TRUE(holder_->Replace(MakeJwks(jwks)).ok());
  const std::string header = R"({"alg":"EdDSA"})";
  EXPECT_TRUE(Verify(MintToken(extra[3], Algorithm::kEdDSA, header, Claims())).ok());
  ExpectRejected(MintToken(extra[4], Algorithm::kEdDSA, header, Claims()), "bad signature");
}

TEST_F(JwtVerifierTest, RotationToTheSameKeysStillVerifies) {
  const std::string token =
      MintToken(keys_.ec521, Algorithm::kES512, Header(Algorithm::kES512, "ec521"), Claims());
  ASSERT_TRUE(Verify(token).ok());
  ASSERT_TRUE(holder_->Replace(MakeJwks({keys_.ec521.PublicJwk(), keys_.rsa.PublicJwk()})).ok());
  auto again = Verify(token);
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(JwtVerifierTest, VerifiedTokenMeetsOrFailsRequirements) {
  auto requirement = JwtRequirement::Create({{"books.write"}, {{"tenant", "acme"}}});
  ASSERT_TRUE(requirement.ok());
  auto jwt = Verify(MintToken(keys_.rsa, Algorithm::kRS384, Header(Algorithm::kRS384, "rsa"),
                              Claims(R"(,"scope":"books.read books.write","tenant":"acme")")));
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_TRUE((*requirement)->Check(**jwt).ok());
  auto reader = Verify(MintToken(keys_.rsa, Algorithm::kRS384, Header(Algorithm::kRS384, "rsa"),
                                 Claims(R"(,"scope":"books.read","tenant":"acme")")));
  ASSERT_TRUE(reader.ok()) << reader.status();
  const absl::Status denied = (*requirement)->Check(**reader);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "missing scope \"books.write\"");
}

TEST_F(JwtVerifierTest, ConcurrentVerificationsAgree) {
  std::vector<std::string> tokens;
  for (Algorithm alg : {Algorithm::kRS256, Algorithm::kPS512, Algorithm::kES256,
                        Algorithm::kEdDSA, Algorithm::kHS384}) {
    tokens.push_back(MintToken(KeyFor(alg), alg, Header(alg, KeyFor(alg).kid()), Claims()));
  }
  tokens.push_back("garbage.token.here");
  std::vector<std::thread> threads;
  std::vector<int> ok_counts(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (verifier_->Verify(tokens[(i + t) % tokens.size()]).ok()) ++ok_counts[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) {
    int expected = 0;
    for (int i = 0; i < 50; ++i) expected += (i + t) % tokens.size() != tokens.size() - 1;
    EXPECT_EQ(ok_counts[t], expected);
  }
}

// ---------------------------------------------------------------------------
// Config and helpers.

TEST(JwtVerifierCreate, RejectsBadConfig) {
  auto holder = std::make_shared<KeySetHolder>();
  JwtProviderConfig config;
  EXPECT_EQ(JwtVerifier::Create(config, holder).status().message(), "issuer must not be empty");
  config.issuer = "i";
  EXPECT_EQ(JwtVerifier::Create(config, nullptr).status().message(), "keys must not be null");
  config.allowed_algorithms = {"RS256", "none"};
  auto bad = JwtVerifier::Create(config, holder);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "allowed_algorithms[1]: unsupported algorithm \"none\"");
  config.allowed_algorithms = {};
  config.clock_skew = absl::Seconds(-1);
  EXPECT_EQ(JwtVerifier::Create(config, holder).status().message(),
            "clock_skew must not be negative");
}

TEST(ExtractBearerToken, AcceptsBearerSchemeCaseInsensitively) {
  EXPECT_EQ(*ExtractBearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(*ExtractBearerToken("bearer  abc "), "abc");
  EXPECT_EQ(ExtractBearerToken("Basic dXNlcg==").status().message(),
            "authorization header is not a Bearer token");
  EXPECT_EQ(ExtractBearerToken("Bearer ").status().message(),
            "authorization header has an empty token");
  EXPECT_EQ(ExtractBearerToken("Bearer a b").status().message(),
            "authorization header token has invalid characters");
  EXPECT_EQ(ExtractBearerToken("Bearerabc").status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace gateway::auth
