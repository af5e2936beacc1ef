#include "auth/jwa.h"

namespace gateway::auth {
namespace {

struct AlgorithmInfo {
  Algorithm alg;
  absl::string_view name;
  KeyType key_type;
  absl::string_view curve;
  int hash_size;
};

constexpr AlgorithmInfo kAlgorithms[] = {
    {Algorithm::kRS256, "RS256", KeyType::kRsa, "", 32},
    {Algorithm::kRS384, "RS384", KeyType::kRsa, "", 48},
    {Algorithm::kRS512, "RS512", KeyType::kRsa, "", 64},
    {Algorithm::kPS256, "PS256", KeyType::kRsa, "", 32},
    {Algorithm::kPS384, "PS384", KeyType::kRsa, "", 48},
    {Algorithm::kPS512, "PS512", KeyType::kRsa, "", 64},
    {Algorithm::kES256, "ES256", KeyType::kEc, "P-256", 32},
    {Algorithm::kES384, "ES384", KeyType::kEc, "P-384", 48},
    {Algorithm::kES512, "ES512", KeyType::kEc, "P-521", 64},
    {Algorithm::kEdDSA, "EdDSA", KeyType::kOkp, "Ed25519", 0},
    {Algorithm::kHS256, "HS256", KeyType::kOct, "", 32},
    {Algorithm::kHS384, "HS384", KeyType::kOct, "", 48},
    {Algorithm::kHS512, "HS512", KeyType::kOct, "", 64},
};

const AlgorithmInfo& Info(Algorithm alg) {
  return kAlgorithms[static_cast<int>(alg)];
}

}  // namespace

absl::string_view AlgorithmName(Algorithm alg) { return Info(alg).name; }

absl::optional<Algorithm> ParseAlgorithm(absl::string_view name) {
  for (const AlgorithmInfo& info : kAlgorithms) {
    if (info.name == name) return info.alg;
  }
  return absl::nullopt;
}

const std::vector<Algorithm>& AllAlgorithms() {
  static const std::vector<Algorithm>* const kAll = [] {
    auto* all = new std::vector<Algorithm>;
    for (const AlgorithmInfo& info : kAlgorithms) all->push_back(info.alg);
    return all;
  }();
  return *kAll;
}

bool IsAsymmetric(Algorithm alg) { return Info(alg).key_type != KeyType::kOct; }

KeyType RequiredKeyType(Algorithm alg) { return Info(alg).key_type; }

absl::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kRsa: return "RSA";
    case KeyType::kEc: return "EC";
    case KeyType::kOkp: return "OKP";
    case KeyType::kOct: return "oct";
  }
  return "";
}

absl::string_view RequiredCurve(Algorithm alg) { return Info(alg).curve; }

int HashSize(Algorithm alg) { return Info(alg).hash_size; }

}  // namespace gateway::auth
