#include "gateway/upstream/health_checker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/log.h"

namespace gateway::upstream {

namespace {

constexpr absl::string_view kCheckPath = "/grpc.health.v1.Health/Check";

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads a varint at `*pos`; false when truncated or longer than 10 bytes.
bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*pos >= in.size()) return false;
    const uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

const char* StatusName(uint64_t status) {
  switch (status) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "an unknown status";
  }
}

}  // namespace

std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;  // proto3: the default is not sent
  out.push_back(0x0a);              // field 1, length-delimited
  AppendVarint(service.size(), &out);
  out.append(service.data(), service.size());
  return out;
}

absl::StatusOr<uint64_t> DecodeHealthCheckStatus(absl::string_view in) {
  uint64_t status = 0;
  size_t pos = 0;
  while (pos < in.size()) {
    uint64_t tag;
    if (!ReadVarint(in, &pos, &tag)) {
      return absl::InvalidArgumentError("HealthCheckResponse: truncated tag");
    }
    const uint64_t field = tag >> 3;
    const uint32_t wire = tag & 7;
    if (field == 0) return absl::InvalidArgumentError("HealthCheckResponse: field number 0");
    uint64_t v;
    switch (wire) {
      case 0:
        if (!ReadVarint(in, &pos, &v)) {
          return absl::InvalidArgumentError("HealthCheckResponse: truncated varint");
        }
        if (field == 1) status = v;
        break;
      case 1:
      case 5: {
        const size_t n = wire == 1 ? 8 : 4;
        if (in.size() - pos < n) {
          return absl::InvalidArgumentError("HealthCheckResponse: truncated fixed field");
        }
        pos += n;
        break;
      }
      case 2:
        if (!ReadVarint(in, &pos, &v) || v > in.size() - pos) {
          return absl::InvalidArgumentError(
              "HealthCheckResponse: truncated length-delimited field");
        }
        pos += v;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("HealthCheckResponse: unsupported wire type ", wire));
    }
  }
  return status;
}

struct HealthChecker::Target {
  explicit Target(boost::asio::io_context& io, std::shared_ptr<EndpointState> e)
      : endpoint(std::move(e)), timer(io) {}
  std::shared_ptr<EndpointState> endpoint;
  std::shared_ptr<Http2Connection> connection;
  std::shared_ptr<GrpcStream> stream;  // the check in flight
  boost::asio::steady_timer timer;
  std::string response;  // the check's response message
  bool got_response = false;
  bool decided = false;  // a first verdict was reached
  uint32_t successes = 0;
  uint32_t failures = 0;
  bool stopped = false;
};

HealthChecker::HealthChecker(boost::asio::io_context& io, std::string backend,
                             HealthCheckOptions options, ConnectionOptions connection)
    : io_(io), backend_(std::move(backend)), options_(std::move(options)),
      connection_(std::move(connection)) {
  connection_.connect_timeout = std::min(connection_.connect_timeout, options_.timeout);
}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Update(const EndpointSet& endpoints) {
  if (stopped_) return;
  absl::flat_hash_set<const EndpointState*> wanted;
  for (const auto& e : endpoints) wanted.insert(e.get());
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (!wanted.contains(it->first)) {
      StopTarget(*it->second);
      targets_.erase(it++);
    } else {
      ++it;
    }
  }
  for (const auto& e : endpoints) {
    if (targets_.contains(e.get())) continue;
    auto target = std::make_shared<Target>(io_, e);
    targets_.emplace(e.get(), target);
    RunCheck(target);
  }
}

void HealthChecker::Stop() {
  if (stopped_) return;
  stopped_ = true;
  auto targets = std::move(targets_);
  targets_.clear();
  for (auto& [key, target] : targets) StopTarget(*target);
}

void HealthChecker::StopTarget(Target& target) {
  target.stopped = true;
  target.timer.cancel();
  auto stream = std::move(target.stream);
  auto connection = std::move(target.connection);
  if (stream) stream->Cancel();
  if (connection) connection->Close();
}

void HealthChecker::RunCheck(const std::shared_ptr<Target>& target) {
  if (stopped_ || target->stopped) return;
  if (!target->connection ||
      target->connection->state() == Http2Connection::State::kClosed ||
      target->connection->state() == Http2Connection::State::kDraining) {
    if (target->connection) target->connection->Close();
    target->connection = Http2Connection::Create(io_, target->endpoint->endpoint(), connection_);
  }
  target->response.clear();
  target->got_response = false;

  std::weak_ptr<HealthChecker> weak_self = weak_from_this();
  std::weak_ptr<Target> weak_target = target;
  GrpcStreamCallbacks cb;
  cb.on_message = [weak_target](std::string message) {
    auto t = weak_target.lock();
    if (!t) return;
    if (!t->got_response) {
      t->got_response = true;
      t->response = std::move(message);
    }
    // Ready for what follows (the trailers; a second message is ignored).
    if (t->stream) t->stream->RequestNext();
  };
  cb.on_done = [weak_self, weak_target](const CallResult& result) {
    auto self = weak_self.lock();
    auto t = weak_target.lock();
    if (!self || !t || t->stopped) return;
    t->stream.reset();
    if (!result.status.ok()) {
      std::string why = absl::StatusCodeToString(result.status.code());
      if (!result.status.message().empty()) absl::StrAppend(&why, ": ", result.status.message());
      self->OnResult(t, false, why);
      return;
    }
    if (!t->got_response) {
      self->OnResult(t, false, "OK without a response message");
      return;
    }
    absl::StatusOr<uint64_t> status = DecodeHealthCheckStatus(t->response);
    if (!status.ok()) {
      self->OnResult(t, false, std::string(status.status().message()));
      return;
    }
    self->OnResult(t, *status == kHealthServing, StatusName(*status));
  };

  CallSpec spec;
  spec.path = std::string(kCheckPath);
  spec.deadline = connection_.now() + options_.timeout;
  absl::StatusOr<std::shared_ptr<GrpcStream>> stream =
      target->connection->StartStream(std::move(spec), std::move(cb));
  if (!stream.ok()) {
    OnResult(target, false, std::string(stream.status().message()));
    return;
  }
  target->stream = *stream;
  if (!target->stream->done()) {
    (void)target->stream->Write(EncodeHealthCheckRequest(options_.service));
    target->stream->WritesDone();
  }
}

void HealthChecker::OnResult(const std::shared_ptr<Target>& target, bool serving,
                             const std::string& why) {
  ++checks_total_;
  EndpointState& e = *target->endpoint;
  if (serving) {
    target->failures = 0;
    ++target->successes;
  } else {
    target->successes = 0;
    ++target->failures;
  }
  const bool first = !target->decided;
  target->decided = true;
  const bool was = e.healthy();
  if (serving && !was && (first || target->successes >= options_.healthy_threshold)) {
    e.set_healthy(true);
    LogInfo(absl::StrCat("backend \"", backend_, "\": endpoint ", e.endpoint().ToString(),
                         " is healthy (health check: SERVING)"));
  } else if (!serving && was && (first || target->failures >= options_.unhealthy_threshold)) {
    e.set_healthy(false);
    LogWarn(absl::StrCat("backend \"", backend_, "\": endpoint ", e.endpoint().ToString(),
                         " is unhealthy (health check: ", why, ")"));
  }

  std::weak_ptr<HealthChecker> weak_self = weak_from_this();
  std::weak_ptr<Target> weak_target = target;
  target->timer.expires_after(absl::ToChronoNanoseconds(options_.interval));
  target->timer.async_wait([weak_self, weak_target](const boost::system::error_code& ec) {
    auto self = weak_self.lock();
    auto t = weak_target.lock();
    if (ec || !self || !t || t->stopped) return;
    self->RunCheck(t);
  });
}

}  // namespace gateway::upstream
