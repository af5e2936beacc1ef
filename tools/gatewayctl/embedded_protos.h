// The .proto sources that gatewayctl carries with it: google/api/annotations.proto,
// http.proto, httpbody.proto and google/rpc/status.proto (the project's copies under
// proto/), so that a team's .proto importing them compiles without a --proto-path to
// the project's proto/ folder.
//
// The table is generated at build time from proto/ (BUILD.bazel: embedded_protos_cc),
// so it is always the same text as the gateway's own copies. Immutable; thread-safe.
//
//   for (const EmbeddedProto& file : EmbeddedProtos()) {
//     Write(absl::StrCat(dir, "/", file.path), file.content);
//   }

#ifndef GATEWAY_TOOLS_GATEWAYCTL_EMBEDDED_PROTOS_H_
#define GATEWAY_TOOLS_GATEWAYCTL_EMBEDDED_PROTOS_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace gateway::ctl {

struct EmbeddedProto {
  absl::string_view path;     // import path, e.g. "google/api/annotations.proto"
  absl::string_view content;  // the file's text
};

// Every embedded file, ordered by path. The views point to static storage.
absl::Span<const EmbeddedProto> EmbeddedProtos();

}  // namespace gateway::ctl

#endif  // GATEWAY_TOOLS_GATEWAYCTL_EMBEDDED_PROTOS_H_
