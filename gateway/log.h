// LogLine: the gateway's one log format, a line on stderr:
//   2026-11-28T04:38:54.437Z gatewayd: <text>
// (UTC, milliseconds). Tests and operators grep these lines.
//
// Thread-safety: thread-safe (one write per line).

#ifndef GATEWAY_LOG_H_
#define GATEWAY_LOG_H_

#include "absl/strings/string_view.h"

namespace gateway {

void LogLine(absl::string_view text);

}  // namespace gateway

#endif  // GATEWAY_LOG_H_
