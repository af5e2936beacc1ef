// Micro benchmarks of JSON -> protobuf and protobuf -> JSON for a ~1 KB
// message with nested and repeated fields: the transcoder's translators next
// to protobuf's JsonStringToMessage / MessageToJsonString on a DynamicMessage.
// Throughput (bytes/s) counts the JSON bytes.
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "transcoder/bench_util.h"
#include "transcoder/request_translator.h"
#include "transcoder/response_translator.h"
#include "transcoder/route_set.h"

namespace gateway::transcoder {
namespace {

constexpr char kBookText[] = R"pb(
  id: 1234567890123
  title: "The Left Hand of Darkness, an unusually long title for a benchmark"
  author { name: "Ursula K. Le Guin" birth_year: 1929 aliases: "UKL" aliases: "Ursula" }
  tags: "fiction" tags: "science-fiction" tags: "classic" tags: "hugo" tags: "nebula"
  genre: FICTION
  labels { key: "shelf" value: "north-3" }
  labels { key: "condition" value: "good" }
  labels { key: "language" value: "en" }
  published { seconds: 1704164645 nanos: 500000000 }
  read_time { seconds: 36000 }
  pages { value: 304 }
  price: 12.5
  rating: 4.75
  in_stock: true
  isbn: 9780441478125
  display_name: "Left Hand"
  co_authors { name: "Editor One" birth_year: 1950 }
  co_authors { name: "Editor Two" birth_year: 1960 aliases: "E2" }
  co_authors { name: "Translator" birth_year: 1970 }
  ratings: 5 ratings: 4 ratings: 5 ratings: 3 ratings: 5 ratings: 4 ratings: 5 ratings: 5
  editions { key: 1 value { name: "Ace Books" birth_year: 1969 } }
  editions { key: 2 value { name: "Harper & Row" birth_year: 1980 } }
  subtitle { value: "A novel of the Hainish cycle" }
  ebook_url: "https://example.com/books/left-hand-of-darkness.epub"
  balance: -4200
  checksum: 18364758544493064720
)pb";

struct Env {
  std::unique_ptr<const RouteSet> routes;
  std::unique_ptr<RequestTranslator> request;
  std::unique_ptr<ResponseTranslator> response;
  google::protobuf::DynamicMessageFactory factory;
  const google::protobuf::Descriptor* book = nullptr;
  std::string proto;
  std::string json;
  RouteMatch create;  // POST /v1/shelves/1/books, body "book"
  RouteMatch bulk;    // client stream of Book, body "*"
  RouteMatch get;     // GET returning Book
};

Env& GetEnv() {
  static Env* env = [] {
    auto* e = new Env();
    const google::protobuf::DescriptorPool& pool = bench::BookstorePool();
    e->routes = *RouteSet::Create(pool, {"gateway.transcoder.testing.Bookstore"});
    e->request = std::make_unique<RequestTranslator>(*e->routes);
    e->response = std::make_unique<ResponseTranslator>(*e->routes);
    e->book = pool.FindMessageTypeByName("gateway.transcoder.testing.Book");
    std::unique_ptr<google::protobuf::Message> m(e->factory.GetPrototype(e->book)->New());
    google::protobuf::TextFormat::ParseFromString(kBookText, m.get());
    e->proto = m->SerializeAsString();
    google::protobuf::util::MessageToJsonString(*m, &e->json);
    e->create = *e->routes->Match("POST", "/v1/shelves/1/books");
    e->bulk = *e->routes->Match("POST", "/v1/books:bulk");
    e->get = *e->routes->Match("GET", "/v1/shelves/1/books/2");
    return e;
  }();
  return *env;
}

void BM_JsonToProto_Transcoder(benchmark::State& state) {
  Env& e = GetEnv();
  RequestOptions options;
  for (auto _ : state) {
    absl::StatusOr<std::string> bytes =
        e.request->TranslateStreamMessage(*e.bulk.plan, e.json, options);
    if (!bytes.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
  state.counters["json_bytes"] = e.json.size();
}
BENCHMARK(BM_JsonToProto_Transcoder);

void BM_JsonToProto_TranscoderWithPathAndQuery(benchmark::State& state) {
  Env& e = GetEnv();
  RequestOptions options;
  for (auto _ : state) {
    absl::StatusOr<std::string> bytes =
        e.request->Translate(e.create, "request_id=abc", e.json, "application/json", options);
    if (!bytes.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
}
BENCHMARK(BM_JsonToProto_TranscoderWithPathAndQuery);

void BM_JsonToProto_BaselineDynamicMessage(benchmark::State& state) {
  Env& e = GetEnv();
  const google::protobuf::Message* prototype = e.factory.GetPrototype(e.book);
  for (auto _ : state) {
    std::unique_ptr<google::protobuf::Message> m(prototype->New());
    if (!google::protobuf::util::JsonStringToMessage(e.json, m.get()).ok()) {
      state.SkipWithError("parse failed");
    }
    std::string bytes = m->SerializeAsString();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
}
BENCHMARK(BM_JsonToProto_BaselineDynamicMessage);

void BM_ProtoToJson_Transcoder(benchmark::State& state) {
  Env& e = GetEnv();
  ResponseOptions options;
  for (auto _ : state) {
    absl::StatusOr<HttpResponseBody> json = e.response->Translate(*e.get.plan, e.proto, options);
    if (!json.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
  state.counters["proto_bytes"] = e.proto.size();
}
BENCHMARK(BM_ProtoToJson_Transcoder);

void BM_ProtoToJson_TranscoderInt64AsNumber(benchmark::State& state) {
  Env& e = GetEnv();
  ResponseOptions options;
  options.int64_as_number = true;
  for (auto _ : state) {
    absl::StatusOr<HttpResponseBody> json = e.response->Translate(*e.get.plan, e.proto, options);
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
}
BENCHMARK(BM_ProtoToJson_TranscoderInt64AsNumber);

void BM_ProtoToJson_BaselineDynamicMessage(benchmark::State& state) {
  Env& e = GetEnv();
  const google::protobuf::Message* prototype = e.factory.GetPrototype(e.book);
  for (auto _ : state) {
    std::unique_ptr<google::protobuf::Message> m(prototype->New());
    m->ParseFromString(e.proto);
    std::string json;
    google::protobuf::util::MessageToJsonString(*m, &json);
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(state.iterations() * e.json.size());
}
BENCHMARK(BM_ProtoToJson_BaselineDynamicMessage);

// A message of one long string field and one bytes field (~1 KB each in JSON), the
// shape of a REST call that carries a payload: string scanning and base64 dominate.
struct PayloadEnv {
  std::string string_json;  // {"title":"<1024 plain characters>"}
  std::string bytes_json;   // {"cover":"<1024 base64 characters>"}
  std::string bytes_proto;  // Book{cover: 768 bytes}
};

PayloadEnv& GetPayloadEnv() {
  static PayloadEnv* env = [] {
    auto* p = new PayloadEnv();
    Env& e = GetEnv();
    std::string title;
    for (int i = 0; i < 1024; ++i) title.push_back("abcdefghij klmnopqrstuvwxyz0123456789"[i % 37]);
    std::string cover;
    for (int i = 0; i < 768; ++i) cover.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
    std::unique_ptr<google::protobuf::Message> m(e.factory.GetPrototype(e.book)->New());
    m->GetReflection()->SetString(m.get(), e.book->FindFieldByName("title"), title);
    google::protobuf::util::MessageToJsonString(*m, &p->string_json);
    m->Clear();
    m->GetReflection()->SetString(m.get(), e.book->FindFieldByName("cover"), cover);
    google::protobuf::util::MessageToJsonString(*m, &p->bytes_json);
    p->bytes_proto = m->SerializeAsString();
    return p;
  }();
  return *env;
}

// One JSON request body translated to protobuf per iteration.
void JsonToProto(benchmark::State& state, const std::string& json) {
  Env& e = GetEnv();
  RequestOptions options;
  for (auto _ : state) {
    absl::StatusOr<std::string> bytes = e.request->TranslateStreamMessage(*e.bulk.plan, json, options);
    if (!bytes.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * json.size());
}

void BM_JsonToProto_LongString(benchmark::State& state) {
  JsonToProto(state, GetPayloadEnv().string_json);
}
BENCHMARK(BM_JsonToProto_LongString);

void BM_JsonToProto_Bytes(benchmark::State& state) { JsonToProto(state, GetPayloadEnv().bytes_json); }
BENCHMARK(BM_JsonToProto_Bytes);

void BM_ProtoToJson_Bytes(benchmark::State& state) {
  Env& e = GetEnv();
  const PayloadEnv& p = GetPayloadEnv();
  ResponseOptions options;
  for (auto _ : state) {
    absl::StatusOr<HttpResponseBody> json = e.response->Translate(*e.get.plan, p.bytes_proto, options);
    if (!json.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(state.iterations() * p.bytes_json.size());
}
BENCHMARK(BM_ProtoToJson_Bytes);

}  // namespace
}  // namespace gateway::transcoder
