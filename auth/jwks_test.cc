#include "auth/jwks.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/jose_util.h"
#include "auth/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const TestKey& Rsa() {
  static const TestKey* const key = new TestKey(TestKey::Rsa(2048, "rsa"));
  return *key;
}

std::string ParseError(absl::string_view json, const JwksOptions& options = {}) {
  auto set = ParseJwks(json, options);
  if (set.ok()) return "OK";
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(set.status().message());
}

// The error for a document whose only key is skipped for `reason`.
std::string OnlyKeySkipped(absl::string_view reason) {
  return absl::StrCat("JWKS document has no usable signing keys (skipped ", reason, ")");
}

// Why the only key of `json` was skipped, taken from the document's error.
std::string SkipReason(absl::string_view json) {
  const std::string error = ParseError(json);
  const std::string prefix = OnlyKeySkipped("");
  const absl::string_view head = absl::string_view(prefix).substr(0, prefix.size() - 1);
  if (!absl::StartsWith(error, head) || !absl::EndsWith(error, ")")) return "unexpected: " + error;
  return error.substr(head.size(), error.size() - head.size() - 1);
}

TEST(ParseJwks, ParsesEveryKeyType) {
  const TestKey ec256 = TestKey::Ec("P-256", "ec256");
  const TestKey ec384 = TestKey::Ec("P-384", "ec384");
  const TestKey ec521 = TestKey::Ec("P-521", "ec521");
  const TestKey ed = TestKey::Ed25519("ed");
  const TestKey hs = TestKey::Hmac(std::string(32, 's'), "hs");
  auto set = ParseJwks(MakeJwks({Rsa().PublicJwk(R"("alg":"RS256","use":"sig")"),
                                 ec256.PublicJwk(), ec384.PublicJwk(), ec521.PublicJwk(),
                                 ed.PublicJwk(), hs.PublicJwk()}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ((*set)->keys().size(), 6u);
  const Jwk& rsa = *(*set)->keys()[0];
  EXPECT_EQ(rsa.type(), KeyType::kRsa);
  EXPECT_EQ(rsa.kid(), "rsa");
  EXPECT_EQ(rsa.alg(), Algorithm::kRS256);
  EXPECT_EQ(rsa.bits(), 2048);
  EXPECT_EQ((*set)->keys()[1]->curve(), "P-256");
  EXPECT_EQ((*set)->keys()[3]->bits(), 521);
  EXPECT_EQ((*set)->keys()[4]->type(), KeyType::kOkp);
  EXPECT_EQ((*set)->keys()[5]->type(), KeyType::kOct);
  ASSERT_EQ((*set)->FindByKid("ec384").size(), 1u);
  EXPECT_EQ((*set)->FindByKid("ec384")[0]->curve(), "P-384");
  EXPECT_TRUE((*set)->FindByKid("missing").empty());
  EXPECT_TRUE((*set)->skipped().empty());
}

TEST(ParseJwks, KeyWithAlgVerifiesOnlyThatAlgorithm) {
  auto set = ParseJwks(MakeJwks({Rsa().PublicJwk(R"("alg":"PS256")")}));
  ASSERT_TRUE(set.ok()) << set.status();
  const Jwk& key = *(*set)->keys()[0];
  EXPECT_TRUE(key.CheckUsableFor(Algorithm::kPS256).ok());
  EXPECT_EQ(key.CheckUsableFor(Algorithm::kRS256).message(),
            "algorithm not allowed for this key: key \"rsa\" is for PS256, not RS256");
}

TEST(ParseJwks, SkipsEncryptionAndUnsupportedKeys) {
  auto set = ParseJwks(MakeJwks({
      Rsa().PublicJwk(R"("use":"enc")"),
      R"({"kty":"OKP","crv":"X25519","x":"AAAA","kid":"x"})",
      R"({"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"})",
      R"({"kty":"RSA","alg":"RSA-OAEP","n":"AA","e":"AQAB"})",
      R"({"kty":"PQC"})",
      TestKey::Ed25519("ed").PublicJwk(),
  }));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->keys().size(), 1u);
  EXPECT_THAT((*set)->skipped(),
              ElementsAre("keys[0] (kid \"rsa\"): use \"enc\" is not \"sig\"",
                          "keys[1] (kid \"x\"): OKP curve \"X25519\" is not supported",
                          "keys[2]: EC curve \"secp256k1\" is not supported",
                          "keys[3]: alg \"RSA-OAEP\" is not supported",
                          "keys[4]: kty \"PQC\" is not supported"));
}

// Replaces the last character of the base64url member `name` of `jwk` so that
// the decoded value changes but keeps its length.
std::string Tweak(std::string jwk, absl::string_view name) {
  const std::string marker = absl::StrCat("\"", name, "\":\"");
  const size_t start = jwk.find(marker) + marker.size();
  const size_t end = jwk.find('"', start);
  std::string bytes = *DecodeBase64Url(jwk.substr(start, end - start));
  bytes.back() ^= 0x01;
  jwk.replace(start, end - start, EncodeBase64Url(bytes));
  return jwk;
}

TEST(ParseJwks, LoadsGoodKeysBesideWeakOffCurveAndEncryptionKeys) {
  const TestKey weak = TestKey::Rsa(1024, "weak");
  const TestKey ec = TestKey::Ec("P-256", "ec");
  const TestKey off = TestKey::Ec("P-256", "off");
  auto set = ParseJwks(MakeJwks({weak.PublicJwk(), Tweak(off.PublicJwk(), "y"),
                                 Rsa().PublicJwk(R"("use":"enc")"), "7",
                                 Rsa().PublicJwk(R"("alg":"RS256","use":"sig")"),
                                 ec.PublicJwk(R"("alg":"ES256")")}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ((*set)->keys().size(), 2u);
  EXPECT_EQ((*set)->keys()[0]->kid(), "rsa");
  EXPECT_EQ((*set)->keys()[1]->kid(), "ec");
  EXPECT_TRUE((*set)->FindByKid("weak").empty());
  EXPECT_TRUE((*set)->FindByKid("off").empty());
  // The encryption key shares its kid with the signing key: only the latter is there.
  ASSERT_EQ((*set)->FindByKid("rsa").size(), 1u);
  EXPECT_EQ((*set)->FindByKid("rsa")[0]->alg(), Algorithm::kRS256);
  EXPECT_THAT((*set)->skipped(),
              ElementsAre("keys[0] (kid \"weak\"): RSA modulus has 1024 bits, at least 2048 required",
                          "keys[1] (kid \"off\"): EC point is not on curve P-256",
                          "keys[2] (kid \"rsa\"): use \"enc\" is not \"sig\"",
                          "keys[3]: not a JSON object"));
}

TEST(ParseJwks, DocumentOfOnlyBadKeysListsEveryReason) {
  const TestKey weak = TestKey::Rsa(1024, "weak");
  const TestKey off = TestKey::Ec("P-384", "off");
  EXPECT_EQ(ParseError(MakeJwks({weak.PublicJwk(), Tweak(off.PublicJwk(), "x"),
                                 Rsa().PublicJwk(R"("use":"enc")"), R"({"kty":"PQC"})"})),
            "JWKS document has no usable signing keys (skipped "
            "keys[0] (kid \"weak\"): RSA modulus has 1024 bits, at least 2048 required; "
            "keys[1] (kid \"off\"): EC point is not on curve P-384; "
            "keys[2] (kid \"rsa\"): use \"enc\" is not \"sig\"; "
            "keys[3]: kty \"PQC\" is not supported)");
}

TEST(ParseJwks, RejectsDocumentWithoutUsableKeys) {
  EXPECT_EQ(ParseError(R"({"keys":[]})"), "JWKS document has no usable signing keys");
  EXPECT_EQ(ParseError(MakeJwks({Rsa().PublicJwk(R"("use":"enc")")})),
            OnlyKeySkipped("keys[0] (kid \"rsa\"): use \"enc\" is not \"sig\""));
}

TEST(ParseJwks, RejectsMalformedDocuments) {
  EXPECT_THAT(ParseError("{"), HasSubstr("JWKS document is not valid JSON"));
  EXPECT_EQ(ParseError("[]"), "JWKS document is not a JSON object");
  EXPECT_EQ(ParseError("{}"), "JWKS document has no \"keys\" member");
  EXPECT_EQ(ParseError(R"({"keys":{}})"), "JWKS \"keys\" is not an array");
  EXPECT_THAT(ParseError(R"({"keys":[],"keys":[]})"), HasSubstr("Repeated map key"));
  EXPECT_THAT(ParseError(R"({"keys":[{"kid":"a","kid":"b"}]})"), HasSubstr("Repeated map key"));
  // Malformed entries are skipped; with nothing else in the document it fails.
  EXPECT_EQ(ParseError(R"({"keys":[1]})"), OnlyKeySkipped("keys[0]: not a JSON object"));
  EXPECT_EQ(ParseError(R"({"keys":[{"kid":"a"}]})"),
            OnlyKeySkipped("keys[0] (kid \"a\"): missing \"kty\""));
  EXPECT_EQ(ParseError(R"({"keys":[{"kty":1}]})"),
            OnlyKeySkipped("keys[0]: \"kty\" is not a string"));
}

TEST(ParseJwks, EnforcesSizeLimits) {
  JwksOptions options;
  options.max_bytes = 10;
  EXPECT_EQ(ParseError(R"({"keys":[ ]})", options),
            "JWKS document has 12 bytes, at most 10 allowed");
  options = JwksOptions();
  options.max_keys = 1;
  EXPECT_EQ(ParseError(R"({"keys":[{},{}]})", options), "JWKS has 2 keys, at most 1 allowed");
}

TEST(ParseJwks, SkipsSmallRsaKey) {
  const TestKey small = TestKey::Rsa(1024, "old");
  EXPECT_EQ(SkipReason(MakeJwks({small.PublicJwk()})),
            "keys[0] (kid \"old\"): RSA modulus has 1024 bits, at least 2048 required");
}

TEST(ParseJwks, SkipsKeyWithBadRsaParameters) {
  EXPECT_EQ(SkipReason(R"({"keys":[{"kty":"RSA","e":"AQAB"}]})"), "keys[0]: missing \"n\"");
  EXPECT_EQ(SkipReason(R"({"keys":[{"kty":"RSA","n":"AA==","e":"AQAB"}]})"),
            "keys[0]: \"n\" is not base64url: padding character '=' at offset 2 "
            "(base64url in JOSE is unpadded)");
  // An even exponent.
  const std::string jwk = Rsa().PublicJwk();
  std::string even = jwk;
  even.replace(even.find("\"e\":\"AQAB\""), 10, "\"e\":\"AQAC\"");
  EXPECT_EQ(SkipReason(MakeJwks({even})),
            "keys[0] (kid \"rsa\"): RSA exponent \"e\" must be odd, at least 3 and at most 64 bits");
}

TEST(ParseJwks, SkipsEcPointNotOnCurve) {
  for (const char* curve : {"P-256", "P-384", "P-521"}) {
    SCOPED_TRACE(curve);
    const TestKey key = TestKey::Ec(curve, "k");
    ASSERT_TRUE(ParseJwks(MakeJwks({key.PublicJwk()})).ok());
    EXPECT_EQ(SkipReason(MakeJwks({Tweak(key.PublicJwk(), "y")})),
              absl::StrCat("keys[0] (kid \"k\"): EC point is not on curve ", curve));
  }
}

TEST(ParseJwks, SkipsEcCoordinatesOfWrongSize) {
  const TestKey p256 = TestKey::Ec("P-256", "k");
  std::string jwk = p256.PublicJwk();
  jwk.replace(jwk.find("P-256"), 5, "P-384");
  EXPECT_EQ(SkipReason(MakeJwks({jwk})),
            "keys[0] (kid \"k\"): \"x\" and \"y\" must have 48 bytes each for P-384, got 32 and 32");
}

TEST(ParseJwks, SkipsKeyWhoseAlgDoesNotFitIt) {
  const TestKey p384 = TestKey::Ec("P-384", "k");
  EXPECT_EQ(SkipReason(MakeJwks({p384.PublicJwk(R"("alg":"ES256")")})),
            "keys[0] (kid \"k\"): algorithm not allowed for this key: ES256 needs curve P-256, "
            "key \"k\" is on P-384");
  EXPECT_EQ(SkipReason(MakeJwks({Rsa().PublicJwk(R"("alg":"HS256")")})),
            "keys[0] (kid \"rsa\"): algorithm not allowed for this key: HS256 needs a oct key, "
            "key \"rsa\" is RSA");
}

TEST(ParseJwks, SkipsBadOkpAndOctKeys) {
  EXPECT_EQ(SkipReason(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]})"),
            "keys[0]: \"x\" must have 32 bytes for Ed25519, got 3");
  EXPECT_EQ(SkipReason(R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})"),
            "keys[0]: oct key \"k\" has 5 bytes, at least 32 required");
  EXPECT_EQ(SkipReason(R"({"keys":[{"kty":"oct","k":""}]})"), "keys[0]: \"k\" is empty");
}

TEST(ParseJwks, Hs512NeedsALongEnoughSecret) {
  auto set = ParseJwks(MakeJwks({TestKey::Hmac(std::string(32, 's'), "hs").PublicJwk()}));
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE((*set)->keys()[0]->CheckUsableFor(Algorithm::kHS256).ok());
  EXPECT_EQ((*set)->keys()[0]->CheckUsableFor(Algorithm::kHS512).message(),
            "algorithm not allowed for this key: HS512 needs a secret of at least 64 bytes");
}

TEST(ParseJwks, RepeatedKidKeepsEveryKey) {
  const TestKey a = TestKey::Ec("P-256", "same");
  const TestKey b = TestKey::Ed25519("same");
  auto set = ParseJwks(MakeJwks({a.PublicJwk(), b.PublicJwk()}));
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->FindByKid("same").size(), 2u);
}

TEST(KeySetHolder, StartsEmpty) {
  KeySetHolder holder;
  EXPECT_EQ(holder.Current().keys, nullptr);
  EXPECT_EQ(holder.generation(), 0u);
}

TEST(KeySetHolder, ReplaceKeepsLastGoodSetOnError) {
  KeySetHolder holder;
  const std::string good = MakeJwks({TestKey::Ed25519("a").PublicJwk()});
  ASSERT_TRUE(holder.Replace(good).ok());
  const KeySetHolder::Snapshot first = holder.Current();
  ASSERT_NE(first.keys, nullptr);
  EXPECT_EQ(first.generation, 1u);

  absl::Status bad = holder.Replace(R"({"keys":"nope"})");
  EXPECT_EQ(bad.message(), "JWKS \"keys\" is not an array");
  EXPECT_EQ(holder.Current().keys, first.keys);
  EXPECT_EQ(holder.generation(), 1u);
}

TEST(KeySetHolder, RotationAddingAnUnusableKeyIsAccepted) {
  KeySetHolder holder;
  const TestKey ed = TestKey::Ed25519("ed");
  ASSERT_TRUE(holder.Replace(MakeJwks({ed.PublicJwk()})).ok());
  const TestKey weak = TestKey::Rsa(1024, "weak");
  const TestKey next = TestKey::Ec("P-256", "next");
  ASSERT_TRUE(holder.Replace(MakeJwks({ed.PublicJwk(), weak.PublicJwk(), next.PublicJwk()})).ok());
  const KeySetHolder::Snapshot snap = holder.Current();
  EXPECT_EQ(snap.generation, 2u);
  EXPECT_EQ(snap.keys->keys().size(), 2u);
  EXPECT_EQ(snap.keys->FindByKid("next").size(), 1u);
  EXPECT_THAT(snap.keys->skipped(),
              ElementsAre("keys[1] (kid \"weak\"): RSA modulus has 1024 bits, at least 2048 required"));
}

TEST(KeySetHolder, IdenticalDocumentKeepsGeneration) {
  KeySetHolder holder;
  const std::string doc = MakeJwks({TestKey::Ed25519("a").PublicJwk()});
  ASSERT_TRUE(holder.Replace(doc).ok());
  ASSERT_TRUE(holder.Replace(doc).ok());
  EXPECT_EQ(holder.generation(), 1u);
  ASSERT_TRUE(holder.Replace(MakeJwks({TestKey::Ed25519("b").PublicJwk()})).ok());
  EXPECT_EQ(holder.generation(), 2u);
  EXPECT_EQ(holder.Current().keys->keys()[0]->kid(), "b");
}

TEST(KeySetHolder, SetInstallsAParsedSet) {
  KeySetHolder holder;
  auto set = ParseJwks(MakeJwks({TestKey::Ed25519("a").PublicJwk()}));
  ASSERT_TRUE(set.ok());
  holder.Set(*set);
  EXPECT_EQ(holder.Current().keys, *set);
  EXPECT_EQ(holder.Current().generation, 1u);
}

TEST(KeySetHolder, TryBeginRefreshIsRateLimited) {
  KeySetHolder holder;
  const absl::Time t0 = absl::FromUnixSeconds(1800000000);
  EXPECT_TRUE(holder.TryBeginRefresh(t0, absl::Seconds(30)));
  EXPECT_FALSE(holder.TryBeginRefresh(t0 + absl::Seconds(29), absl::Seconds(30)));
  EXPECT_TRUE(holder.TryBeginRefresh(t0 + absl::Seconds(30), absl::Seconds(30)));
  EXPECT_FALSE(holder.TryBeginRefresh(t0 + absl::Seconds(31), absl::Seconds(30)));
}

}  // namespace
}  // namespace gateway::auth
