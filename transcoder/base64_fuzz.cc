// Fuzz target: the base64 codec. The decoder must agree with
// absl::Base64Unescape || absl::WebSafeBase64Unescape on every input (same
// verdict, same bytes), and encoding any input must decode back to it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "transcoder/base64.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);

  std::string ours = "prefix";
  bool ours_ok = gateway::transcoder::Base64Decode(in, &ours);
  std::string theirs;
  bool theirs_ok = absl::Base64Unescape(in, &theirs) || absl::WebSafeBase64Unescape(in, &theirs);
  if (ours_ok != theirs_ok) std::abort();
  if (ours_ok ? ours != "prefix" + theirs : ours != "prefix") std::abort();
  if (ours_ok && theirs.size() > gateway::transcoder::Base64DecodedSize(in)) std::abort();

  std::string encoded;
  gateway::transcoder::Base64Encode(in, &encoded);
  if (encoded != absl::Base64Escape(in)) std::abort();
  if (gateway::transcoder::Base64DecodedSize(encoded) != size) std::abort();
  std::string decoded;
  if (!gateway::transcoder::Base64Decode(encoded, &decoded) || decoded != in) std::abort();
  return 0;
}
