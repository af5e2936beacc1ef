// The compatibility check between two versions of one service: what a client built
// against `before` would find broken in `after`.
//
// Breaking: a removed method; a changed streaming kind, request or response type, or set
// of google.api.http rules; in every message and enum reachable from the old service's
// methods, a removed or renamed field, a changed field number, type or cardinality, a
// removed or renumbered enum value. Additions are not breaking.
//
// Each change is one line, naming the element and the change:
//   bookstore.v1.Bookstore.GetShelf: removed
//   bookstore.v1.Book.title: field number changed 2 -> 5
//   bookstore.v1.Bookstore.ListBooks: streaming kind changed unary -> server streaming
//   bookstore.v1.Bookstore.GetShelf: http rule changed GET /v1/shelves/{shelf} -> GET /v2/shelves/{shelf}
//
// Thread-safety: pure functions over immutable descriptors.

#ifndef GATEWAY_REGISTRY_COMPATIBILITY_H_
#define GATEWAY_REGISTRY_COMPATIBILITY_H_

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway::registry {

// The breaking changes of `after` against `before`, in a stable order (methods in the
// old declaration order, then messages in the order they are reached). Empty when
// compatible. The two descriptors may come from different pools.
std::vector<std::string> BreakingChanges(const google::protobuf::ServiceDescriptor& before,
                                         const google::protobuf::ServiceDescriptor& after);

// The google.api.http bindings of `method` as text, the rule first, then its
// additional_bindings: "GET /v1/shelves/{shelf}", "POST /v1/shelves body=shelf",
// "CUSTOM(HEAD) /v1/x". Empty when the method has no rule.
std::vector<std::string> HttpRuleTexts(const google::protobuf::MethodDescriptor& method);

// The differences between two copies of one file (the same name in two descriptor sets)
// that matter to the wire or to the HTTP/JSON mapping, one line each, e.g.
//   google/api/http.proto: message google.api.HttpRule field 'body' (7): type bytes (set A)
//   vs string (set B)
// where `a_label` and `b_label` name the two copies. Compared: the package and syntax;
// messages (fields by number: name, type, label, oneof, effective JSON name, default,
// options such as packed or jstype), oneofs, enums and their values, extensions,
// services and methods (request and response types, streaming, options such as
// google.api.http). Not compared: source info, a json_name equal to the default one,
// file options (java_package, go_package, ...), imports, reserved names and ranges, and
// `deprecated` options. Empty when the copies are equivalent. At most `max_lines` lines;
// a last line says how many more there are.
std::vector<std::string> FileDifferences(const google::protobuf::FileDescriptorProto& a,
                                         const std::string& a_label,
                                         const google::protobuf::FileDescriptorProto& b,
                                         const std::string& b_label, int max_lines = 10);

// "unary", "client streaming", "server streaming" or "bidi streaming".
std::string StreamingKind(const google::protobuf::MethodDescriptor& method);

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_COMPATIBILITY_H_
