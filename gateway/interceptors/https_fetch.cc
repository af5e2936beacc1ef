#include "gateway/interceptors/https_fetch.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

absl::StatusOr<HttpsUrl> ParseHttpsUrl(const std::string& url) {
  if (!absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" is not an https:// URL"));
  }
  std::string rest = url.substr(8);
  HttpsUrl parsed;
  const std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  parsed.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" has no valid host"));
  }
  parsed.port = "443";
  std::size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t end = authority.find(']');
    if (end == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" has a broken IPv6 host"));
    }
    parsed.host = authority.substr(1, end - 1);
    colon = authority.size() > end + 1 && authority[end + 1] == ':' ? end + 1 : std::string::npos;
  } else {
    parsed.host = authority.substr(0, colon);
  }
  if (colon != std::string::npos) {
    parsed.port = authority.substr(colon + 1);
    int port = 0;
    if (!absl::SimpleAtoi(parsed.port, &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" has a bad port"));
    }
  }
  if (parsed.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", url, "\" has no host"));
  }
  return parsed;
}

absl::StatusOr<std::string> HttpsGet(const std::string& url, const std::string& ca_file,
                                     absl::Duration timeout, std::size_t max_bytes) {
  absl::StatusOr<HttpsUrl> parsed = ParseHttpsUrl(url);
  if (!parsed.ok()) return parsed.status();
  auto fail = [&url](absl::string_view what, const std::string& detail) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", what, ": ", detail));
  };
  try {
    asio::io_context io;
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (ca_file.empty()) {
      tls.set_default_verify_paths();
    } else {
      boost::system::error_code ec;
      tls.load_verify_file(ca_file, ec);
      if (ec) return fail("cannot load CA file " + ca_file, ec.message());
    }
    tls.set_verify_mode(asio::ssl::verify_peer);
    tls.set_verify_callback(asio::ssl::host_name_verification(parsed->host));

    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    asio::ip::tcp::resolver resolver(io);
    beast::ssl_stream<beast::tcp_stream> stream(io, tls);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), parsed->host.c_str())) {
      return fail("TLS", "cannot set the server name");
    }
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(parsed->host, parsed->port, ec);
    if (ec) return fail("resolve", ec.message());
    beast::get_lowest_layer(stream).expires_at(deadline);
    beast::get_lowest_layer(stream).connect(endpoints, ec);
    if (ec) return fail("connect", ec.message());
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return fail("TLS handshake", ec.message());

    http::request<http::empty_body> request(http::verb::get, parsed->target, 11);
    request.set(http::field::host, parsed->host);
    request.set(http::field::user_agent, "gatewayd");
    request.set(http::field::accept, "application/json");
    http::write(stream, request, ec);
    if (ec) return fail("write", ec.message());

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_bytes);
    http::read(stream, buffer, parser, ec);
    if (ec) return fail("read", ec.message());
    const auto& response = parser.get();
    if (response.result() != http::status::ok) {
      return fail("status", std::to_string(response.result_int()));
    }
    stream.shutdown(ec);  // best effort
    return response.body();
  } catch (const std::exception& e) {
    return fail("error", e.what());
  }
}

}  // namespace gateway
