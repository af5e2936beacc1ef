// HttpsGet: one blocking HTTPS GET, for fetching documents such as a JWKS. Never call it
// on a thread that serves calls: it waits for the network (bounded by `timeout`).
//
// The server's certificate is verified against `ca_file` (or the system roots) and the
// URL's host name. Only `https://HOST[:PORT]/PATH` URLs; redirects are not followed; a
// response other than 200, or a body over `max_bytes`, is an error.
//
// Thread-safety: thread-safe (no shared state).
//
// Example:
//   absl::StatusOr<std::string> jwks =
//       HttpsGet("https://idp.example/.well-known/jwks.json", "", absl::Seconds(5));

#ifndef GATEWAY_INTERCEPTORS_HTTPS_FETCH_H_
#define GATEWAY_INTERCEPTORS_HTTPS_FETCH_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gateway {

struct HttpsUrl {
  std::string host;
  std::string port;  // "443" by default
  std::string target;  // path and query, "/" at least
};

// Parses an https:// URL. INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<HttpsUrl> ParseHttpsUrl(const std::string& url);

// Fetches `url`. UNAVAILABLE (naming the URL and the cause) when the server cannot be
// reached, the TLS handshake or certificate check fails, the status is not 200, or the
// body is larger than `max_bytes`; INVALID_ARGUMENT for a bad URL.
absl::StatusOr<std::string> HttpsGet(const std::string& url, const std::string& ca_file,
                                     absl::Duration timeout,
                                     std::size_t max_bytes = 1 << 20);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_HTTPS_FETCH_H_
