// Runs libFuzzer entry points as ordinary tests: every file under the
// directories given as arguments (the seed corpus and saved crashers) is
// passed to LLVMFuzzerTestOneInput, whole and as a series of prefixes.
// With clang, the same targets link against libFuzzer instead (run_fuzz.sh).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (!std::filesystem::exists(p)) {
      std::fprintf(stderr, "%s does not exist\n", argv[i]);
      return 1;
    }
    if (std::filesystem::is_directory(p)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(p)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "no corpus files found\n");
    return 1;
  }
  size_t runs = 0;
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    // The whole input, then prefixes: truncation is the commonest mutation.
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    ++runs;
    size_t step = data.size() / 64 + 1;
    for (size_t n = 0; n < data.size(); n += step) {
      std::string prefix = data.substr(0, n);
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
      ++runs;
    }
  }
  std::printf("ran %zu inputs from %zu files\n", runs, files.size());
  return 0;
}
