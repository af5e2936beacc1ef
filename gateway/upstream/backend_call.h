// BackendCall: one gRPC call to a backend cluster as a front end sees it, on the worker that
// took the request: picks an endpoint and a connection (ClusterWorker), starts the stream,
// hands request messages on with back-pressure, hands response messages up as the consumer
// asks for them, and tries the call again when the retry policy allows (retry_policy.h).
//
// Thread model: everything runs on the worker's io_context thread (the ClusterWorker's);
// no method may be called from another thread; callbacks run on that thread, never inside
// Start(), Write(), WritesDone(), RequestNext() or Cancel().
//
// Ownership: Start() returns a shared_ptr; the call keeps itself alive until on_done ran.
//
//   BackendCall::Callbacks cb;
//   cb.on_headers = [&](const Headers& h) { ... };        // the response has started
//   cb.on_message = [&](std::string m) { Send(m); call->RequestNext(); };
//   cb.on_writable = [&] { ReadMoreBody(); };              // after a Write(): send the next
//   cb.on_done = [&](const CallResult& r) { Finish(r.status); };
//   auto call = BackendCall::Start(worker, {"/pkg.Svc/M", deadline, metadata, &policy}, cb);
//   call->Write(request);
//   call->WritesDone();
#ifndef GATEWAY_UPSTREAM_BACKEND_CALL_H_
#define GATEWAY_UPSTREAM_BACKEND_CALL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/upstream/cluster_worker.h"
#include "gateway/upstream/http2_connection.h"
#include "gateway/upstream/retry_policy.h"

namespace gateway::upstream {

using Headers = std::vector<std::pair<std::string, std::string>>;

class BackendCall : public std::enable_shared_from_this<BackendCall> {
 public:
  struct Spec {
    std::string path;  // "/package.Service/Method"
    absl::Time deadline = absl::InfiniteFuture();
    // Request metadata (valid keys and values: the front end's metadata policy checked
    // them); the values of "-bin" keys are raw bytes (sent base64-encoded). Each retry adds
    // grpc-previous-rpc-attempts.
    Headers metadata;
    // Null: no retries (calls the backend did not process are still tried again).
    const RetryPolicy* retry = nullptr;
    // The consumer sends nothing to its client before the call ends (a unary or
    // client-streaming response): the response message is held and handed over with the
    // end (on_headers, on_message, on_done in a row), so the call may be tried again until
    // then, even after a whole message arrived.
    bool single_response = false;
    // Bytes both ways are gRPC frames as on the wire, in pieces of any size (prefixes
    // included, compressed ones passed through): CallSpec::framed. Retries replay the
    // written pieces; the first response piece commits the call. `encoding` and `accept_encoding` are sent as
    // grpc-encoding and grpc-accept-encoding when not empty (valid header values).
    bool framed = false;
    std::string encoding;
    std::string accept_encoding;
    // Tracing hooks (empty: none). on_attempt_start runs as an attempt's stream starts and
    // returns the traceparent sent with it (in place of the client's); on_attempt_end gets
    // the attempt's status.
    std::function<std::string(absl::string_view path, absl::string_view endpoint)>
        on_attempt_start;
    std::function<void(const absl::Status&)> on_attempt_end;
  };

  struct Callbacks {
    // The response headers, just before the first response message (or on_done): a call
    // is tried again only until a response message went up, so an attempt's headers are
    // held until then. Handed over.
    std::function<void(Headers)> on_headers;
    // One response message; the next one comes after RequestNext().
    std::function<void(std::string)> on_message;
    // After Write(): the call has sent what it was given and takes the next message.
    std::function<void()> on_writable;
    // The end, exactly once (also after Cancel()). Required.
    std::function<void(const CallResult&)> on_done;
  };

  static std::shared_ptr<BackendCall> Start(ClusterWorker& worker, Spec spec,
                                            Callbacks callbacks);
  ~BackendCall();
  BackendCall(const BackendCall&) = delete;
  BackendCall& operator=(const BackendCall&) = delete;

  // Sends one request message; on_writable runs once it has been sent on (HTTP/2 flow
  // control took it). Ignored after WritesDone() or the end.
  void Write(std::string message);
  // Sends the last request message and ends the request (Write + WritesDone), without
  // on_writable: a caller with nothing more to send is not woken for it.
  void WriteLast(std::string message);
  // No more request messages.
  void WritesDone();
  // The consumer takes the next response message.
  void RequestNext();
  // Ends the call with CANCELLED (RST_STREAM CANCEL to the backend); on_done still runs.
  void Cancel();

  // Attempts the backend saw so far (1 for a call that was not tried again).
  uint32_t attempts() const { return attempts_; }
  // The endpoint of the latest attempt ("" before one had a connection).
  std::string endpoint() const;
  bool done() const { return done_; }

 private:
  BackendCall(ClusterWorker& worker, Spec spec, Callbacks callbacks);

  void StartAttempt();
  void OnLease(uint32_t attempt, absl::StatusOr<Lease> lease);
  void OnAttemptDone(uint32_t attempt, const CallResult& result);
  // Whether `result` of the current attempt may be tried again; sets *delay.
  bool MayRetry(const CallResult& result, bool per_try_timeout, absl::Duration* delay);
  void ScheduleRetry(absl::Duration delay);
  void Finish(CallResult result);
  void OnDrained();
  // Hands the held response headers to the consumer (once).
  void DeliverHeaders();
  size_t ReplayLimit() const;
  // The call can no longer be tried again: forget the held messages.
  void DropHeld();
  // Write and WriteLast: `notify` asks for on_writable once the stream took the message.
  void Send(std::string message, bool notify);

  ClusterWorker& worker_;
  Spec spec_;
  Callbacks cb_;
  // The backoff before a retry; made when first needed (most calls never wait).
  std::optional<boost::asio::steady_timer> timer_;
  const absl::Time started_;  // for Cluster::call_duration

  uint32_t attempt_id_ = 0;  // increases with every attempt; stale callbacks are ignored
  uint32_t attempts_ = 0;    // attempts counted against max_attempts
  uint32_t transparent_ = 0; // retries of calls the backend did not process
  uint32_t streams_started_ = 0;
  bool in_start_ = false;  // inside Start(): Finish() is posted
  bool holding_retry_ = false;  // a cluster retry unit is held (TryAcquireRetry)
  std::optional<Lease> lease_;
  std::shared_ptr<GrpcStream> stream_;
  absl::Time attempt_deadline_ = absl::InfiniteFuture();
  std::string endpoint_;
  std::shared_ptr<EndpointState> last_endpoint_;  // of the latest attempt (a retry avoids it)

  // Request side. `held_`: every message so far while the call may be tried again
  // (`replayable_`); once it may not, only those not yet written to a stream.
  std::vector<std::string> held_;
  size_t held_bytes_ = 0;
  bool replayable_ = true;
  bool writes_done_ = false;
  bool writer_waiting_ = false;

  // Response side.
  bool committed_ = false;  // a response message went to the consumer
  Headers headers_;         // the current attempt's response headers, until delivered
  std::vector<std::string> response_;  // single_response: the messages, until the end
  bool headers_held_ = false;
  bool done_ = false;
  bool cancelled_ = false;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_BACKEND_CALL_H_
