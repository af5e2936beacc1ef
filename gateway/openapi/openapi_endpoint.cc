#include "gateway/openapi/openapi_endpoint.h"

#include <pthread.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "transcoder/status_mapping.h"

namespace gateway::openapi {

OpenApiEndpoint::~OpenApiEndpoint() {
  std::thread generator;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    generator = std::move(generator_);
  }
  if (generator.joinable()) generator.join();
}

void OpenApiEndpoint::Prepare(std::shared_ptr<const RouteTable> table) const {
  if (!settings_.enabled || table == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  pending_ = std::move(table);
  if (!generator_.joinable()) generator_ = std::thread([this] { Run(); });
}

bool OpenApiEndpoint::HasWork() const { return stopping_ || pending_ != nullptr; }

void OpenApiEndpoint::Run() const {
  pthread_setname_np(pthread_self(), "gw-openapi");
  for (;;) {
    std::shared_ptr<const RouteTable> table;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &OpenApiEndpoint::HasWork));
      if (stopping_) return;
      table = std::move(pending_);
      pending_ = nullptr;
    }
    std::shared_ptr<const Documents> documents = Generate(table);
    absl::MutexLock lock(&mu_);
    ready_ = std::move(documents);
  }
}

std::shared_ptr<const OpenApiEndpoint::Documents> OpenApiEndpoint::Generate(
    const std::shared_ptr<const RouteTable>& table) const {
  auto documents = std::make_shared<Documents>();
  documents->table = table;
  absl::StatusOr<std::string> all =
      GenerateOpenApi(table->transcoder().routes(), {}, settings_.document);
  if (!all.ok()) {
    documents->status = all.status();
    return documents;
  }
  documents->all = std::make_shared<const std::string>(*std::move(all));
  for (const ServiceBinding& binding : table->services()) {
    if (documents->services.contains(binding.service)) continue;
    OpenApiOptions options = settings_.document;
    options.title = binding.service;
    absl::StatusOr<std::string> one =
        GenerateOpenApi(table->transcoder().routes(), {binding.service}, options);
    if (!one.ok()) {
      documents->status = one.status();
      return documents;
    }
    documents->services.emplace(binding.service,
                                std::make_shared<const std::string>(*std::move(one)));
  }
  return documents;
}

bool OpenApiEndpoint::WaitReady(const std::shared_ptr<const RouteTable>& table,
                                absl::Duration timeout) const {
  struct Wanted {
    const OpenApiEndpoint* endpoint;
    const RouteTable* table;
  } wanted{this, table.get()};
  const auto ready = [](Wanted* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return w->endpoint->ready_ != nullptr &&
           (w->table == nullptr || w->endpoint->ready_->table.lock().get() == w->table);
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(+ready, &wanted), timeout);
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
  std::shared_ptr<const Documents> documents;
  {
    absl::MutexLock lock(&mu_);
    documents = ready_;
  }
  if (documents != nullptr && !documents->status.ok()) {
    return Response{transcoder::HttpStatusFromCode(documents->status.code()), "application/json",
                    table->transcoder().ErrorBody(documents->status)};
  }
  std::shared_ptr<const std::string> doc;
  if (documents != nullptr) {
    if (service.empty()) {
      doc = documents->all;
    } else if (auto it = documents->services.find(service); it != documents->services.end()) {
      doc = it->second;
    }
  }
  if (doc == nullptr) {
    const absl::Status generating = absl::UnavailableError(absl::StrCat(
        "the OpenAPI document ", service.empty() ? "" : absl::StrCat("of ", service, " "),
        "is being generated for the current routes; retry in a second"));
    return Response{503, "application/json", table->transcoder().ErrorBody(generating), 1};
  }
  return Response{200, "application/json", *doc};
}

}  // namespace gateway::openapi
