#include "transcoder/transcoder.h"

#include <utility>

namespace gateway::transcoder {

absl::StatusOr<std::unique_ptr<const Transcoder>> Transcoder::Create(
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
    const TranscoderOptions& options) {
  absl::StatusOr<std::unique_ptr<const RouteSet>> routes =
      RouteSet::Create(pool, services, options.routes);
  if (!routes.ok()) return routes.status();
  return std::unique_ptr<const Transcoder>(
      new Transcoder(*std::move(routes), options, pool));
}

}  // namespace gateway::transcoder
