// grpc_load: a fixed gRPC load against one address, for benchmarks and load tests.
//
//   grpc_load --target=127.0.0.1:9090 --mode=unary --concurrency=16 --duration=10s
//   grpc_load --target=127.0.0.1:9090 --mode=bidi --duration=10s
//   grpc_load --target=127.0.0.1:9090 --mode=unary --concurrency=200 --calls=2000
//
// Calls gateway.test.v1.Echo (tests/testdata/echo.proto): `unary` keeps --concurrency
// Unary calls in flight; `bidi` runs --concurrency Bidi streams, each ping-pong (one
// message in flight per stream). The request payload is --payload_bytes long. Stops after
// --duration or --calls (whichever comes first) and prints one JSON line:
//   {"mode":"unary","calls":N,"errors":E,"seconds":S,"calls_per_second":R,
//    "p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,"first_error":"..."}
// Exit status: 0 when no call failed, 1 otherwise, 2 for bad flags.
//
// One thread drives all calls through one completion queue (the load generator itself
// stays off the measured processes' cores as much as one core allows).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "tests/testdata/echo.pb.h"

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string target;
  std::string mode = "unary";
  int concurrency = 1;
  absl::Duration duration = absl::Seconds(10);
  int64_t calls = 0;  // 0: no limit
  int payload_bytes = 100;
  absl::Duration call_timeout = absl::Seconds(30);
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    auto value = [&](absl::string_view name, absl::string_view* out) {
      if (!absl::StartsWith(arg, name)) return false;
      *out = arg.substr(name.size());
      return true;
    };
    absl::string_view v;
    if (value("--target=", &v)) {
      flags->target = std::string(v);
    } else if (value("--mode=", &v)) {
      flags->mode = std::string(v);
    } else if (value("--concurrency=", &v)) {
      if (!absl::SimpleAtoi(v, &flags->concurrency) || flags->concurrency < 1) return false;
    } else if (value("--duration=", &v)) {
      if (!absl::ParseDuration(v, &flags->duration)) return false;
    } else if (value("--calls=", &v)) {
      if (!absl::SimpleAtoi(v, &flags->calls) || flags->calls < 0) return false;
    } else if (value("--payload_bytes=", &v)) {
      if (!absl::SimpleAtoi(v, &flags->payload_bytes) || flags->payload_bytes < 0) return false;
    } else if (value("--call_timeout=", &v)) {
      if (!absl::ParseDuration(v, &flags->call_timeout)) return false;
    } else {
      std::cerr << "grpc_load: unknown flag " << arg << "\n";
      return false;
    }
  }
  return !flags->target.empty() && (flags->mode == "unary" || flags->mode == "bidi");
}

grpc::ByteBuffer Serialize(const google::protobuf::Message& message) {
  std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

class Load {
 public:
  Load(const Flags& flags, std::shared_ptr<grpc::Channel> channel)
      : flags_(flags), stub_(std::move(channel)) {
    test::v1::EchoRequest request;
    request.set_payload(std::string(flags.payload_bytes, 'x'));
    request_ = Serialize(request);
  }

  int Run() {
    start_ = Clock::now();
    end_ = start_ + absl::ToChronoNanoseconds(flags_.duration);
    for (int i = 0; i < flags_.concurrency; ++i) {
      auto* slot = new Slot{this};
      slots_.emplace_back(slot);
      if (flags_.mode == "unary") {
        StartUnary(slot);
      } else {
        StartStream(slot);
      }
    }
    void* tag;
    bool ok;
    int active = flags_.concurrency;
    while (active > 0 && cq_.Next(&tag, &ok)) {
      Slot* slot = static_cast<Slot*>(tag);
      if (!slot->OnEvent(ok)) --active;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
    Report(seconds);
    return errors_ == 0 ? 0 : 1;
  }

 private:
  struct Slot {
    Load* load;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream;
    grpc::ByteBuffer response;
    grpc::Status status;
    Clock::time_point sent;
    enum State { kUnary, kStarting, kWriting, kReading, kClosing, kFinishing } state = kUnary;

    // Returns false when this slot is done for good.
    bool OnEvent(bool ok) { return load->Handle(this, ok); }
  };

  bool MoreCalls() const {
    if (flags_.calls > 0 && issued_ >= flags_.calls) return false;
    return Clock::now() < end_;
  }

  void Record(Clock::time_point sent) {
    latencies_us_.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
  }

  void Fail(const grpc::Status& status) {
    if (errors_++ == 0) {
      first_error_ = absl::StrCat(status.error_code(), ": ", status.error_message());
    }
  }

  void StartUnary(Slot* slot) {
    ++issued_;
    slot->context = std::make_unique<grpc::ClientContext>();
    slot->context->set_deadline(absl::ToChronoTime(absl::Now() + flags_.call_timeout));
    slot->unary = stub_.PrepareUnaryCall(slot->context.get(), "/gateway.test.v1.Echo/Unary",
                                         request_, &cq_);
    slot->sent = Clock::now();
    slot->state = Slot::kUnary;
    slot->unary->StartCall();
    slot->unary->Finish(&slot->response, &slot->status, slot);
  }

  void StartStream(Slot* slot) {
    slot->context = std::make_unique<grpc::ClientContext>();
    slot->context->set_deadline(
        absl::ToChronoTime(absl::Now() + flags_.duration + flags_.call_timeout));
    slot->stream =
        stub_.PrepareCall(slot->context.get(), "/gateway.test.v1.Echo/Bidi", &cq_);
    slot->state = Slot::kStarting;
    slot->stream->StartCall(slot);
  }

  bool Handle(Slot* slot, bool ok) {
    switch (slot->state) {
      case Slot::kUnary:
        if (slot->status.ok()) {
          Record(slot->sent);
        } else {
          Fail(slot->status);
        }
        if (!MoreCalls()) return false;
        StartUnary(slot);
        return true;
      case Slot::kStarting:
      case Slot::kReading:
        if (slot->state == Slot::kReading) {
          if (!ok) {
            slot->state = Slot::kFinishing;
            slot->stream->Finish(&slot->status, slot);
            return true;
          }
          Record(slot->sent);
        } else if (!ok) {
          slot->state = Slot::kFinishing;
          slot->stream->Finish(&slot->status, slot);
          return true;
        }
        if (!MoreCalls()) {
          slot->state = Slot::kClosing;
          slot->stream->WritesDone(slot);
          return true;
        }
        ++issued_;
        slot->sent = Clock::now();
        slot->state = Slot::kWriting;
        slot->stream->Write(request_, slot);
        return true;
      case Slot::kWriting:
        if (!ok) {
          slot->state = Slot::kFinishing;
          slot->stream->Finish(&slot->status, slot);
          return true;
        }
        slot->state = Slot::kReading;
        slot->stream->Read(&slot->response, slot);
        return true;
      case Slot::kClosing:
        slot->state = Slot::kFinishing;
        slot->stream->Finish(&slot->status, slot);
        return true;
      case Slot::kFinishing:
        if (!slot->status.ok()) Fail(slot->status);
        return false;
    }
    return false;
  }

  void Report(double seconds) {
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) {
      if (latencies_us_.empty()) return 0.0;
      std::size_t i = static_cast<std::size_t>(p * (latencies_us_.size() - 1));
      return latencies_us_[i];
    };
    const int64_t calls = static_cast<int64_t>(latencies_us_.size());
    std::string error = first_error_;
    for (char& c : error) {
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    std::printf(
        "{\"mode\":\"%s\",\"concurrency\":%d,\"calls\":%lld,\"errors\":%lld,\"seconds\":%.3f,"
        "\"calls_per_second\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
        "\"max_us\":%.1f,\"first_error\":\"%s\"}\n",
        flags_.mode.c_str(), flags_.concurrency, static_cast<long long>(calls),
        static_cast<long long>(errors_), seconds, calls / seconds, pct(0.5), pct(0.9),
        pct(0.99), latencies_us_.empty() ? 0.0 : latencies_us_.back(), error.c_str());
    std::fflush(stdout);
  }

  const Flags& flags_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ByteBuffer request_;
  std::vector<std::unique_ptr<Slot>> slots_;
  Clock::time_point start_;
  Clock::time_point end_;
  int64_t issued_ = 0;
  int64_t errors_ = 0;
  std::string first_error_;
  std::vector<double> latencies_us_;
};

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) {
  gateway::Flags flags;
  if (!gateway::ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: grpc_load --target=HOST:PORT [--mode=unary|bidi] [--concurrency=N]"
                 " [--duration=10s] [--calls=N] [--payload_bytes=N] [--call_timeout=30s]\n";
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  auto channel =
      grpc::CreateCustomChannel(flags.target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
    std::cerr << "grpc_load: cannot connect to " << flags.target << "\n";
    return 1;
  }
  gateway::Load load(flags, channel);
  return load.Run();
}
