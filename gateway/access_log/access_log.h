// AccessLog: one line per call of every front end (gRPC, REST, gRPC-Web), written off the
// request path.
//
// A front end fills a Record (plain values and the few strings it must copy; nothing is
// formatted) when a call ends and hands it to Push(), which takes a short lock to append it
// to a bounded queue and never waits: when the queue is full the record is dropped and
// counted (dropped()). One writer thread takes the queue in batches, formats each record
// (a text line or a JSON object per line, with the configured fields in the configured
// order) and writes with buffered I/O to stdout or to a file, which Reopen() (SIGUSR1)
// reopens after a rotation.
//
// Sampling: Sample() decides per call (a thread-local generator, no lock): a call is kept
// with probability `sample_rate`; errors (HTTP status >= 400, gRPC status other than OK, a
// client that went away) are always kept unless `sample_errors` says otherwise.
//
// Thread-safety: thread-safe; Push, Sample, Reopen from any thread.
//
// Example:
//   AccessLog::Options options;  // text lines to stdout, every call
//   absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
//   Record r;  ... fill ...
//   if ((*log)->Sample(r.IsError())) (*log)->Push(std::move(r));

#ifndef GATEWAY_ACCESS_LOG_ACCESS_LOG_H_
#define GATEWAY_ACCESS_LOG_ACCESS_LOG_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gateway::access_log {

// The fields a line may carry (access_log.fields in the config; names in FieldName()).
enum class Field : uint8_t {
  kTime,         // when the call arrived, UTC, milliseconds
  kFrontEnd,     // "grpc", "http" (REST) or "grpc-web"
  kProtocol,     // "HTTP/1.1" or "HTTP/2"
  kMethod,       // the HTTP method ("POST" for gRPC)
  kPath,         // the request path, without the query string
  kGrpcMethod,   // "/pkg.Service/Method" of the routed method, or empty
  kStatus,       // the HTTP status sent (200 for gRPC); 0: the client went away first
  kGrpcStatus,   // the gRPC status code, or none (a call that never had one: /healthz)
  kBytesIn,      // request body bytes (message bytes for gRPC)
  kBytesOut,     // response body bytes (message bytes for gRPC)
  kDuration,     // seconds from arrival to the end of the response
  kTtfb,         // seconds from arrival to the response's first byte
  kUpstream,     // the backend endpoint of the last attempt, or empty
  kAttempts,     // backend attempts (0: the call never reached a backend)
  kCallerId,     // the caller the auth interceptors identified, or empty
  kRequestId,    // x-request-id (the client's, or the one the gateway generated)
  kTraceId,      // the trace-id of a W3C traceparent header, or empty
  kUserAgent,    // the client's user-agent
  kPeer,         // the client's address
};
inline constexpr int kFieldCount = 19;

// The config name of `field` ("time", "front_end", "grpc_status", ...).
absl::string_view FieldName(Field field);
// Every field, in the default order.
std::vector<Field> AllFields();

enum class Format { kText, kJson };

// One call. Strings are owned (the call they come from ends before the line is written).
struct Record {
  absl::Time time;
  const char* front_end = "";  // a literal
  const char* protocol = "";   // a literal
  std::string method;
  std::string path;
  std::string grpc_method;
  int status = 0;
  int grpc_status = -1;  // -1: none
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  absl::Duration duration;
  absl::Duration ttfb = absl::InfiniteDuration();  // infinite: no byte was sent
  std::string upstream;
  uint32_t attempts = 0;
  std::string caller_id;
  std::string request_id;
  std::string trace_id;
  std::string user_agent;
  std::string peer;

  // True for a call that failed: HTTP status >= 400, a gRPC status other than OK, or a
  // client that went away (status 0).
  bool IsError() const { return status == 0 || status >= 400 || grpc_status > 0; }
};

// Appends one line for `r` (ending in '\n') to *out.
//
// Text: the fields separated by single spaces; numbers bare ("-" when absent), durations
// in seconds with microseconds ("0.001234"), the time as 2026-12-05T19:26:39.123Z, strings
// in double quotes with '"', '\' and every byte outside 0x20-0x7E escaped ("\x0a"), "-" for
// an empty string. A line never contains a raw newline or control byte.
// JSON: one object, keys the field names in the given order; strings escaped per RFC 8259,
// every byte above 0x7E written as \u00XX (so any bytes make valid JSON); numbers as numbers;
// an absent number is null.
void AppendText(const Record& r, const std::vector<Field>& fields, std::string* out);
void AppendJson(const Record& r, const std::vector<Field>& fields, std::string* out);

// A fresh request id: 32 lowercase hex digits (128 random bits from a thread-local
// generator; unique, not a secret).
std::string NewRequestId();

// The trace-id of a W3C `traceparent` value ("00-<32 hex>-<16 hex>-<2 hex>"), or empty
// when the value is not one (or its trace-id is all zeros).
absl::string_view TraceIdFromTraceparent(absl::string_view traceparent);

class AccessLog {
 public:
  struct Options {
    Format format = Format::kText;
    // The fields of a line, in order; empty: AllFields().
    std::vector<Field> fields;
    // The file lines are appended to (created 0644 when missing); empty: stdout.
    std::string path;
    // Probability that a call is logged, 0..1.
    double sample_rate = 1.0;
    // Whether failed calls (Record::IsError) are sampled like the others; false: always
    // logged.
    bool sample_errors = false;
    // Records waiting for the writer at most; more are dropped (and counted).
    size_t queue_size = 16384;
  };

  // Opens the output and starts the writer thread. INVALID_ARGUMENT naming the file when it
  // cannot be opened for appending.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Start(const Options& options);

  // Writes what is queued, then stops the writer.
  ~AccessLog();

  // Whether the call is to be logged (see the file comment). Cheap: no lock.
  bool Sample(bool error) const;

  // Queues `record` for the writer; never blocks. When the queue holds queue_size records
  // already, the record is dropped and counted.
  void Push(Record&& record);

  // The writer reopens the file (by its path) before its next write: after a rename, lines
  // go to a new file under the configured name. No effect on stdout.
  void Reopen();

  // Returns once every record pushed before the call has been written and flushed.
  void Flush();

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }

 private:
  explicit AccessLog(const Options& options, FILE* out);
  void Run();
  // Writes `batch` to out_ (the writer thread only).
  void Write(const std::vector<Record>& batch);

  const Options options_;
  const std::vector<Field> fields_;
  FILE* out_;  // the writer thread only (and the constructor/destructor)
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> written_{0};

  absl::Mutex mu_;
  absl::CondVar wake_;  // the writer waits on it between batches
  std::vector<Record> queue_ ABSL_GUARDED_BY(mu_);
  bool reopen_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The writer is writing a batch it took from queue_ (Flush waits for it).
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gateway::access_log

#endif  // GATEWAY_ACCESS_LOG_ACCESS_LOG_H_
