// A libFuzzer entry point for fuzz_driver_test.sh: aborts on an input that starts with
// "abort", accepts everything else.
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 5 && std::memcmp(data, "abort", 5) == 0) std::abort();
  return 0;
}
