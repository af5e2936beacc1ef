#include "gateway/upstream/backend_call.h"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/metrics/metrics.h"
#include "gateway/upstream/grpc_framing.h"

namespace gateway::upstream {
namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::max(d, absl::ZeroDuration()));
}

bool HasGrpcStatus(const CallResult& result) {
  for (const auto& [key, value] : result.trailers) {
    if (key == "grpc-status") return true;
  }
  return false;
}

// What an attempt's end says of its endpoint (outlier detection).
EndpointOutcome OutcomeOf(const CallResult& result, bool local_end) {
  if (local_end || result.unprocessed) return EndpointOutcome::kLocal;
  const absl::StatusCode code = result.status.code();
  if (HasGrpcStatus(result)) {
    return code == absl::StatusCode::kUnavailable ? EndpointOutcome::kUnavailable
                                                  : EndpointOutcome::kSuccess;
  }
  switch (code) {
    case absl::StatusCode::kOk:
      return EndpointOutcome::kSuccess;
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return EndpointOutcome::kLocal;
    default:  // the stream or the connection broke, or the backend spoke no gRPC
      return EndpointOutcome::kReset;
  }
}

void Count(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

absl::BitGen& Gen() {
  thread_local absl::BitGen gen;
  return gen;
}

}  // namespace

std::shared_ptr<BackendCall> BackendCall::Start(ClusterWorker& worker, Spec spec,
                                                Callbacks callbacks) {
  // Binary values travel as base64 (unpadded, as gRPC sends them).
  for (auto& [key, value] : spec.metadata) {
    if (absl::EndsWith(key, "-bin")) {
      std::string encoded = absl::Base64Escape(value);
      while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
      value = std::move(encoded);
    }
  }
  std::shared_ptr<BackendCall> call(
      new BackendCall(worker, std::move(spec), std::move(callbacks)));
  // The first attempt starts now (no trip through the event loop); an end that it reaches
  // at once (no connection, the deadline passed) is posted, since callbacks never run
  // inside Start().
  call->in_start_ = true;
  call->StartAttempt();
  call->in_start_ = false;
  return call;
}

BackendCall::BackendCall(ClusterWorker& worker, Spec spec, Callbacks callbacks)
    : worker_(worker),
      spec_(std::move(spec)),
      cb_(std::move(callbacks)),
      started_(absl::Now()) {}

BackendCall::~BackendCall() {
  if (holding_retry_) worker_.cluster()->ReleaseRetry();
}

std::string BackendCall::endpoint() const { return endpoint_; }

void BackendCall::StartAttempt() {
  if (done_) return;
  const absl::Time now = absl::Now();
  if (spec_.deadline <= now) {
    Finish({absl::DeadlineExceededError("the call's deadline passed"), {}, false, {}});
    return;
  }
  ++attempt_id_;
  attempt_deadline_ = spec_.deadline;
  if (spec_.retry != nullptr && spec_.retry->per_try_timeout != absl::InfiniteDuration()) {
    attempt_deadline_ = std::min(spec_.deadline, now + spec_.retry->per_try_timeout);
  }
  const uint32_t attempt = attempt_id_;
  // A retry goes to another endpoint when there is one.
  PickOptions pick;
  pick.avoid = last_endpoint_.get();
  worker_.Acquire(pick, attempt_deadline_,
                  [self = shared_from_this(), attempt](absl::StatusOr<Lease> lease) {
                    self->OnLease(attempt, std::move(lease));
                  });
}

void BackendCall::OnLease(uint32_t attempt, absl::StatusOr<Lease> lease) {
  if (done_ || attempt != attempt_id_) return;  // (a dropped Lease finishes itself)
  if (!lease.ok()) {
    // No connection: the backend never saw this attempt.
    CallResult result;
    result.status = lease.status();
    result.unprocessed = lease.status().code() == absl::StatusCode::kUnavailable;
    OnAttemptDone(attempt, result);
    return;
  }
  lease_.emplace(*std::move(lease));
  endpoint_ = lease_->endpoint->endpoint().ToString();
  last_endpoint_ = lease_->endpoint;
  CallSpec call;
  call.path = spec_.path;
  call.deadline = attempt_deadline_;
  call.metadata = spec_.metadata;
  call.framed = spec_.framed;
  call.encoding = spec_.encoding;
  call.accept_encoding = spec_.accept_encoding;
  if (streams_started_ > 0) {
    call.metadata.emplace_back("grpc-previous-rpc-attempts", absl::StrCat(streams_started_));
  }
  if (spec_.on_attempt_start) {
    call.metadata.erase(std::remove_if(call.metadata.begin(), call.metadata.end(),
                                       [](const auto& m) { return m.first == "traceparent"; }),
                        call.metadata.end());
    call.metadata.emplace_back("traceparent", spec_.on_attempt_start(spec_.path, endpoint_));
  }
  GrpcStreamCallbacks callbacks;
  std::weak_ptr<BackendCall> weak = weak_from_this();
  callbacks.on_headers = [weak, attempt](Headers headers) {
    auto self = weak.lock();
    if (!self || self->done_ || attempt != self->attempt_id_) return;
    // Held until a message goes up (or the call ends): the headers alone do not commit the
    // call, since nothing has reached the client yet.
    self->headers_ = std::move(headers);
    self->headers_held_ = true;
  };
  callbacks.on_message = [weak, attempt](std::string message) {
    auto self = weak.lock();
    if (!self || self->done_ || attempt != self->attempt_id_) return;
    if (self->spec_.single_response) {
      // Held until the end: until then nothing reached the client and the call may still
      // be tried again.
      self->response_.push_back(std::move(message));
      if (self->stream_ != nullptr) self->stream_->RequestNext();
      return;
    }
    if (!self->committed_) {
      // The response starts: this call is not tried again.
      self->committed_ = true;
      if (self->holding_retry_) {
        self->holding_retry_ = false;
        self->worker_.cluster()->ReleaseRetry();
      }
      self->DropHeld();
      self->DeliverHeaders();
      if (self->done_) return;
    }
    if (self->cb_.on_message) self->cb_.on_message(std::move(message));
  };
  callbacks.on_drained = [weak, attempt] {
    auto self = weak.lock();
    if (!self || self->done_ || attempt != self->attempt_id_) return;
    self->OnDrained();
  };
  callbacks.on_done = [weak, attempt](const CallResult& result) {
    auto self = weak.lock();
    if (!self) return;
    self->OnAttemptDone(attempt, result);
  };
  absl::StatusOr<std::shared_ptr<GrpcStream>> stream =
      lease_->connection->StartStream(std::move(call), std::move(callbacks));
  if (!stream.ok()) {
    CallResult result;
    result.status = stream.status();
    result.unprocessed = stream.status().code() == absl::StatusCode::kUnavailable;
    OnAttemptDone(attempt, result);
    return;
  }
  stream_ = *std::move(stream);
  ++streams_started_;
  for (const std::string& message : held_) {
    if (absl::Status s = stream_->Write(message); !s.ok()) break;
  }
  if (!replayable_ || held_bytes_ > ReplayLimit()) DropHeld();
  if (writes_done_) stream_->WritesDone();
  if (writer_waiting_) stream_->NotifyWhenDrained();
}

void BackendCall::OnAttemptDone(uint32_t attempt, const CallResult& result) {
  if (done_ || attempt != attempt_id_) return;
  if (spec_.on_attempt_end) spec_.on_attempt_end(result.status);
  const absl::Time now = absl::Now();
  // The attempt ran out of its per-try time: the gateway's timer, or the backend's own
  // (it got the attempt's deadline as grpc-timeout, and may end the call a moment earlier).
  const bool per_try_timeout =
      result.status.code() == absl::StatusCode::kDeadlineExceeded &&
      attempt_deadline_ < spec_.deadline && spec_.retry != nullptr &&
      now >= attempt_deadline_ - std::min(absl::Milliseconds(50),
                                          spec_.retry->per_try_timeout / 10);
  if (lease_.has_value()) {
    lease_->Finish(OutcomeOf(result, cancelled_));
    lease_.reset();
  }
  stream_.reset();
  if (!result.unprocessed) ++attempts_;
  if (holding_retry_) {
    holding_retry_ = false;
    worker_.cluster()->ReleaseRetry();
  }
  ++attempt_id_;  // whatever the old stream still says is stale now
  absl::Duration delay;
  if (!cancelled_ && MayRetry(result, per_try_timeout, &delay)) {
    headers_held_ = false;  // that attempt's
    headers_.clear();
    response_.clear();
    ScheduleRetry(delay);
    return;
  }
  Finish(result);
}

bool BackendCall::MayRetry(const CallResult& result, bool per_try_timeout,
                           absl::Duration* delay) {
  if (committed_ || !replayable_) return false;
  if (absl::Now() >= spec_.deadline) return false;
  Cluster& cluster = *worker_.cluster();
  if (result.unprocessed) {
    if (transparent_ >= kMaxTransparentRetries) {
      Count(cluster.retries_exhausted_total);
      return false;
    }
    ++transparent_;
    Count(cluster.transparent_retries_total);
    *delay = absl::ZeroDuration();
    return true;
  }
  const RetryPolicy* policy = spec_.retry;
  if (policy == nullptr) return false;
  if (!per_try_timeout && !RetriesOn(*policy, result.status.code())) return false;
  if (attempts_ >= policy->max_attempts) {
    Count(cluster.retries_exhausted_total);
    return false;
  }
  const Pushback pushback = ParsePushback(result.trailers);
  if (pushback.stop) return false;
  if (!BudgetAllows(*policy, cluster.active_requests.load(std::memory_order_relaxed),
                    cluster.active_retries.load(std::memory_order_relaxed)) ||
      !cluster.TryAcquireRetry()) {
    Count(cluster.retries_budget_exceeded_total);
    return false;
  }
  Count(cluster.retries_total);
  holding_retry_ = true;
  *delay = pushback.present ? pushback.delay : RetryBackoff(*policy, attempts_, Gen());
  return true;
}

void BackendCall::ScheduleRetry(absl::Duration delay) {
  const absl::Time now = absl::Now();
  if (now + delay >= spec_.deadline) {
    Finish({absl::DeadlineExceededError("the call's deadline passed before it could be tried again"),
            {}, false, {}});
    return;
  }
  if (delay <= absl::ZeroDuration()) {
    boost::asio::post(worker_.io(), [self = shared_from_this()] { self->StartAttempt(); });
    return;
  }
  if (!timer_.has_value()) timer_.emplace(worker_.io());
  timer_->expires_after(ToChrono(delay));
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->done_) return;
    self->StartAttempt();
  });
}

void BackendCall::DeliverHeaders() {
  if (!headers_held_) return;
  headers_held_ = false;
  if (cb_.on_headers) cb_.on_headers(std::move(headers_));
  headers_.clear();
}

void BackendCall::Finish(CallResult result) {
  if (done_) return;
  if (in_start_) {
    boost::asio::post(worker_.io(),
                      [self = shared_from_this(), result = std::move(result)]() mutable {
                        self->Finish(std::move(result));
                      });
    return;
  }
  done_ = true;
  if (timer_.has_value()) timer_->cancel();
  if (holding_retry_) {
    holding_retry_ = false;
    worker_.cluster()->ReleaseRetry();
  }
  held_.clear();
  DeliverHeaders();
  for (std::string& message : response_) {
    if (cb_.on_message) cb_.on_message(std::move(message));
  }
  response_.clear();
  Cluster& cluster = *worker_.cluster();
  if (result.status.ok() && (attempts_ > 1 || transparent_ > 0)) {
    Count(cluster.retries_succeeded_total);
  }
  if (metrics::Histogram* h = cluster.call_duration.load(std::memory_order_relaxed)) {
    h->ObserveDuration(absl::Now() - started_);
  }
  cb_.on_done(result);
}

size_t BackendCall::ReplayLimit() const {
  return spec_.retry != nullptr ? spec_.retry->max_replay_bytes : RetryPolicy{}.max_replay_bytes;
}

void BackendCall::Write(std::string message) { Send(std::move(message), /*notify=*/true); }

void BackendCall::WriteLast(std::string message) {
  Send(std::move(message), /*notify=*/false);
  WritesDone();
}

void BackendCall::Send(std::string message, bool notify) {
  if (done_ || writes_done_) return;
  if (notify) writer_waiting_ = true;
  if (stream_ == nullptr) {
    // No stream yet (or between attempts): held until one starts.
    held_bytes_ += message.size();
    held_.push_back(std::move(message));
    return;
  }
  (void)stream_->Write(message);
  if (notify) stream_->NotifyWhenDrained();
  if (!replayable_) return;
  held_bytes_ += message.size();
  if (held_bytes_ > ReplayLimit()) {
    DropHeld();
  } else {
    held_.push_back(std::move(message));
  }
}

void BackendCall::DropHeld() {
  replayable_ = false;
  held_.clear();
  held_bytes_ = 0;
}

void BackendCall::OnDrained() {
  if (!writer_waiting_) return;
  writer_waiting_ = false;
  if (cb_.on_writable) cb_.on_writable();
}

void BackendCall::WritesDone() {
  if (done_ || writes_done_) return;
  writes_done_ = true;
  if (stream_ != nullptr) stream_->WritesDone();
}

void BackendCall::RequestNext() {
  if (stream_ != nullptr && !done_) stream_->RequestNext();
}

void BackendCall::Cancel() {
  if (done_ || cancelled_) return;
  cancelled_ = true;
  if (stream_ != nullptr) {
    stream_->Cancel();  // its on_done ends the call (posted by the stream)
    return;
  }
  // Waiting for a connection or a retry: end now, on the next turn of the loop.
  ++attempt_id_;
  if (timer_.has_value()) timer_->cancel();
  boost::asio::post(worker_.io(), [self = shared_from_this()] {
    self->Finish({absl::CancelledError("the call was cancelled"), {}, false, {}});
  });
}

}  // namespace gateway::upstream
