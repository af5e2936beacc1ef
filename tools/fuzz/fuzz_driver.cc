// A main() for libFuzzer entry points built as plain tests: feeds every file found under
// the paths given as arguments (seed corpus, saved crashers) to LLVMFuzzerTestOneInput,
// first whole, then as a series of prefixes and with single bytes flipped.
// tools/fuzz/run_fuzz.sh links the same entry points against libFuzzer instead.
//
// Usage: <target> CORPUS_DIR_OR_FILE...
// Exits 1 when a path does not exist or no file was found; a failing input aborts (or is
// reported by the sanitizers) inside the entry point.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::string& input, size_t* runs) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  ++*runs;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(path)) {
      files.push_back(path);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "no corpus files\n");
    return 1;
  }
  size_t runs = 0;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Run(data, &runs);
    // Truncation and single flipped bytes are the commonest mutations that break parsers.
    const size_t step = data.size() / 32 + 1;
    for (size_t n = 0; n < data.size(); n += step) Run(data.substr(0, n), &runs);
    for (size_t i = 0; i < data.size(); i += step) {
      std::string flipped = data;
      flipped[i] ^= 0x20;
      Run(flipped, &runs);
    }
  }
  std::printf("ran %zu inputs from %zu files\n", runs, files.size());
  return 0;
}
