// Benchmark helper: the services of the registry benchmark (500 services with 10 unary
// methods and 10 HTTP GET routes each), as serialized FileDescriptorSets, so that every
// benchmark measuring "the 500-service registry" measures the same descriptors.
//
// Thread-safety: pure functions.
//
// Example:
//   std::string set = BenchServiceSet(7);  // bench7.v1.Service, routes /v1/s7/m0/{id}...
#ifndef GATEWAY_REGISTRY_BENCH_SERVICES_H_
#define GATEWAY_REGISTRY_BENCH_SERVICES_H_

#include <string>

namespace gateway::registry::testing {

constexpr int kBenchServices = 500;
constexpr int kBenchMethodsPerService = 10;

// File "bench<index>.proto", package "bench<index>.v1", service "Service" with methods
// M0..M<methods-1> (Request {string id; int32 page_size;} -> Response {string id; bytes
// body;}), each with the rule get: "/v1/s<index>/m<m>/{id}"; serialized with its imports.
std::string BenchServiceSet(int index, int methods = kBenchMethodsPerService);

// "bench<index>.v1.Service".
std::string BenchServiceName(int index);

}  // namespace gateway::registry::testing

#endif  // GATEWAY_REGISTRY_BENCH_SERVICES_H_
