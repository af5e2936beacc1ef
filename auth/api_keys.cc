#include "auth/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/jose_util.h"

namespace gateway::auth {
namespace {

constexpr size_t kMaxIdBytes = 128;

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
         c == '.' || c == ':' || c == '@';
}

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits off the next run of non-WSP characters, skipping WSP before it.
absl::string_view NextField(absl::string_view* rest) {
  while (!rest->empty() && IsWsp(rest->front())) rest->remove_prefix(1);
  size_t n = 0;
  while (n < rest->size() && !IsWsp((*rest)[n])) ++n;
  absl::string_view field = rest->substr(0, n);
  rest->remove_prefix(n);
  return field;
}

}  // namespace

size_t ApiKeySet::DigestHash::operator()(const Digest& d) const {
  size_t h;
  std::memcpy(&h, d.data(), sizeof(h));
  return h;
}

bool ApiKeySet::DigestEq::operator()(const Digest& a, const Digest& b) const {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<std::shared_ptr<const ApiKeySet>> ApiKeySet::Parse(absl::string_view file) {
  auto set = std::shared_ptr<ApiKeySet>(new ApiKeySet());
  absl::flat_hash_map<std::string, int> id_lines;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(file, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Drop the comment.
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    absl::string_view rest = line;
    const absl::string_view id = NextField(&rest);
    if (id.empty()) continue;  // blank or comment-only line
    const absl::string_view digest_hex = NextField(&rest);
    const absl::string_view extra = NextField(&rest);
    auto error = [&](absl::string_view message) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", message));
    };
    if (id.size() > kMaxIdBytes) {
      return error(absl::StrCat("id is longer than ", kMaxIdBytes, " bytes"));
    }
    for (char c : id) {
      if (!IsIdChar(c)) {
        return error(absl::StrCat("id ", QuoteForMessage(id),
                                  " may only contain letters, digits and - _ . : @"));
      }
    }
    if (digest_hex.empty()) return error("expected \"<id> <sha256-hex>\", found only an id");
    if (!extra.empty()) return error("unexpected text after the digest");
    if (digest_hex.size() != 64) {
      return error(absl::StrCat("digest must be 64 hex digits, found ", digest_hex.size(),
                                " characters"));
    }
    Digest digest;
    for (size_t i = 0; i < digest.size(); ++i) {
      const int hi = HexValue(digest_hex[2 * i]);
      const int lo = HexValue(digest_hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return error("digest must be 64 hex digits");
      digest[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (auto it = id_lines.find(id); it != id_lines.end()) {
      return error(absl::StrCat("id ", QuoteForMessage(id), " already defined on line ",
                                it->second));
    }
    if (auto it = set->by_digest_.find(digest); it != set->by_digest_.end()) {
      return error(absl::StrCat("digest already used by id ", QuoteForMessage(it->second->id),
                                " on line ", it->second->line));
    }
    id_lines.emplace(std::string(id), line_number);
    set->keys_.push_back(std::make_unique<ApiKey>(ApiKey{std::string(id), line_number}));
    set->by_digest_.emplace(digest, set->keys_.back().get());
  }
  return std::shared_ptr<const ApiKeySet>(std::move(set));
}

const ApiKey* ApiKeySet::Find(absl::string_view presented) const {
  if (presented.empty() || presented.size() > kMaxPresentedKeyBytes) return nullptr;
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(),
         digest.data());
  auto it = by_digest_.find(digest);
  return it == by_digest_.end() ? nullptr : it->second;
}

absl::StatusOr<const ApiKey*> ApiKeySet::Authenticate(absl::string_view presented) const {
  if (presented.empty()) return absl::UnauthenticatedError("missing API key");
  if (presented.size() > kMaxPresentedKeyBytes) {
    return absl::UnauthenticatedError(
        absl::StrCat("API key too long: at most ", kMaxPresentedKeyBytes, " bytes"));
  }
  const ApiKey* key = Find(presented);
  if (key == nullptr) return absl::UnauthenticatedError("unknown API key");
  return key;
}

}  // namespace gateway::auth
