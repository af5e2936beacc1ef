// The cost a worker pays per logged call: building a Record and pushing it.
#include <string>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "gateway/access_log/access_log.h"

namespace gateway::access_log {
namespace {

void BM_BuildAndPush(benchmark::State& state) {
  AccessLog::Options options;
  options.path = "/dev/null";
  auto log = AccessLog::Start(options);
  const std::string path = "/v1/shelves/1/books/2";
  const std::string agent = "grpc-python/1.51 grpc-c/29.0.0 (linux; chttp2)";
  for (auto _ : state) {
    if (!(*log)->Sample(false)) continue;
    Record r;
    r.time = absl::Now();
    r.front_end = "http";
    r.protocol = "HTTP/1.1";
    r.method = "GET";
    r.path = path;
    r.grpc_method = "/bookstore.Bookstore/GetBook";
    r.status = 200;
    r.grpc_status = 0;
    r.upstream = "127.0.0.1:50051";
    r.attempts = 1;
    r.request_id = NewRequestId();
    r.user_agent = agent;
    r.peer = "ipv4:127.0.0.1:40000";
    (*log)->Push(std::move(r));
  }
  state.counters["dropped"] = static_cast<double>((*log)->dropped());
}
BENCHMARK(BM_BuildAndPush);

void BM_FormatText(benchmark::State& state) {
  Record r;
  r.time = absl::Now();
  r.front_end = "http";
  r.protocol = "HTTP/1.1";
  r.method = "GET";
  r.path = "/v1/shelves/1/books/2";
  r.user_agent = "curl/8.0";
  r.request_id = NewRequestId();
  const std::vector<Field> fields = AllFields();
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendText(r, fields, &out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_FormatText);

}  // namespace
}  // namespace gateway::access_log
