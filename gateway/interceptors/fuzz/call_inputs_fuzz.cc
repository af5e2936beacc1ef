// Fuzz target: what the interceptors read from a call's untrusted data besides the
// credentials themselves: QueryParameter (auth_interceptor.h, a credential taken from the
// raw query string) and PeerIp (quota_interceptor.h, the client address that keys quotas).
//
// Input: "NAME\nQUERY" for QueryParameter (no newline: the whole input is the query and
// the name is "access_token"); the whole input is also a peer address for PeerIp.
//
// Besides not crashing: QueryParameter returns the first NAME pair's value, decoded, and
// nothing when no pair has that name; decoding never makes a value longer. PeerIp returns
// a view into its argument, and reduces "ipv4:HOST:PORT" and "ipv6:[HOST]:PORT" to HOST
// (the input is also used as such a HOST).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/interceptors/quota_interceptor.h"

namespace {

void Fail(const char* what, absl::string_view input) {
  std::fprintf(stderr, "%s: \"%.*s\"\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

void CheckQueryParameter(absl::string_view input) {
  absl::string_view name = "access_token";
  absl::string_view query = input;
  if (const std::size_t newline = input.find('\n'); newline != absl::string_view::npos) {
    name = input.substr(0, newline);
    query = input.substr(newline + 1);
  }
  const std::string value = gateway::QueryParameter(query, name);
  // The first pair named `name`, as a reader of the query string sees it.
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == absl::string_view::npos) {
      if (!value.empty()) Fail("a value for a parameter without '='", input);
      return;
    }
    const absl::string_view raw = pair.substr(eq + 1);
    if (value.size() > raw.size()) Fail("decoding made a value longer", input);
    if (!absl::StrContains(raw, '%') && !absl::StrContains(raw, '+') && value != raw) {
      Fail("a value without escapes changed", input);
    }
    return;
  }
  if (!value.empty()) Fail("a value for an absent parameter", input);
}

void CheckPeerIp(absl::string_view peer) {
  const absl::string_view ip = gateway::PeerIp(peer);
  if (ip.data() < peer.data() || ip.data() + ip.size() > peer.data() + peer.size()) {
    Fail("PeerIp returned a view outside its argument", peer);
  }
}

// The forms a front end gives (gRPC's peer strings, the HTTP server's), around `host`
// when it could be an IP address literal.
void CheckPeerForms(absl::string_view host) {
  if (host.empty()) return;
  if (host.find_first_not_of("0123456789.") == absl::string_view::npos) {
    const std::string v4 = absl::StrCat("ipv4:", host, ":443");
    if (gateway::PeerIp(v4) != host) Fail("ipv4 peer not reduced to its address", v4);
  }
  if (host.find_first_not_of("0123456789abcdefABCDEF:.%") == absl::string_view::npos) {
    const std::string v6 = absl::StrCat("ipv6:[", host, "]:443");
    if (gateway::PeerIp(v6) != host) Fail("ipv6 peer not reduced to its address", v6);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckQueryParameter(input);
  CheckPeerIp(input);
  CheckPeerForms(input);
  return 0;
}
