#include "gateway/openapi/openapi_endpoint.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "transcoder/status_mapping.h"

namespace gateway::openapi {

absl::StatusOr<std::shared_ptr<const std::string>> OpenApiEndpoint::Document(
    const std::shared_ptr<const RouteTable>& table, const std::string& service) const {
  {
    absl::MutexLock lock(&mu_);
    if (cache_.table.lock() == table) {
      if (service.empty() && cache_.all != nullptr) return cache_.all;
      if (!service.empty()) {
        auto it = cache_.services.find(service);
        if (it != cache_.services.end()) return it->second;
      }
    }
  }
  // Generated without the lock; two requests racing on a new table both generate the
  // same bytes, and either result is kept.
  OpenApiOptions options = settings_.document;
  std::vector<std::string> services;
  if (!service.empty()) {
    options.title = service;
    services.push_back(service);
  }
  absl::StatusOr<std::string> doc =
      GenerateOpenApi(table->transcoder().routes(), services, options);
  if (!doc.ok()) return doc.status();
  auto shared = std::make_shared<const std::string>(*std::move(doc));
  absl::MutexLock lock(&mu_);
  if (cache_.table.lock() != table) {
    cache_ = Cache();
    cache_.table = table;
  }
  if (service.empty()) {
    cache_.all = shared;
  } else {
    cache_.services[service] = shared;
  }
  return shared;
}

std::optional<OpenApiEndpoint::Response> OpenApiEndpoint::Serve(
    absl::string_view path, const std::shared_ptr<const RouteTable>& table) const {
  if (!settings_.enabled) return std::nullopt;
  if (!settings_.docs_path.empty()) {
    absl::string_view rest = path;
    const absl::string_view docs(settings_.docs_path.data(), settings_.docs_path.size() - 1);
    if (rest == docs || absl::ConsumePrefix(&rest, settings_.docs_path)) {
      if (rest == docs) rest = "";
      auto it = settings_.docs_files.find(std::string(rest));
      if (it != settings_.docs_files.end()) {
        return Response{200, it->second.content_type, it->second.content};
      }
    }
  }
  std::string service;
  if (path != settings_.path) {
    if (!absl::ConsumePrefix(&path, settings_.service_path_prefix) ||
        !absl::ConsumeSuffix(&path, ".json") || path.empty()) {
      return std::nullopt;
    }
    service = std::string(path);
    bool served = false;
    for (const ServiceBinding& b : table->services()) served = served || b.service == service;
    if (!served) {
      const absl::Status missing =
          absl::NotFoundError(absl::StrCat("no service named ", service, " is served"));
      return Response{404, "application/json", table->transcoder().ErrorBody(missing)};
    }
  }
  absl::StatusOr<std::shared_ptr<const std::string>> doc = Document(table, service);
  if (!doc.ok()) {
    return Response{transcoder::HttpStatusFromCode(doc.status().code()), "application/json",
                    table->transcoder().ErrorBody(doc.status())};
  }
  return Response{200, "application/json", **doc};
}

}  // namespace gateway::openapi
