// byte_echo_backend: the leanest gRPC backend this gRPC can make, for benchmarks: every
// method answers each request message with the same bytes (an EchoRequest holding only a
// payload is a valid EchoResponse with that payload). Unary calls are answered with one
// write-and-finish; streams echo message by message. Completion queues, one thread each.
//
//   byte_echo_backend --listen=127.0.0.1:0 [--threads=1]
//
// Prints "byte_echo_backend: listening on HOST:PORT" on stderr when it serves; exits 0 on
// SIGTERM/SIGINT. The benchmark compares a proxy's CPU per call with this backend's.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"

namespace gateway::bench {
namespace {

class EchoCall {
 public:
  EchoCall(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq) {
    service_->RequestCall(&ctx_, &stream_, cq_, cq_, this);
  }

  void Proceed(bool ok) {
    switch (state_) {
      case kRequested:
        if (!ok) {
          delete this;
          return;
        }
        new EchoCall(service_, cq_);
        unary_ = absl::EndsWith(ctx_.method(), "/Unary");
        state_ = kReading;
        stream_.Read(&buffer_, this);
        return;
      case kReading:
        if (!ok) {
          state_ = kFinishing;
          stream_.Finish(grpc::Status::OK, this);
          return;
        }
        if (unary_) {
          state_ = kFinishing;
          stream_.WriteAndFinish(buffer_, grpc::WriteOptions(), grpc::Status::OK, this);
          return;
        }
        state_ = kWriting;
        stream_.Write(buffer_, this);
        return;
      case kWriting:
        if (!ok) {
          state_ = kFinishing;
          stream_.Finish(grpc::Status::OK, this);
          return;
        }
        state_ = kReading;
        stream_.Read(&buffer_, this);
        return;
      case kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum State { kRequested, kReading, kWriting, kFinishing };
  grpc::AsyncGenericService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_{&ctx_};
  grpc::ByteBuffer buffer_;
  State state_ = kRequested;
  bool unary_ = false;
};

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:50051";
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--listen=")) {
      listen = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--threads=") && absl::SimpleAtoi(arg, &threads) &&
               threads > 0) {
    } else {
      std::fprintf(stderr, "usage: byte_echo_backend [--listen=HOST:PORT] [--threads=N]\n");
      return 2;
    }
  }
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  builder.RegisterAsyncGenericService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "byte_echo_backend: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::vector<std::thread> workers;
  for (auto& cq : queues) {
    workers.emplace_back([&service, q = cq.get()] {
      for (int i = 0; i < 8; ++i) new EchoCall(&service, q);
      void* tag;
      bool ok;
      while (q->Next(&tag, &ok)) static_cast<EchoCall*>(tag)->Proceed(ok);
    });
  }
  std::fprintf(stderr, "byte_echo_backend: listening on %s:%d\n",
               listen.substr(0, listen.rfind(':')).c_str(), port);
  std::fflush(stderr);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& cq : queues) cq->Shutdown();
  for (auto& t : workers) t.join();
  return 0;
}

}  // namespace
}  // namespace gateway::bench

int main(int argc, char** argv) { return gateway::bench::Main(argc, argv); }
