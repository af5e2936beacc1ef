#include "gateway/openapi/openapi_config.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/descriptor_sets.h"
#include "transcoder/json_scan.h"

namespace gateway::openapi {
namespace {

absl::Status Invalid(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("http_listener.openapi.", key, ": ", what));
}

absl::Status CheckPath(absl::string_view key, absl::string_view path) {
  if (!absl::StartsWith(path, "/")) {
    return Invalid(key, absl::StrCat("\"", path, "\" must start with \"/\""));
  }
  for (char c : path) {
    if (c == '?' || c == '#' || absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return Invalid(key, absl::StrCat("\"", path, "\" may not hold '?', '#' or whitespace"));
    }
  }
  if (path == "/healthz" || path == "/readyz") {
    return Invalid(key, absl::StrCat("\"", path, "\" is taken by the health check"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenApiSettings> OpenApiSettingsFromConfig(const config::v1::Config& config) {
  OpenApiSettings s;
  const config::v1::HttpOpenApi& o = config.http_listener().openapi();
  s.enabled = !o.disabled();
  if (!o.path().empty()) s.path = o.path();
  if (!o.service_path_prefix().empty()) s.service_path_prefix = o.service_path_prefix();
  if (absl::Status st = CheckPath("path", s.path); !st.ok()) return st;
  if (absl::Status st = CheckPath("service_path_prefix", s.service_path_prefix); !st.ok()) {
    return st;
  }
  if (!absl::EndsWith(s.service_path_prefix, "/")) {
    return Invalid("service_path_prefix",
                   absl::StrCat("\"", s.service_path_prefix, "\" must end with \"/\""));
  }
  if (absl::StartsWith(s.path, s.service_path_prefix)) {
    return Invalid("path", absl::StrCat("\"", s.path, "\" lies under service_path_prefix \"",
                                        s.service_path_prefix, "\""));
  }
  if (!o.docs_path().empty()) {
    if (absl::Status st = CheckPath("docs_path", o.docs_path()); !st.ok()) return st;
    if (!absl::EndsWith(o.docs_path(), "/")) {
      return Invalid("docs_path", absl::StrCat("\"", o.docs_path(), "\" must end with \"/\""));
    }
    if (o.docs_assets_directory().empty()) {
      return Invalid("docs_assets_directory",
                     "required with docs_path (the directory of the npm package "
                     "swagger-ui-dist)");
    }
    s.docs_path = o.docs_path();
  }
  s.document.title = o.title().empty() ? "gatewayd" : o.title();
  if (!o.version().empty()) s.document.version = o.version();
  const config::v1::HttpTranscoding& t = config.http_listener().transcoding();
  s.document.use_proto_field_names = t.use_proto_field_names();
  s.document.enums_as_ints = t.enums_as_ints();
  switch (t.stream_format()) {
    case config::v1::HttpTranscoding::NDJSON:
      s.document.default_stream_format = transcoder::StreamFormat::kNdjson;
      break;
    case config::v1::HttpTranscoding::SERVER_SENT_EVENTS:
      s.document.default_stream_format = transcoder::StreamFormat::kServerSentEvents;
      break;
    default:
      s.document.default_stream_format = transcoder::StreamFormat::kJsonArray;
      break;
  }
  s.document.auth = config.auth();
  s.routes.expose_grpc_paths = t.expose_grpc_paths();
  return s;
}

absl::Status LoadDocsPage(const config::v1::Config& config, const std::string& base_dir,
                          OpenApiSettings* settings) {
  if (settings->docs_path.empty()) return absl::OkStatus();
  std::string dir = config.http_listener().openapi().docs_assets_directory();
  if (!absl::StartsWith(dir, "/") && !base_dir.empty()) dir = absl::StrCat(base_dir, "/", dir);
  static constexpr std::pair<const char*, const char*> kAssets[] = {
      {"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
      {"swagger-ui.css", "text/css; charset=utf-8"},
  };
  for (const auto& [name, content_type] : kAssets) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    if (in) content << in.rdbuf();
    if (!in || in.bad()) {
      return Invalid("docs_assets_directory", absl::StrCat("cannot read ", path));
    }
    settings->docs_files[name] = {content_type, content.str()};
  }
  // The page: Swagger UI showing the whole document. Absolute URLs, so that the page works
  // at docs_path without its last "/" too.
  std::string url;
  transcoder::AppendJsonString(settings->path, &url);
  std::string title;
  for (char c : settings->document.title) {
    switch (c) {
      case '&': title += "&amp;"; break;
      case '<': title += "&lt;"; break;
      case '>': title += "&gt;"; break;
      case '"': title += "&quot;"; break;
      default: title += c;
    }
  }
  const std::string& base = settings->docs_path;
  settings->docs_files[""] = {
      "text/html; charset=utf-8",
      absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
                   title, "</title>\n<link rel=\"stylesheet\" href=\"", base,
                   "swagger-ui.css\">\n</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
                   "<script src=\"", base, "swagger-ui-bundle.js\"></script>\n"
                   "<script>window.ui = SwaggerUIBundle({url: ", url,
                   ", dom_id: \"#swagger-ui\"});</script>\n</body>\n</html>\n")};
  return absl::OkStatus();
}

absl::StatusOr<std::string> OpenApiFromDescriptorSet(absl::string_view descriptor_set,
                                                     const std::string& service,
                                                     const OpenApiSettings& settings) {
  DescriptorSetBuilder builder;
  if (absl::Status s = builder.AddSerialized(descriptor_set, "the descriptor set"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> pool =
      builder.Build();
  if (!pool.ok()) return pool.status();
  if (service.empty()) return absl::InvalidArgumentError("a service name is required");
  if ((*pool)->FindServiceByName(service) == nullptr) {
    return absl::NotFoundError(absl::StrCat("the descriptor set has no service named ", service));
  }
  const std::vector<std::string> services = {service};
  absl::StatusOr<std::unique_ptr<const transcoder::RouteSet>> routes =
      transcoder::RouteSet::Create(**pool, services, settings.routes);
  if (!routes.ok()) return routes.status();
  OpenApiOptions options = settings.document;
  options.title = service;
  return GenerateOpenApi(**routes, services, options);
}

}  // namespace gateway::openapi
