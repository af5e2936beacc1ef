// bookstore_backend: serves bookstore.v1.Bookstore (bookstore.proto) from memory, seeded
// with two shelves and five books.
//
//   bookstore_backend [--listen=HOST:PORT]
//
// --listen defaults to 127.0.0.1:50051; port 0 picks a free port. Once it serves it prints
// exactly one line to stderr,
//
//   bookstore_backend: listening on HOST:PORT
//
// with the port actually bound. gRPC server reflection is on. SIGTERM or SIGINT shut it
// down (calls in flight get a short grace period); it then exits 0.

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "examples/bookstore/bookstore_service.h"

namespace bookstore {
namespace {

constexpr char kUsage[] =
    "usage: bookstore_backend [--listen=HOST:PORT]\n"
    "  --listen=HOST:PORT  address to serve on (default 127.0.0.1:50051; port 0 picks a\n"
    "                      free port)\n";

// Calls still running this long after SIGTERM are cancelled.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

// Splits "HOST:PORT" (HOST may be "[v6]") at the last colon into `host`. Returns false
// without a colon or with a port that is not a number in 0..65535.
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
  std::string listen = "127.0.0.1:50051";
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--listen=")) {
      listen = std::string(arg);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "bookstore_backend: unknown argument \"%s\"\n%s", argv[i],
                   kUsage);
      return 2;
    }
  }
  std::string host;
  if (!SplitHostPort(listen, &host)) {
    std::fprintf(stderr, "bookstore_backend: --listen=%s is not HOST:PORT\n",
                 listen.c_str());
    return 2;
  }

  // Signals are taken by sigwait below; block them before gRPC starts its threads so that
  // every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  BookstoreService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  // A port in use is an error, not a port shared with another process (gRPC turns
  // SO_REUSEPORT on by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bookstore_backend: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::fprintf(stderr, "bookstore_backend: listening on %s:%d\n", host.c_str(), port);
  std::fflush(stderr);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace bookstore

int main(int argc, char** argv) { return bookstore::Main(argc, argv); }
