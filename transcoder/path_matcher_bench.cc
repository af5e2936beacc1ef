// Micro benchmarks of PathMatcher::Match against route tables of growing size.
// The time per match should stay flat from 100 to 10,000 routes.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "transcoder/path_matcher.h"

namespace gateway::transcoder {
namespace {

// Route i looks like a Google-style API: collections, ids, a custom verb on
// some, a multi-segment variable on others.
std::string RouteTemplate(int i) {
  switch (i % 4) {
    case 0:
      return absl::StrCat("/v", i % 3 + 1, "/projects/{project}/service", i,
                          "/items/{item}");
    case 1:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/{name=shelves/*/books/*}");
    case 2:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/items/{item}:cancel");
    default:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/files/{path=**}");
  }
}

std::string RoutePath(int i) {
  switch (i % 4) {
    case 0:
      return absl::StrCat("/v", i % 3 + 1, "/projects/p-123/service", i, "/items/item-456");
    case 1:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/shelves/s1/books/b2");
    case 2:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/items/789:cancel");
    default:
      return absl::StrCat("/v", i % 3 + 1, "/service", i, "/files/a/b/c.txt");
  }
}

void BM_Match(benchmark::State& state) {
  const int routes = static_cast<int>(state.range(0));
  PathMatcherBuilder builder;
  for (int i = 0; i < routes; ++i) {
    std::string t = RouteTemplate(i);
    if (!builder.Add("GET", *ParseHttpTemplate(t), i, t).ok()) {
      state.SkipWithError("conflict");
      return;
    }
  }
  std::unique_ptr<const PathMatcher> matcher = std::move(builder).Build();
  // Paths spread over the whole table, so that lookups are not all hot.
  std::vector<std::string> paths;
  for (int i = 0; i < 512; ++i) paths.push_back(RoutePath((i * 7919) % routes));
  size_t n = 0;
  for (auto _ : state) {
    absl::StatusOr<PathMatch> m = matcher->Match("GET", paths[n++ & 511]);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_Match)->Arg(100)->Arg(1000)->Arg(10000);

void BM_MatchNotFound(benchmark::State& state) {
  const int routes = static_cast<int>(state.range(0));
  PathMatcherBuilder builder;
  for (int i = 0; i < routes; ++i) {
    std::string t = RouteTemplate(i);
    (void)builder.Add("GET", *ParseHttpTemplate(t), i, t);
  }
  std::unique_ptr<const PathMatcher> matcher = std::move(builder).Build();
  for (auto _ : state) {
    absl::StatusOr<PathMatch> m = matcher->Match("GET", "/v1/projects/p/nothing/here");
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_MatchNotFound)->Arg(100)->Arg(10000);

void BM_ParseTemplate(benchmark::State& state) {
  for (auto _ : state) {
    absl::StatusOr<HttpTemplate> t =
        ParseHttpTemplate("/v1/projects/{project}/locations/{location}/{name=books/*}:get");
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ParseTemplate);

}  // namespace
}  // namespace gateway::transcoder
