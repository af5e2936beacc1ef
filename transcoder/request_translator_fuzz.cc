// Fuzz target: request translation (path bindings, query strings and JSON
// bodies into protobuf), plus the client-stream reader and the response
// translator on the same bytes.
//
// Input: first byte selects a route; then "<path>\n<query>\n<body>".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "transcoder/json_stream.h"
#include "transcoder/request_translator.h"
#include "transcoder/response_translator.h"
#include "transcoder/route_set.h"
#include "transcoder/testdata/bookstore.pb.h"

namespace {

using namespace gateway::transcoder;  // NOLINT: a fuzz target's file scope

// A pool built from serialized FileDescriptorProtos, the way the gateway
// builds its pools from descriptor sets.
void AddFile(const google::protobuf::FileDescriptor* file,
             google::protobuf::DescriptorPool* pool) {
  if (pool->FindFileByName(file->name()) != nullptr) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), pool);
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  if (pool->BuildFile(proto) == nullptr) std::abort();
}

struct State {
  google::protobuf::DescriptorPool pool;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory;
  std::unique_ptr<const RouteSet> routes;
  std::unique_ptr<RequestTranslator> request;
  std::unique_ptr<ResponseTranslator> response;
};

const State& GetState() {
  static const State* state = [] {
    auto* s = new State();
    AddFile(gateway::transcoder::testing::Book::descriptor()->file(), &s->pool);
    absl::StatusOr<std::unique_ptr<const RouteSet>> routes =
        RouteSet::Create(s->pool, {"gateway.transcoder.testing.Bookstore"});
    if (!routes.ok()) std::abort();
    s->routes = *std::move(routes);
    s->request = std::make_unique<RequestTranslator>(*s->routes);
    s->response = std::make_unique<ResponseTranslator>(*s->routes);
    s->resolver.reset(google::protobuf::util::NewTypeResolverForDescriptorPool(
        "type.googleapis.com", &s->pool));
    s->factory = std::make_unique<google::protobuf::DynamicMessageFactory>(&s->pool);
    return s;
  }();
  return *state;
}

std::string Canonical(const google::protobuf::Descriptor* type, const std::string& bytes) {
  std::unique_ptr<google::protobuf::Message> m(GetState().factory->GetPrototype(type)->New());
  if (!m->ParseFromString(bytes)) return "UNPARSEABLE";
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m->SerializeToCodedStream(&coded);
  }  // the streams trim `out` when they close
  return out;
}

// When both the transcoder's JSON codec and protobuf's converter accept a
// JSON message, they must build the same message.
void CheckAgainstProtobuf(const MethodPlan& plan, absl::string_view json) {
  const State& state = GetState();
  absl::StatusOr<std::string> ours =
      state.request->TranslateStreamMessage(plan, json, RequestOptions());
  if (!ours.ok()) return;
  std::string theirs;
  const google::protobuf::Descriptor* type = plan.method->input_type();
  if (!google::protobuf::util::JsonToBinaryString(
           state.resolver.get(), "type.googleapis.com/" + type->full_name(), std::string(json), &theirs)
           .ok()) {
    return;
  }
  if (Canonical(type, *ours) != Canonical(type, theirs)) {
    std::fprintf(stderr, "JSON codec and protobuf disagree on %s:\n ours: %s\n theirs: %s\n",
                 type->full_name().c_str(), absl::CEscape(*ours).c_str(),
                 absl::CEscape(theirs).c_str());
    std::abort();
  }
}

constexpr const char* kMethods[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const State& state = GetState();
  uint8_t selector = data[0];
  absl::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<absl::string_view> parts = absl::StrSplit(input, absl::MaxSplits('\n', 2));
  parts.resize(3);
  const char* method = kMethods[selector % 6];

  RequestOptions options;
  options.reject_unknown_query_parameters = selector & 0x08;
  options.ignore_unknown_json_fields = selector & 0x10;
  options.case_insensitive_enums = selector & 0x20;
  options.query_plus_as_space = selector & 0x40;
  absl::StatusOr<RouteMatch> m = state.routes->Match(method, parts[0]);
  if (m.ok()) {
    absl::StatusOr<std::string> bytes =
        state.request->Translate(*m, parts[1], parts[2], "application/json", options);
    if (!bytes.ok() && bytes.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
    (void)state.response->Translate(*m->plan, parts[2], ResponseOptions());
    if (bytes.ok()) {
      ResponseOptions out;
      out.int64_as_number = selector & 0x80;
      // What went in must come out as JSON without error for the input type.
      (void)state.response->MessageToJson(m->plan->method->input_type(), *bytes, out);
    }
  }

  JsonStreamReader reader(selector & 1 ? StreamFormat::kNdjson : StreamFormat::kJsonArray,
                          1 << 16);
  reader.Append(parts[2]);
  const MethodPlan& bulk = *state.routes->Match("POST", "/v1/books:bulk")->plan;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::optional<std::string>> next = reader.Next();
    if (!next.ok() || !next->has_value()) break;
    (void)state.request->TranslateStreamMessage(bulk, **next, options);
  }
  (void)reader.Finish();

  CheckAgainstProtobuf(bulk, parts[2]);
  CheckAgainstProtobuf(*state.routes->Match("POST", "/v1/echo")->plan, parts[2]);
  return 0;
}
