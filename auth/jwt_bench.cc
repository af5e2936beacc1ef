// Micro benchmarks of JWT verification: uncached signature checks per
// algorithm (verifications/second on one core) and the cached path, plus API
// key lookup.
//
//   bazel run -c opt //auth:jwt_bench
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "auth/api_keys.h"
#include "auth/jwt.h"
#include "auth/test_util.h"
#include "benchmark/benchmark.h"

namespace gateway::auth {
namespace {

constexpr int64_t kNow = 1800000000;

struct Fixture {
  TestKey rsa = TestKey::Rsa(2048, "rsa");
  TestKey ec = TestKey::Ec("P-256", "ec");
  TestKey ed = TestKey::Ed25519("ed");
  TestKey hs = TestKey::Hmac(std::string(32, 'k'), "hs");
  std::shared_ptr<KeySetHolder> holder = std::make_shared<KeySetHolder>();

  Fixture() {
    if (!holder->Replace(MakeJwks({rsa.PublicJwk(), ec.PublicJwk(), ed.PublicJwk(),
                                   hs.PublicJwk()}))
             .ok()) {
      std::abort();
    }
  }

  std::shared_ptr<const JwtVerifier> Verifier(size_t cache_entries) const {
    JwtProviderConfig config;
    config.issuer = "https://issuer.example";
    config.audiences = {"api"};
    config.allowed_algorithms = {"RS256", "ES256", "EdDSA", "HS256"};
    config.cache_entries = cache_entries;
    return *JwtVerifier::Create(config, holder,
                                [] { return absl::FromUnixSeconds(kNow); });
  }

  // A typical access token: about 700 bytes with an RS256 signature.
  std::string Token(const TestKey& key, Algorithm alg) const {
    const std::string header =
        absl::StrCat(R"({"alg":")", AlgorithmName(alg), R"(","typ":"JWT","kid":")", key.kid(),
                     "\"}");
    const std::string payload = absl::StrCat(
        R"({"iss":"https://issuer.example","aud":"api","sub":"user-1234567890",)",
        R"("scope":"books.read books.write shelves.read","tenant":"acme","email":"user@example.com",)",
        R"("exp":)", kNow + 3600, R"(,"iat":)", kNow, R"(,"jti":"5b1f8c0e-2f6d-4c1a-9d55-1f0e7b0d2a11"})");
    return MintToken(key, alg, header, payload);
  }
};

const Fixture& GetFixture() {
  static const Fixture* const fixture = new Fixture();
  return *fixture;
}

void VerifyLoop(benchmark::State& state, const JwtVerifier& verifier, const std::string& token) {
  for (auto _ : state) {
    auto result = verifier.Verify(token);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["token_bytes"] = static_cast<double>(token.size());
}

void BM_VerifyUncached(benchmark::State& state, Algorithm alg) {
  const Fixture& f = GetFixture();
  const TestKey& key = alg == Algorithm::kRS256   ? f.rsa
                       : alg == Algorithm::kES256 ? f.ec
                       : alg == Algorithm::kEdDSA ? f.ed
                                                  : f.hs;
  static const auto* verifier = new std::shared_ptr<const JwtVerifier>(f.Verifier(0));
  VerifyLoop(state, **verifier, f.Token(key, alg));
}
BENCHMARK_CAPTURE(BM_VerifyUncached, RS256, Algorithm::kRS256);
BENCHMARK_CAPTURE(BM_VerifyUncached, ES256, Algorithm::kES256);
BENCHMARK_CAPTURE(BM_VerifyUncached, EdDSA, Algorithm::kEdDSA);
BENCHMARK_CAPTURE(BM_VerifyUncached, HS256, Algorithm::kHS256);

void BM_VerifyCached(benchmark::State& state) {
  const Fixture& f = GetFixture();
  static const auto* verifier = new std::shared_ptr<const JwtVerifier>(f.Verifier(10000));
  const std::string token = f.Token(f.rsa, Algorithm::kRS256);
  if (!(*verifier)->Verify(token).ok()) std::abort();  // warm the cache
  VerifyLoop(state, **verifier, token);
}
BENCHMARK(BM_VerifyCached)->Threads(1)->Threads(2);

void BM_TokenCacheKey(benchmark::State& state) {
  const Fixture& f = GetFixture();
  const std::string token = f.Token(f.rsa, Algorithm::kRS256);
  for (auto _ : state) benchmark::DoNotOptimize(TokenCache::KeyFor(token));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenCacheKey);

void BM_ApiKeyFind(benchmark::State& state) {
  std::string file;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = absl::StrCat("key-", i);
    const TokenCache::Key digest = TokenCache::KeyFor(key);  // SHA-256, as the file holds
    std::string hex;
    for (uint8_t b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
    absl::StrAppend(&file, "client-", i, " ", hex, "\n");
  }
  auto keys = ApiKeySet::Parse(file);
  if (!keys.ok()) std::abort();
  for (auto _ : state) benchmark::DoNotOptimize((*keys)->Find("key-517"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiKeyFind);

}  // namespace
}  // namespace gateway::auth
