// echo_backend: a gRPC server for gateway.test.v1.Echo (tests/testdata/echo.proto), the
// backend the integration tests put behind the gateway.
//
//   echo_backend --listen=127.0.0.1:0
//
// Once it serves it prints exactly one line to stderr,
//
//   echo_backend: listening on HOST:PORT
//
// with the port actually bound (port 0 picks a free one). SIGTERM or SIGINT shut it down;
// it then exits 0. Server reflection is on; messages up to 64 MiB are accepted and sent.
//
//   echo_backend --listen=127.0.0.1:0 --health
//
// also serves grpc.health.v1.Health (every service SERVING at start); SIGUSR1 sets every
// service NOT_SERVING, SIGUSR2 sets every service SERVING again.
//
// Behavior of every method (the proto's comments, made precise):
//
//  * Response metadata, all methods: every request header "x-echo-<rest>" comes back as
//    initial metadata "x-reflect-<rest>" (same value), and the trailers carry
//    "x-echo-trailing: done". Initial metadata also carries "x-echo-initial: <n>" where n is
//    the payload size of the request (Unary, ServerStream), the total payload bytes read
//    (ClientStream) or the payload size of the first request (Bidi). Unary and ServerStream
//    also carry "x-served-by: HOST:PORT" (the address the backend listens on, as announced)
//    in their trailers, Unary in its initial metadata too, so a test behind a balancing
//    gateway can tell which backend answered.
//  * Failures: a non-zero `fail_code` ends the call with that code and `fail_message`
//    (codes outside 1..16 become UNKNOWN). The status also carries binary error details:
//    a google.rpc.Status {code, message, details: [Any(gateway.test.v1.EchoResponse
//    {payload: <request payload>})]} in "grpc-status-details-bin". On streams the failure
//    comes after `fail_after` responses.
//  * `sleep_ms`: the backend sleeps before each response (Unary: before answering;
//    ServerStream and Bidi: before every response; ClientStream: after each request read),
//    checking every few milliseconds whether the call was cancelled. A cancelled call is
//    recorded under its tag and ends with CANCELLED at once.
//  * `exit_after` (ServerStream, Bidi): after that many responses were sent the process
//    exits with status 1 without shutting down, to simulate a crash mid-stream.
//  * `tag`: the backend remembers, per tag, whether a call with it was seen cancelled and
//    whether it finished (its handler returned), and for ClientStream how many requests it
//    has read so far (counted as they are read, so a test can see a stream's progress),
//    and how many Unary calls with it arrived (counted when the handler starts, whatever
//    the call's outcome); `Stats` reports them. Unknown tags report false/false/0/0.
//  * Unary fills `metadata` with every request header as "key=value", sorted, values of
//    "-bin" keys in padded standard base64, and `deadline_ms` with the milliseconds left
//    until the deadline when the call arrived (-1 without a deadline).

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "google/rpc/status.pb.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::test {
namespace {

using ::gateway::test::v1::EchoRequest;
using ::gateway::test::v1::EchoResponse;
using ::gateway::test::v1::StatsRequest;
using ::gateway::test::v1::StatsResponse;

constexpr int kMaxMessageBytes = 64 * 1024 * 1024;
constexpr auto kCancelPollInterval = std::chrono::milliseconds(2);
// Lets the transport push the last responses out before a simulated crash.
constexpr auto kExitFlushDelay = std::chrono::milliseconds(50);
// Calls still running this long after SIGTERM are cancelled.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

constexpr absl::string_view kEchoPrefix = "x-echo-";
constexpr absl::string_view kReflectPrefix = "x-reflect-";

// What the backend saw of the calls with one tag. Thread-safe.
class CallLog {
 public:
  // Records that a call with `tag` was seen cancelled. Empty tags are ignored.
  void MarkCancelled(const std::string& tag) {
    if (tag.empty()) return;
    absl::MutexLock lock(&mu_);
    entries_[tag].cancelled = true;
  }

  // Records that the handler of a call with `tag` returned; `cancelled` as seen at the end.
  void MarkFinished(const std::string& tag, bool cancelled) {
    if (tag.empty()) return;
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[tag];
    entry.finished = true;
    entry.cancelled = entry.cancelled || cancelled;
  }

  // Records that a Unary call with `tag` arrived. Empty tags are ignored.
  void CountCall(const std::string& tag) {
    if (tag.empty()) return;
    absl::MutexLock lock(&mu_);
    ++entries_[tag].calls;
  }

  // Records that the ClientStream call with `tag` has read `count` requests.
  void MarkReceived(const std::string& tag, int count) {
    if (tag.empty()) return;
    absl::MutexLock lock(&mu_);
    entries_[tag].received = count;
  }

  // Returns what is known of `tag`: both false if no call with it was seen.
  StatsResponse Lookup(const std::string& tag) const {
    StatsResponse response;
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(tag);
    if (it != entries_.end()) {
      response.set_cancelled(it->second.cancelled);
      response.set_finished(it->second.finished);
      response.set_received(it->second.received);
      response.set_calls(it->second.calls);
    }
    return response;
  }

 private:
  struct Entry {
    bool cancelled = false;
    bool finished = false;
    int received = 0;
    int calls = 0;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Records a call in the CallLog when its handler returns, whatever the path out.
class CallScope {
 public:
  CallScope(CallLog* log, grpc::ServerContext* context)
      : log_(log), context_(context) {}
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;
  ~CallScope() { log_->MarkFinished(tag_, context_->IsCancelled()); }

  // Adopts the first non-empty tag of the call's requests.
  void SetTag(const std::string& tag) {
    if (tag_.empty()) tag_ = tag;
  }

  // Records how many requests the call has read so far.
  void Received(int count) { log_->MarkReceived(tag_, count); }

  // Records the cancellation now and returns the status a cancelled handler ends with.
  grpc::Status Cancelled() {
    log_->MarkCancelled(tag_);
    return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
  }

 private:
  CallLog* const log_;
  grpc::ServerContext* const context_;
  std::string tag_;
};

// Sleeps `ms` milliseconds, waking up every kCancelPollInterval. Returns false as soon as
// the call is cancelled, true after the full sleep (or at once when `ms` <= 0).
bool SleepUnlessCancelled(grpc::ServerContext* context, int ms) {
  if (ms <= 0) return !context->IsCancelled();
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (true) {
    if (context->IsCancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        kCancelPollInterval, end - now));
  }
}

// A failure a request asked for: the status to end with, once `after` responses are out.
struct PlannedFailure {
  bool active = false;
  int after = 0;
  grpc::Status status;
};

// Builds the status `request` asks for (its fail_code must be non-zero), with a binary
// google.rpc.Status in the details.
grpc::Status FailureStatus(const EchoRequest& request) {
  int code = request.fail_code();
  if (code < 1 || code > 16) code = grpc::StatusCode::UNKNOWN;
  google::rpc::Status details;
  details.set_code(code);
  details.set_message(request.fail_message());
  EchoResponse echoed;
  echoed.set_payload(request.payload());
  details.add_details()->PackFrom(echoed);
  return grpc::Status(static_cast<grpc::StatusCode>(code), request.fail_message(),
                      details.SerializeAsString());
}

PlannedFailure PlanFailure(const EchoRequest& request) {
  PlannedFailure failure;
  if (request.fail_code() != 0) {
    failure.active = true;
    failure.after = std::max(0, request.fail_after());
    failure.status = FailureStatus(request);
  }
  return failure;
}

// Adds the response metadata every method sends: reflected "x-echo-*" headers,
// "x-echo-initial: <initial_size>" and the trailer "x-echo-trailing: done". Must run
// before the first response is written.
void AddResponseMetadata(grpc::ServerContext* context, size_t initial_size) {
  for (const auto& [key, value] : context->client_metadata()) {
    absl::string_view k(key.data(), key.size());
    if (absl::StartsWith(k, kEchoPrefix)) {
      context->AddInitialMetadata(
          absl::StrCat(kReflectPrefix, k.substr(kEchoPrefix.size())),
          std::string(value.data(), value.size()));
    }
  }
  context->AddInitialMetadata("x-echo-initial", absl::StrCat(initial_size));
  context->AddTrailingMetadata("x-echo-trailing", "done");
}

// Every request header as "key=value", sorted; "-bin" values base64, pseudo headers
// skipped.
std::vector<std::string> DescribeMetadata(const grpc::ServerContext& context) {
  std::vector<std::string> lines;
  for (const auto& [key, value] : context.client_metadata()) {
    absl::string_view k(key.data(), key.size());
    absl::string_view v(value.data(), value.size());
    if (absl::StartsWith(k, ":")) continue;
    if (absl::EndsWith(k, "-bin")) {
      lines.push_back(absl::StrCat(k, "=", absl::Base64Escape(v)));
    } else {
      lines.push_back(absl::StrCat(k, "=", v));
    }
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Milliseconds left until the call's deadline, or -1 without one.
int64_t DeadlineMillis(const grpc::ServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::system_clock::now());
  // gRPC reports "no deadline" as a point centuries away.
  if (left > std::chrono::hours(24 * 365 * 100)) return -1;
  return std::max<int64_t>(0, left.count());
}

[[noreturn]] void SimulateCrash() {
  std::this_thread::sleep_for(kExitFlushDelay);
  std::_Exit(1);
}

// The Echo service. Thread-safe: per-call state lives on the handler's stack, shared state
// in the CallLog.
class EchoService final : public gateway::test::v1::Echo::Service {
 public:
  // Sets the address sent as "x-served-by" (empty until set: no such metadata).
  void SetServedBy(const std::string& address) {
    absl::MutexLock lock(&mu_);
    served_by_ = address;
  }

  grpc::Status Unary(grpc::ServerContext* context, const EchoRequest* request,
                     EchoResponse* response) override {
    CallScope scope(&log_, context);
    scope.SetTag(request->tag());
    log_.CountCall(request->tag());
    const int64_t deadline_ms = DeadlineMillis(*context);
    AddResponseMetadata(context, request->payload().size());
    AddServedBy(context, /*initial=*/true);
    if (!SleepUnlessCancelled(context, request->sleep_ms())) return scope.Cancelled();
    if (request->fail_code() != 0) return FailureStatus(*request);
    response->set_payload(request->payload());
    for (std::string& line : DescribeMetadata(*context)) {
      response->add_metadata(std::move(line));
    }
    response->set_deadline_ms(deadline_ms);
    return grpc::Status::OK;
  }

  grpc::Status ServerStream(grpc::ServerContext* context, const EchoRequest* request,
                            grpc::ServerWriter<EchoResponse>* writer) override {
    CallScope scope(&log_, context);
    scope.SetTag(request->tag());
    AddResponseMetadata(context, request->payload().size());
    AddServedBy(context, /*initial=*/false);
    const PlannedFailure failure = PlanFailure(*request);
    EchoResponse response;
    response.set_payload(request->payload());
    for (int i = 0; i < request->count(); ++i) {
      if (failure.active && i >= failure.after) return failure.status;
      if (!SleepUnlessCancelled(context, request->sleep_ms())) return scope.Cancelled();
      response.set_index(i);
      if (!writer->Write(response)) return scope.Cancelled();
      if (request->exit_after() > 0 && i + 1 == request->exit_after()) SimulateCrash();
    }
    if (failure.active) return failure.status;
    return grpc::Status::OK;
  }

  grpc::Status ClientStream(grpc::ServerContext* context,
                            grpc::ServerReader<EchoRequest>* reader,
                            EchoResponse* response) override {
    CallScope scope(&log_, context);
    EchoRequest request;
    PlannedFailure failure;
    int count = 0;
    size_t total_bytes = 0;
    std::string last_payload;
    while (reader->Read(&request)) {
      scope.SetTag(request.tag());
      ++count;
      scope.Received(count);
      total_bytes += request.payload().size();
      last_payload = request.payload();
      if (!failure.active) failure = PlanFailure(request);
      if (!SleepUnlessCancelled(context, request.sleep_ms())) return scope.Cancelled();
    }
    if (context->IsCancelled()) return scope.Cancelled();
    AddResponseMetadata(context, total_bytes);
    if (failure.active) return failure.status;
    response->set_index(count);
    response->set_payload(std::move(last_payload));
    return grpc::Status::OK;
  }

  grpc::Status Bidi(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    CallScope scope(&log_, context);
    EchoRequest request;
    PlannedFailure failure;
    int sent = 0;
    while (stream->Read(&request)) {
      scope.SetTag(request.tag());
      if (sent == 0) AddResponseMetadata(context, request.payload().size());
      if (!failure.active) failure = PlanFailure(request);
      if (failure.active && sent >= failure.after) return failure.status;
      if (!SleepUnlessCancelled(context, request.sleep_ms())) return scope.Cancelled();
      EchoResponse response;
      response.set_payload(request.payload());
      response.set_index(sent);
      if (!stream->Write(response)) return scope.Cancelled();
      ++sent;
      if (request.exit_after() > 0 && sent >= request.exit_after()) SimulateCrash();
    }
    if (context->IsCancelled()) return scope.Cancelled();
    if (sent == 0) AddResponseMetadata(context, 0);
    if (failure.active) return failure.status;
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext* /*context*/, const StatsRequest* request,
                     StatsResponse* response) override {
    *response = log_.Lookup(request->tag());
    return grpc::Status::OK;
  }

 private:
  // Adds "x-served-by" to the trailers, and with `initial` to the initial metadata.
  void AddServedBy(grpc::ServerContext* context, bool initial) {
    std::string served_by;
    {
      absl::MutexLock lock(&mu_);
      served_by = served_by_;
    }
    if (served_by.empty()) return;
    if (initial) context->AddInitialMetadata("x-served-by", served_by);
    context->AddTrailingMetadata("x-served-by", served_by);
  }

  CallLog log_;
  absl::Mutex mu_;
  std::string served_by_ ABSL_GUARDED_BY(mu_);
};

struct Flags {
  std::string listen = "127.0.0.1:50051";
  std::string tls_cert;       // PEM chain; with tls_key: serve TLS instead of plaintext
  std::string tls_key;
  std::string tls_client_ca;  // PEM CA; with TLS: require client certificates it signed
  bool health = false;        // serve grpc.health.v1.Health; SIGUSR1/SIGUSR2 flip it
  bool gzip = false;          // compress responses with gzip (for clients that accept it)
};

constexpr char kUsage[] =
    "usage: echo_backend [--listen=HOST:PORT|unix:PATH] [--tls_cert=PEM --tls_key=PEM "
    "[--tls_client_ca=PEM]] [--health] [--gzip]\n"
    "  --listen=HOST:PORT  address to serve on (default 127.0.0.1:50051; port 0 picks a\n"
    "                      free port)\n"
    "  --tls_cert, --tls_key  serve TLS with this certificate chain and key\n"
    "  --tls_client_ca     require client certificates signed by this CA (mutual TLS)\n"
    "  --health            serve grpc.health.v1.Health: SIGUSR1 sets every service\n"
    "                      NOT_SERVING, SIGUSR2 SERVING\n"
    "  --gzip              compress response messages with gzip when the client accepts it\n";

// Reads a whole file; exits 2 naming it when it cannot.
std::string ReadOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "echo_backend: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Parses argv into `flags`. Returns false (after printing why) on an unknown argument.
bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--listen=")) {
      flags->listen = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--tls_cert=")) {
      flags->tls_cert = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--tls_key=")) {
      flags->tls_key = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--tls_client_ca=")) {
      flags->tls_client_ca = std::string(arg);
    } else if (arg == "--health") {
      flags->health = true;
    } else if (arg == "--gzip") {
      flags->gzip = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "echo_backend: unknown argument \"%s\"\n%s", argv[i], kUsage);
      return false;
    }
  }
  return true;
}

// Splits "HOST:PORT" (HOST may be "[v6]") at the last colon. Returns false without one or
// with a non-numeric port.
bool SplitHostPort(absl::string_view address, std::string* host) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return false;
  }
  *host = std::string(address.substr(0, colon));
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  std::string host;
  const bool unix_socket = absl::StartsWith(flags.listen, "unix:");
  if (!unix_socket && !SplitHostPort(flags.listen, &host)) {
    std::fprintf(stderr, "echo_backend: --listen=%s is not HOST:PORT\n",
                 flags.listen.c_str());
    return 2;
  }

  // Signals are taken by sigwait below; block them before gRPC starts its threads so that
  // every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  if (flags.health) grpc::EnableDefaultHealthCheckService(true);
  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  if (flags.gzip) builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!flags.tls_cert.empty() || !flags.tls_key.empty()) {
    grpc::SslServerCredentialsOptions options(
        flags.tls_client_ca.empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_key_cert_pairs.push_back({ReadOrDie(flags.tls_key), ReadOrDie(flags.tls_cert)});
    if (!flags.tls_client_ca.empty()) options.pem_root_certs = ReadOrDie(flags.tls_client_ca);
    credentials = grpc::SslServerCredentials(options);
  }
  builder.AddListeningPort(flags.listen, credentials, &port);
  // A port in use is an error, not a port shared with another process (gRPC turns
  // SO_REUSEPORT on by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (port == 0 && !unix_socket)) {
    std::fprintf(stderr, "echo_backend: cannot listen on %s\n", flags.listen.c_str());
    return 1;
  }
  const std::string address =
      unix_socket ? flags.listen : absl::StrCat(host, ":", port);
  service.SetServedBy(address);
  std::fprintf(stderr, "echo_backend: listening on %s\n", address.c_str());
  std::fflush(stderr);

  int signal_number = 0;
  while (true) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGUSR1 && signal_number != SIGUSR2) break;
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    if (health == nullptr) continue;  // without --health the signals change nothing
    const bool serving = signal_number == SIGUSR2;
    health->SetServingStatus(serving);
    std::fprintf(stderr, "echo_backend: health %s\n", serving ? "SERVING" : "NOT_SERVING");
    std::fflush(stderr);
  }
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace gateway::test

int main(int argc, char** argv) { return gateway::test::Main(argc, argv); }
