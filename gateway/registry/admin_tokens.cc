#include "gateway/registry/admin_tokens.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "openssl/sha.h"
#include "yaml-cpp/yaml.h"

namespace gateway::registry {
namespace {

absl::Status Bad(absl::string_view origin, const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", where, ": ", what));
}

// The strings of a scalar or a list of scalars at `node`.
absl::StatusOr<std::vector<std::string>> Strings(const YAML::Node& node, absl::string_view origin,
                                                 const std::string& where) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.as<std::string>());
    return out;
  }
  if (!node.IsSequence()) return Bad(origin, where, "expected a list of strings");
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      return Bad(origin, absl::StrCat(where, "[", i, "]"), "expected a string");
    }
    out.push_back(node[i].as<std::string>());
  }
  return out;
}

bool IsHexDigest(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string Sha256Hex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool PackageAllowed(absl::string_view package, const std::vector<std::string>& allowed) {
  for (const std::string& p : allowed) {
    if (package == p) return true;
    if (absl::StartsWith(package, p) && package.size() > p.size() && package[p.size()] == '.') {
      return true;
    }
  }
  return false;
}

bool PathAllowed(absl::string_view path, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes) {
    if (!absl::StartsWith(path, p)) continue;
    if (path.size() == p.size() || absl::EndsWith(p, "/")) return true;
    const char next = path[p.size()];
    if (next == '/' || next == ':') return true;
  }
  return false;
}

absl::StatusOr<std::shared_ptr<const AdminTokens>> AdminTokens::Parse(absl::string_view text,
                                                                      absl::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": not valid YAML: ",
                                                   e.msg));
  }
  auto tokens = std::shared_ptr<AdminTokens>(new AdminTokens());
  try {
    if (!root.IsMap()) return Bad(origin, "(top level)", "expected a map with the key \"tokens\"");
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key != "tokens") {
        return Bad(origin, key, "unknown key (known: tokens)");
      }
    }
    const YAML::Node list = root["tokens"];
    if (!list.IsSequence()) return Bad(origin, "tokens", "expected a list of entries");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = absl::StrCat("tokens[", i, "]");
      const YAML::Node entry = list[i];
      if (!entry.IsMap()) return Bad(origin, at, "expected a map");
      std::string digest, role;
      AdminCaller caller;
      for (const auto& kv : entry) {
        const std::string key = kv.first.as<std::string>();
        const std::string where = absl::StrCat(at, ".", key);
        if (key == "sha256" || key == "owner" || key == "role") {
          if (!kv.second.IsScalar()) return Bad(origin, where, "expected a string");
          const std::string value = kv.second.as<std::string>();
          if (key == "sha256") digest = absl::AsciiStrToLower(value);
          if (key == "owner") caller.owner = value;
          if (key == "role") role = value;
        } else if (key == "packages" || key == "path_prefixes") {
          absl::StatusOr<std::vector<std::string>> values = Strings(kv.second, origin, where);
          if (!values.ok()) return values.status();
          (key == "packages" ? caller.packages : caller.path_prefixes) = *std::move(values);
        } else {
          return Bad(origin, where,
                     "unknown key (known: sha256, owner, role, packages, path_prefixes)");
        }
      }
      if (!IsHexDigest(digest)) {
        return Bad(origin, absl::StrCat(at, ".sha256"),
                   "required: the token's SHA-256 digest as 64 hex digits");
      }
      if (caller.owner.empty()) return Bad(origin, absl::StrCat(at, ".owner"), "required");
      if (role == "admin") {
        caller.admin = true;
      } else if (role != "team") {
        return Bad(origin, absl::StrCat(at, ".role"),
                   absl::StrCat("\"", role, "\" is not admin or team"));
      }
      if (!caller.admin && caller.packages.empty()) {
        return Bad(origin, absl::StrCat(at, ".packages"),
                   "required for role team (the packages the team may register in)");
      }
      for (std::size_t j = 0; j < caller.path_prefixes.size(); ++j) {
        if (!absl::StartsWith(caller.path_prefixes[j], "/")) {
          return Bad(origin, absl::StrCat(at, ".path_prefixes[", j, "]"),
                     absl::StrCat("\"", caller.path_prefixes[j], "\" does not start with \"/\""));
        }
      }
      for (std::size_t j = 0; j < caller.packages.size(); ++j) {
        if (caller.packages[j].empty()) {
          return Bad(origin, absl::StrCat(at, ".packages[", j, "]"), "empty package name");
        }
      }
      caller.who = absl::StrCat(caller.owner, " (sha256:", digest.substr(0, 8), ")");
      if (!tokens->by_digest_.emplace(digest, std::move(caller)).second) {
        return Bad(origin, absl::StrCat(at, ".sha256"), "listed twice");
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  return std::shared_ptr<const AdminTokens>(std::move(tokens));
}

const AdminCaller* AdminTokens::Find(absl::string_view token) const {
  auto it = by_digest_.find(Sha256Hex(token));
  return it == by_digest_.end() ? nullptr : &it->second;
}

}  // namespace gateway::registry
