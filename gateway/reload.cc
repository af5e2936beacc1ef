#include "gateway/reload.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/config/config_loader.h"
#include "gateway/log.h"
#include "gateway/metrics/metrics.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace gateway {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using ::google::protobuf::util::MessageDifferencer;

// Whether `field` of `a` and `b` differ (presence, value, every element).
bool FieldDiffers(const Message& a, const Message& b, const FieldDescriptor* field) {
  std::unique_ptr<Message> with_b(a.New());
  with_b->CopyFrom(a);
  std::unique_ptr<Message> from_b(b.New());
  from_b->CopyFrom(b);
  with_b->GetReflection()->SwapFields(with_b.get(), from_b.get(), {field});
  return !MessageDifferencer::Equals(a, *with_b);
}

// Whether a reload applies `key` ("auth", "http_listener.transcoding", ...).
bool Reloads(const std::string& key, bool http_tls_reloads) {
  static const std::set<std::string>* const kReloaded = new std::set<std::string>{
      "descriptor_sets", "backends", "services", "auth", "quotas", "retries",
      "deadlines", "http_listener.transcoding", "logging"};
  if (key == "deadlines.http_timeout_header") return false;
  if (key == "http_listener.tls" || key == "grpc_listener.tls") return http_tls_reloads;
  if (kReloaded->count(key) > 0) return true;
  const std::string top = key.substr(0, key.find('.'));
  return top != "deadlines" && kReloaded->count(top) > 0;
}

constexpr char kRedacted[] = "<redacted>";

bool IsSecretName(const std::string& name) {
  if (absl::EndsWith(name, "_file") || absl::EndsWith(name, "_path") ||
      absl::EndsWith(name, "_header") || absl::EndsWith(name, "_directory")) {
    return false;
  }
  for (const char* word : {"token", "secret", "password", "credential"}) {
    if (absl::StrContains(name, word)) return true;
  }
  return false;
}

// "scheme://user:pass@host/..." -> "scheme://<redacted>@host/..."; other text unchanged.
std::string RedactUserInfo(const std::string& value) {
  const std::size_t scheme = value.find("://");
  if (scheme == std::string::npos) return value;
  const std::size_t start = scheme + 3;
  const std::size_t end = value.find_first_of("/?#", start);
  const std::size_t at = value.rfind('@', end == std::string::npos ? value.size() : end);
  if (at == std::string::npos || at < start) return value;
  return absl::StrCat(value.substr(0, start), kRedacted, value.substr(at));
}

void Redact(Message* message) {
  const Reflection* r = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*message, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*message, f); ++i) {
          Redact(r->MutableRepeatedMessage(message, f, i));
        }
      } else {
        Redact(r->MutableMessage(message, f));
      }
      continue;
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) continue;
    const bool secret = IsSecretName(f->name());
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*message, f); ++i) {
        const std::string v = r->GetRepeatedString(*message, f, i);
        r->SetRepeatedString(message, f, i, secret ? kRedacted : RedactUserInfo(v));
      }
    } else {
      const std::string v = r->GetString(*message, f);
      r->SetString(message, f, secret ? std::string(kRedacted) : RedactUserInfo(v));
    }
  }
}

int RuleCount(const config::v1::Config& c) {
  return c.auth().rules_size() + c.quotas().rules_size();
}

}  // namespace

std::vector<std::string> RestartRequired(const config::v1::Config& before,
                                         const config::v1::Config& after,
                                         bool http_tls_reloads) {
  std::set<std::string> keys;
  const Descriptor* d = config::v1::Config::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (!FieldDiffers(before, after, f)) continue;
    const Reflection* r = before.GetReflection();
    const bool nested = f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated() &&
                        r->HasField(before, f) && r->HasField(after, f);
    if (!nested) {
      // Added, removed, or a list: the key as a whole.
      if (!Reloads(f->name(), http_tls_reloads)) keys.insert(f->name());
      continue;
    }
    const Message& a = r->GetMessage(before, f);
    const Message& b = r->GetMessage(after, f);
    const Descriptor* sub = f->message_type();
    for (int j = 0; j < sub->field_count(); ++j) {
      if (!FieldDiffers(a, b, sub->field(j))) continue;
      const std::string key = absl::StrCat(f->name(), ".", sub->field(j)->name());
      // TLS is reloaded in place: turning it on or off needs a restart.
      const bool tls_both =
          f->name() == "grpc_listener"
              ? before.grpc_listener().has_tls() && after.grpc_listener().has_tls()
              : before.http_listener().has_tls() && after.http_listener().has_tls();
      if (!Reloads(key, http_tls_reloads && tls_both)) keys.insert(key);
    }
  }
  return std::vector<std::string>(keys.begin(), keys.end());
}

std::string RedactedConfigJson(const config::v1::Config& config) {
  config::v1::Config copy = config;
  Redact(&copy);
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(copy, &json, options);
  if (!status.ok()) {
    return absl::StrCat("{\"error\": \"", std::string(status.message()), "\"}");
  }
  return json;
}

ConfigReloader::ConfigReloader(std::string path, std::shared_ptr<const GatewayConfig> initial,
                               metrics::MetricRegistry* metrics, Apply apply,
                               Validate validate, bool http_tls_reloads)
    : path_(std::move(path)),
      metrics_(metrics),
      apply_(std::move(apply)),
      validate_(std::move(validate)),
      http_tls_reloads_(http_tls_reloads),
      current_(std::move(initial)),
      loaded_at_(absl::Now()) {
  if (metrics_ == nullptr) return;
  metrics_->AddCallback("gateway_config_reloads_total",
                        "Config reloads (SIGHUP or the admin API's Reload), by result "
                        "(applied, refused).",
                        metrics::Type::kCounter, {"result"}, [this] {
                          const Stats s = stats();
                          return std::vector<metrics::Sample>{
                              {{"applied"}, static_cast<double>(s.applied)},
                              {{"refused"}, static_cast<double>(s.refused)}};
                        });
  metrics_->AddCallback(
      "gateway_config_last_reload_success_timestamp_seconds",
      "When a reload was last applied, in Unix seconds (0 before the first).",
      metrics::Type::kGauge, {}, [this] {
        const Stats s = stats();
        const double t = s.last_success == absl::InfinitePast()
                             ? 0
                             : absl::ToDoubleSeconds(s.last_success - absl::UnixEpoch());
        return std::vector<metrics::Sample>{{{}, t}};
      });
}

std::shared_ptr<const GatewayConfig> ConfigReloader::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Time ConfigReloader::loaded_at() const {
  absl::MutexLock lock(&mu_);
  return loaded_at_;
}

ConfigReloader::Stats ConfigReloader::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::StatusOr<ConfigReloader::Result> ConfigReloader::Reload() {
  absl::MutexLock reload_lock(&reload_mu_);
  absl::StatusOr<Result> result = ReloadLocked();
  absl::MutexLock lock(&mu_);
  if (result.ok()) {
    ++stats_.applied;
    stats_.last_success = absl::Now();
    LogLine(result->summary);
    for (const std::string& p : result->problems) LogLine(absl::StrCat("reload: ", p));
  } else {
    ++stats_.refused;
    LogWarn(result.status().message());
  }
  return result;
}

absl::StatusOr<ConfigReloader::Result> ConfigReloader::ReloadLocked() {
  auto refused = [this](absl::string_view message) {
    return absl::InvalidArgumentError(
        absl::StrCat("reload refused: invalid config ", path_, ": ", message));
  };
  absl::StatusOr<config::v1::Config> proto = LoadConfigFile(path_);
  if (!proto.ok()) {
    // As at start: the loader's message names the file and line.
    return absl::InvalidArgumentError(
        absl::StrCat("reload refused: invalid config: ", proto.status().message()));
  }
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> next =
      CompileConfig(*proto, DirName(path_), metrics_, current().get());
  if (!next.ok()) return refused(next.status().message());
  if (validate_) {
    absl::Status status = validate_(**next);
    if (!status.ok()) return refused(status.message());
  }
  const std::shared_ptr<const GatewayConfig> before = current();
  Result result;
  absl::Status status = apply_(*next, &result.problems);
  if (!status.ok()) return refused(status.message());
  ConfigureLogging((*next)->logging);
  result.restart_required = RestartRequired(before->proto, (*next)->proto, http_tls_reloads_);
  result.summary = absl::StrCat(
      "reload applied: ", (*next)->routes->services().size(), " services (was ",
      before->routes->services().size(), "), ", (*next)->backends.size(), " backends (was ",
      before->backends.size(), "), ", RuleCount((*next)->proto), " rules (was ",
      RuleCount(before->proto), ")");
  if (!result.restart_required.empty()) {
    absl::StrAppend(&result.summary, "; these changes need a restart: ",
                    absl::StrJoin(result.restart_required, ", "));
  }
  absl::MutexLock lock(&mu_);
  current_ = *std::move(next);
  loaded_at_ = absl::Now();
  return result;
}

}  // namespace gateway
