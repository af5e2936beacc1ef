#include "gateway/grpc/grpc_proxy.h"

#include <utility>

#include <atomic>
#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/access_log/access_log.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/metrics/metrics.h"
#include "grpc/grpc.h"
#include "grpc/support/time.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"

namespace gateway {

// The gRPC front end's metrics (docs/config.md, "Metrics"). The series of a method are
// resolved once (ForMethod, by its path, under a lock); workers cache them per Route, so a
// call only increments atomics.
class GrpcProxyServer::CallMetrics {
 public:
  static constexpr int kCodes = 17;  // grpc::StatusCode 0..16

  struct Method {
    const std::string label;
    metrics::Family<metrics::Counter>* finished_family;
    metrics::Counter* started;
    metrics::Histogram* duration;
    std::atomic<metrics::Counter*> finished[kCodes] = {};

    metrics::Counter* Finished(int code) {
      if (code < 0 || code >= kCodes) code = grpc::StatusCode::UNKNOWN;
      metrics::Counter* c = finished[code].load(std::memory_order_acquire);
      if (c == nullptr) {
        c = finished_family->Get({label, CodeName(code)});
        finished[code].store(c, std::memory_order_release);
      }
      return c;
    }
  };

  explicit CallMetrics(metrics::MetricRegistry* registry)
      : started_(&registry->AddCounter("gateway_grpc_calls_started_total",
                                       "Calls received by the gRPC front end, by method "
                                       "(\"unknown\" for a method no route serves).",
                                       {"method"})),
        finished_(&registry->AddCounter("gateway_grpc_calls_finished_total",
                                        "Calls of the gRPC front end ended, by method and the "
                                        "status code sent to the client.",
                                        {"method", "code"})),
        duration_(&registry->AddHistogram("gateway_grpc_call_duration_seconds",
                                          "Time from the arrival of a gRPC call to the "
                                          "status sent to the client, by method.",
                                          {"method"}, metrics::LatencyBuckets())),
        rejections_(&metrics::InterceptorRejections(*registry)),
        unknown_(ForMethod("unknown")) {}

  // Never null; stable for the life of this object.
  Method* ForMethod(absl::string_view path) {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Method>& m = methods_[path];
    if (m == nullptr) {
      m.reset(new Method{std::string(path), finished_, started_->Get({path}),
                         duration_->Get({path})});
    }
    return m.get();
  }

  Method* unknown() const { return unknown_; }

  void Rejected(int code) {
    if (code < 0 || code >= kCodes) code = grpc::StatusCode::UNKNOWN;
    metrics::Counter* c = rejected_[code].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = rejections_->Get({"grpc", CodeName(code)});
      rejected_[code].store(c, std::memory_order_release);
    }
    c->Increment();
  }

 private:
  static std::string CodeName(int code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  metrics::Family<metrics::Counter>* const started_;
  metrics::Family<metrics::Counter>* const finished_;
  metrics::Family<metrics::Histogram>* const duration_;
  metrics::Family<metrics::Counter>* const rejections_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
  Method* const unknown_;
  std::atomic<metrics::Counter*> rejected_[kCodes] = {};
};

// Owns one completion queue and the thread that drives every call on it.
class GrpcProxyServer::Worker {
 public:
  Worker(grpc::AsyncGenericService* service, std::unique_ptr<grpc::ServerCompletionQueue> cq,
         const Snapshot<RouteTable>* routes, int requests)
      : service_(service),
        cq_(std::move(cq)),
        routes_(routes),
        requests_(requests) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Accepts one more incoming call on this queue, unless the queue is shutting down.
  void RequestCall();

  // After the server has shut down: lets the calls still alive on this queue end, shuts
  // the queue down once the last one is gone (an operation started on a queue that is shut
  // down would abort the process), and joins the thread.
  void Stop() {
    bool idle;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      idle = live_calls_ == 0;
    }
    if (idle) cq_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }

  // Called by every call object as it is destroyed.
  void CallEnded() {
    absl::MutexLock lock(&mu_);
    if (--live_calls_ == 0 && stopping_) cq_->Shutdown();
  }

  grpc::ServerCompletionQueue* cq() { return cq_.get(); }
  grpc::AsyncGenericService* service() { return service_; }
  // Only from the worker's own thread.
  const std::shared_ptr<const RouteTable>& routes() { return reader_->Get(); }

  void set_metrics(CallMetrics* metrics) { metrics_ = metrics; }
  // The metrics of `route` of `table` (the unknown method's for null); null without
  // metrics. Only from the worker's own thread.
  CallMetrics::Method* MetricsFor(const std::shared_ptr<const RouteTable>& table,
                                  const Route* route) {
    if (metrics_ == nullptr) return nullptr;
    if (route == nullptr) return metrics_->unknown();
    if (table != metrics_table_) {  // held below, so a new table never has its address
      metrics_cache_.clear();
      metrics_table_ = table;
    }
    CallMetrics::Method*& m = metrics_cache_[route];
    if (m == nullptr) m = metrics_->ForMethod(route->path);
    return m;
  }
  CallMetrics* metrics() const { return metrics_; }
  void set_access_log(access_log::AccessLog* log, bool generate_request_id) {
    access_log_ = log;
    generate_request_id_ = generate_request_id;
  }
  access_log::AccessLog* access_log() const { return access_log_; }
  bool generate_request_id() const { return generate_request_id_; }

 private:
  void Run();

  grpc::AsyncGenericService* service_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  const Snapshot<RouteTable>* routes_;
  const int requests_;
  std::unique_ptr<Snapshot<RouteTable>::Reader> reader_;  // used by thread_ only
  CallMetrics* metrics_ = nullptr;
  access_log::AccessLog* access_log_ = nullptr;
  bool generate_request_id_ = true;
  // MetricsFor's cache, for the routes of metrics_table_ (used by thread_ only).
  std::shared_ptr<const RouteTable> metrics_table_;
  absl::flat_hash_map<const Route*, CallMetrics::Method*> metrics_cache_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

// The verified client certificate's identity: its SPIFFE id, else its first URI SAN, else
// its subject; empty without a verified certificate.
std::string PeerIdentity(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  for (const char* property : {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    std::vector<grpc::string_ref> values = auth.FindPropertyValues(property);
    if (!values.empty()) return std::string(values[0].data(), values[0].size());
  }
  for (const grpc::string_ref& san : auth.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
    if (absl::string_view(san.data(), san.size()).find("://") != absl::string_view::npos) {
      return std::string(san.data(), san.size());
    }
  }
  std::vector<grpc::string_ref> subject = auth.FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (!subject.empty()) return std::string(subject[0].data(), subject[0].size());
  return "";
}

// One proxied call: the incoming server call and the outgoing backend call. Lives on one
// worker thread; deletes itself when no operation is pending any more.
class ProxyCall {
 public:
  enum Op : uint8_t {
    kRequested,     // a client called
    kServerRead,    // a message from the client
    kServerWrite,   // a message sent to the client
    kServerFinish,  // status sent to the client
    kClientStart,   // backend call started
    kClientRead,    // a message from the backend
    kClientWrite,   // a message sent to the backend
    kClientHalfClose,
    kClientFinish,  // the backend's status
    kUnaryFinish,   // the backend's unary response and status
    kOpCount,
  };

  struct Tag {
    ProxyCall* call;
    Op op;
  };

  explicit ProxyCall(GrpcProxyServer::Worker* worker) : worker_(worker) {
    for (int i = 0; i < kOpCount; ++i) tags_[i] = Tag{this, static_cast<Op>(i)};
    worker_->service()->RequestCall(&server_ctx_, &server_stream_, worker_->cq(),
                                    worker_->cq(), Next(kRequested));
  }

  ~ProxyCall() { worker_->CallEnded(); }

  // Handles the completion of `op`.
  void OnEvent(Op op, bool ok) {
    switch (op) {
      case kRequested:
        if (!ok) {  // the server is shutting down; this call never started
          delete this;
          return;
        }
        worker_->RequestCall();
        Begin();
        break;
      case kServerRead:
        OnServerRead(ok);
        break;
      case kClientWrite:
        if (ok && !backend_done_ && !server_finishing_) {
          server_stream_.Read(&up_, Next(kServerRead));
        }
        break;
      case kClientRead:
        if (ok) {
          CopyInitialMetadata();
          bytes_out_ += down_.Length();
          server_stream_.Write(down_, Next(kServerWrite));
        } else {
          client_stream_->Finish(&status_, Next(kClientFinish));
        }
        break;
      case kServerWrite:
        if (!ok) client_ctx_->TryCancel();  // the client is gone
        client_stream_->Read(&down_, Next(kClientRead));
        break;
      case kClientFinish:
      case kUnaryFinish:
        backend_done_ = true;
        // A transport failure names the backend, not its address (Backend::ClientStatus).
        status_ = route_->backend->ClientStatus(*client_ctx_, status_, server_ctx_.method());
        FinishServer();
        break;
      case kClientStart:
        if (ok && !backend_done_ && !server_finishing_) {
          server_stream_.Read(&up_, Next(kServerRead));
        }
        break;
      case kClientHalfClose:
      case kServerFinish:
      case kOpCount:
        break;
    }
    Release();
  }

 private:
  // Counts an operation (or a hold) that keeps the call alive.
  void* Next(Op op) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    return &tags_[op];
  }

  // Ends one operation (or hold); the last one deletes the call.
  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void Begin() {
    const std::shared_ptr<const RouteTable>& table = worker_->routes();
    route_ = table->Find(server_ctx_.method());
    metrics_ = worker_->MetricsFor(table, route_);
    if (metrics_ != nullptr || worker_->access_log() != nullptr) {
      arrived_ = std::chrono::steady_clock::now();
    }
    if (metrics_ != nullptr) metrics_->started->Increment();
    if (worker_->access_log() != nullptr) arrival_time_ = absl::Now();
    AssignRequestId();
    if (route_ == nullptr) {
      CountFinished(grpc::StatusCode::UNIMPLEMENTED);
      server_finishing_ = true;
      server_stream_.Finish(
          grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                       absl::StrCat("method not found: ", server_ctx_.method())),
          Next(kServerFinish));
      return;
    }
    routes_ = table;  // keeps route_ valid for the life of the call
    // What the client sent that goes on to the backend (the metadata policy), checked
    // before anything else: gRPC core aborts the process on metadata that breaks its rules.
    std::vector<metadata::Entry> client;
    client.reserve(server_ctx_.client_metadata().size());
    for (const auto& [key, value] : server_ctx_.client_metadata()) {
      client.emplace_back(absl::string_view(key.data(), key.size()),
                          absl::string_view(value.data(), value.size()));
    }
    const absl::Status forwarded = table->chain().metadata_policy().CollectClientMetadata(
        metadata::Protocol::kGrpc, client, nullptr, &backend_metadata_);
    if (!forwarded.ok()) {
      FinishEarly(forwarded);
      return;
    }
    if (request_id_generated_) backend_metadata_.emplace_back("x-request-id", request_id_);
    if (table->chain().empty()) {
      Admitted();
      return;
    }
    RunChain();
  }

  // Runs the interceptor chain. When it finishes inline the call goes on at once; when an
  // interceptor goes asynchronous, its Resume() (on any thread) wakes this call up on its
  // own queue through an alarm, so the call's state is only ever touched by its worker.
  void RunChain() {
    absl::Time client_deadline = absl::InfiniteFuture();
    const gpr_timespec deadline = server_ctx_.raw_deadline();
    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) != 0) {
      client_deadline = absl::FromChrono(server_ctx_.deadline());
    }
    ctx_ = CallContext::Make({FrontEnd::kGrpc, route_->method, &route_->rules,
                              server_ctx_.method(), server_ctx_.peer(),
                              PeerIdentity(*server_ctx_.auth_context()), client_deadline,
                              absl::Now(), server_ctx_.client_metadata().size()});
    for (const auto& [key, value] : server_ctx_.client_metadata()) {
      ctx_->request_metadata.emplace_back(absl::string_view(key.data(), key.size()),
                                          absl::string_view(value.data(), value.size()));
    }
    // The chain holds the call alive until it is done. While it runs, the call has no
    // operation in flight, so an asynchronous interceptor's thread may continue the call
    // itself (hopping back through the queue, e.g. with a grpc::Alarm, costs about a
    // millisecond): whatever it starts completes on the worker's queue as usual. The only
    // overlap is Admitted() starting the backend stream: the worker may handle kClientStart
    // (which touches only server_stream_ and up_) while this thread issues the first
    // client Read (client_stream_, down_).
    pending_.fetch_add(1, std::memory_order_relaxed);
    chain_state_.store(kChainRunning, std::memory_order_relaxed);
    routes_->chain().Run(ctx_.get(), [this](CallContext*, absl::Status status) {
      chain_status_ = std::move(status);
      if (chain_state_.exchange(kChainDone, std::memory_order_acq_rel) == kChainReturned) {
        OnChainDone();
        Release();
      }
    });
    if (chain_state_.exchange(kChainReturned, std::memory_order_acq_rel) == kChainDone) {
      OnChainDone();
      Release();
    }
  }

  // Ends the call with `status` before it reached the backend.
  void FinishEarly(const absl::Status& status) {
    CountFinished(static_cast<grpc::StatusCode>(status.raw_code()));
    server_finishing_ = true;
    server_stream_.Finish(grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                                       std::string(status.message())),
                          Next(kServerFinish));
  }

  void OnChainDone() {
    if (!chain_status_.ok()) {
      for (const auto& [key, value] : ctx_->response_headers) {
        std::string k = absl::AsciiStrToLower(key);
        if (metadata::CheckEntry(k, value).ok()) server_ctx_.AddTrailingMetadata(k, value);
      }
      if (metrics_ != nullptr) worker_->metrics()->Rejected(chain_status_.raw_code());
      CountFinished(static_cast<grpc::StatusCode>(chain_status_.raw_code()));
      server_finishing_ = true;
      server_stream_.Finish(
          grpc::Status(static_cast<grpc::StatusCode>(chain_status_.code()),
                       std::string(chain_status_.message())),
          Next(kServerFinish));
      return;
    }
    const absl::Status edited =
        metadata::MetadataPolicy::ApplyEdits(ctx_->backend_metadata, &backend_metadata_);
    if (!edited.ok()) {
      FinishEarly(edited);
      return;
    }
    Admitted();
  }

  // The call may go to its backend.
  void Admitted() {
    if (absl::Status size = metadata::CheckMetadataSize(backend_metadata_,
                                                        route_->backend->max_metadata_bytes());
        !size.ok()) {
      FinishEarly(size);
      return;
    }
    if (route_->kind == CallKind::kUnary) {
      server_stream_.Read(&up_, Next(kServerRead));
      return;
    }
    PrepareClientContext();
    client_stream_ = route_->backend->stub().PrepareCall(client_ctx_.get(),
                                                         server_ctx_.method(), worker_->cq());
    // StartCall, Write and WritesDone share one operation slot of the client stream: the
    // first message is read from the client only once the call has started.
    client_stream_->StartCall(Next(kClientStart));
    client_stream_->Read(&down_, Next(kClientRead));
  }

  void OnServerRead(bool ok) {
    if (ok) bytes_in_ += up_.Length();
    if (route_->kind == CallKind::kUnary) {
      if (!ok) {
        CountFinished(grpc::StatusCode::INTERNAL);
        server_finishing_ = true;
        server_stream_.Finish(
            grpc::Status(grpc::StatusCode::INTERNAL,
                         absl::StrCat("no request message for unary method ",
                                      server_ctx_.method())),
            Next(kServerFinish));
        return;
      }
      PrepareClientContext();
      unary_call_ = route_->backend->stub().PrepareUnaryCall(
          client_ctx_.get(), server_ctx_.method(), up_, worker_->cq());
      unary_call_->StartCall();
      unary_call_->Finish(&down_, &status_, Next(kUnaryFinish));
      return;
    }
    if (backend_done_ || server_finishing_) return;
    if (ok) {
      client_stream_->Write(up_, Next(kClientWrite));
    } else {
      client_stream_->WritesDone(Next(kClientHalfClose));
    }
  }

  // The backend call is a child of the server call in gRPC core: it inherits the client's
  // deadline, and core cancels it when the client's call is cancelled or times out (no
  // notification of our own is needed for that).
  void PrepareClientContext() {
    client_ctx_ = grpc::ClientContext::FromServerContext(server_ctx_);
    // Checked by the metadata policy (Begin, OnChainDone).
    for (const auto& [key, value] : backend_metadata_) client_ctx_->AddMetadata(key, value);
    if (ctx_ != nullptr) {
      // Core takes the earlier of this and the client's own deadline.
      if (ctx_->backend_deadline != absl::InfiniteFuture()) {
        client_ctx_->set_deadline(absl::ToChronoTime(ctx_->backend_deadline));
      }
    }
  }

  void CopyInitialMetadata() {
    if (initial_metadata_copied_) return;
    initial_metadata_copied_ = true;
    if (worker_->access_log() != nullptr) first_byte_ = std::chrono::steady_clock::now();
    const metadata::MetadataPolicy& policy = routes_->chain().metadata_policy();
    for (const auto& [key, value] : client_ctx_->GetServerInitialMetadata()) {
      const absl::string_view k(key.data(), key.size());
      const absl::string_view v(value.data(), value.size());
      // The call's x-request-id is the gateway's to return (AssignRequestId).
      if (returns_request_id_ && k == "x-request-id") continue;
      if (policy.ForwardsToClient(k, v)) {
        server_ctx_.AddInitialMetadata(std::string(k), std::string(v));
      }
    }
  }

  void FinishServer() {
    CopyInitialMetadata();
    const metadata::MetadataPolicy& policy = routes_->chain().metadata_policy();
    for (const auto& [key, value] : client_ctx_->GetServerTrailingMetadata()) {
      const absl::string_view k(key.data(), key.size());
      const absl::string_view v(value.data(), value.size());
      if (policy.ForwardsToClient(k, v)) {
        server_ctx_.AddTrailingMetadata(std::string(k), std::string(v));
      }
    }
    if (route_->kind == CallKind::kUnary && status_.ok()) bytes_out_ += down_.Length();
    CountFinished(status_.error_code());
    server_finishing_ = true;
    if (route_->kind == CallKind::kUnary && status_.ok()) {
      server_stream_.WriteAndFinish(down_, grpc::WriteOptions(), status_, Next(kServerFinish));
    } else {
      server_stream_.Finish(status_, Next(kServerFinish));
    }
  }

  // Counts the call as finished with `code` (sent to the client now).
  void CountFinished(grpc::StatusCode code) {
    if (metrics_ == nullptr && worker_->access_log() == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    if (metrics_ != nullptr) {
      metrics_->Finished(code)->Increment();
      metrics_->duration->Observe(std::chrono::duration<double>(now - arrived_).count());
    }
    if (worker_->access_log() != nullptr) LogAccess(code, now);
  }

  // The client's x-request-id, or a generated one (sent to the backend once the metadata
  // policy has collected the client's entries); returned in the initial metadata.
  void AssignRequestId() {
    const auto& md = server_ctx_.client_metadata();
    const auto sent = md.find("x-request-id");
    if (sent != md.end()) {
      request_id_.assign(sent->second.data(), sent->second.size());
    } else if (worker_->generate_request_id()) {
      request_id_ = access_log::NewRequestId();
      request_id_generated_ = true;
    }
    if (!request_id_.empty() && metadata::IsValidTextValue(request_id_)) {
      returns_request_id_ = true;
      server_ctx_.AddInitialMetadata("x-request-id", request_id_);
    }
  }

  // The call's access log line (docs/config.md, "access_log").
  void LogAccess(grpc::StatusCode code, std::chrono::steady_clock::time_point now) {
    access_log::AccessLog* log = worker_->access_log();
    access_log::Record r;
    r.status = 200;
    r.grpc_status = static_cast<int>(code);
    if (!log->Sample(r.IsError())) return;
    auto seconds = [](std::chrono::steady_clock::duration d) {
      return absl::FromChrono(d);
    };
    const auto& md = server_ctx_.client_metadata();
    auto header = [&md](const char* name) {
      const auto it = md.find(name);
      return it == md.end() ? absl::string_view()
                            : absl::string_view(it->second.data(), it->second.size());
    };
    r.time = arrival_time_;
    r.front_end = "grpc";
    r.protocol = "HTTP/2";
    r.method = "POST";
    r.path = server_ctx_.method();
    if (route_ != nullptr) r.grpc_method = r.path;
    r.bytes_in = bytes_in_;
    r.bytes_out = bytes_out_;
    r.duration = seconds(now - arrived_);
    r.ttfb = initial_metadata_copied_ ? seconds(first_byte_ - arrived_) : r.duration;
    if (client_ctx_ != nullptr) {
      // "ipv4:IP:PORT" -> "IP:PORT", as the HTTP front end's upstream names an endpoint.
      r.upstream = client_ctx_->peer();
      if (absl::StartsWith(r.upstream, "ipv4:") || absl::StartsWith(r.upstream, "ipv6:")) {
        r.upstream.erase(0, 5);
      }
      r.attempts = 1;
    }
    if (ctx_ != nullptr) r.caller_id = ctx_->caller_id;
    r.request_id = std::move(request_id_);
    r.trace_id = std::string(access_log::TraceIdFromTraceparent(header("traceparent")));
    r.user_agent = std::string(header("user-agent"));
    r.peer = server_ctx_.peer();
    log->Push(std::move(r));
  }

  GrpcProxyServer::Worker* const worker_;
  Tag tags_[kOpCount];
  // The method's metrics (null without metrics) and when the call arrived.
  GrpcProxyServer::CallMetrics::Method* metrics_ = nullptr;
  std::chrono::steady_clock::time_point arrived_;
  // The access log's view (only with an access log): when the call arrived, when its
  // initial metadata went out, message bytes each way, its x-request-id.
  absl::Time arrival_time_;
  std::chrono::steady_clock::time_point first_byte_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  std::string request_id_;
  bool request_id_generated_ = false;
  bool returns_request_id_ = false;
  // Operations in flight plus holds; see Next() and Release().
  std::atomic<int> pending_{0};
  bool backend_done_ = false;
  bool server_finishing_ = false;
  bool initial_metadata_copied_ = false;

  grpc::GenericServerContext server_ctx_;
  grpc::GenericServerAsyncReaderWriter server_stream_{&server_ctx_};
  std::shared_ptr<const RouteTable> routes_;
  const Route* route_ = nullptr;

  std::unique_ptr<grpc::ClientContext> client_ctx_;
  // What the backend call sends as metadata (the client's forwarded entries, then the
  // interceptors' edits), every entry valid by gRPC's rules.
  std::vector<metadata::OwnedEntry> backend_metadata_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> client_stream_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary_call_;

  // The interceptor chain's view of the call (only when the chain is not empty).
  enum ChainState { kChainRunning, kChainDone, kChainReturned };
  std::unique_ptr<CallContext> ctx_;
  std::atomic<int> chain_state_{kChainRunning};
  absl::Status chain_status_;

  grpc::ByteBuffer up_;    // client -> backend
  grpc::ByteBuffer down_;  // backend -> client
  grpc::Status status_;
};

}  // namespace

void GrpcProxyServer::Worker::RequestCall() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  ++live_calls_;
  new ProxyCall(this);
}

void GrpcProxyServer::Worker::Run() {
  reader_ = std::make_unique<Snapshot<RouteTable>::Reader>(routes_);
  for (int i = 0; i < requests_; ++i) RequestCall();
  void* tag;
  bool ok;
  while (cq_->Next(&tag, &ok)) {
    auto* t = static_cast<ProxyCall::Tag*>(tag);
    t->call->OnEvent(t->op, ok);
  }
}

absl::StatusOr<std::unique_ptr<GrpcProxyServer>> GrpcProxyServer::Start(
    const Options& options, const Snapshot<RouteTable>* routes) {
  std::unique_ptr<GrpcProxyServer> proxy(new GrpcProxyServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      options.address,
      options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
      &proxy->port_);
  builder.RegisterAsyncGenericService(&proxy->service_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // gRPC sets SO_REUSEPORT by default, which would let a second gateway bind the same port
  // and silently split the traffic; a port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  const int threads = std::max(1, options.worker_threads);
  for (int i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  proxy->server_ = builder.BuildAndStart();
  if (proxy->server_ == nullptr || (proxy->port_ == 0 &&
                                    !absl::StartsWith(options.address, "unix:"))) {
    if (proxy->server_ != nullptr) proxy->server_->Shutdown();
    for (auto& cq : queues) {
      cq->Shutdown();
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
      }
    }
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " (in use, or not a local address)"));
  }
  for (auto& cq : queues) {
    proxy->workers_.push_back(
        std::make_unique<Worker>(&proxy->service_, std::move(cq), routes,
                                 std::max(1, options.requests_per_worker)));
  }
  if (options.metrics != nullptr) {
    proxy->metrics_ = std::make_unique<CallMetrics>(options.metrics);
    for (auto& worker : proxy->workers_) worker->set_metrics(proxy->metrics_.get());
  }
  for (auto& worker : proxy->workers_) {
    worker->set_access_log(options.access_log, options.generate_request_id);
  }
  for (auto& worker : proxy->workers_) worker->Start();
  return proxy;
}

void GrpcProxyServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  for (auto& worker : workers_) worker->Stop();
}

GrpcProxyServer::~GrpcProxyServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace gateway
