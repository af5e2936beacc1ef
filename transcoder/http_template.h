// HttpTemplate: the parsed form of a google.api.http path template, such as
// "/v1/{name=shelves/*/books/*}:publish".
//
// Parsing is pure and stateless; a parsed HttpTemplate is an immutable value
// (copyable, safe to share between threads once built).
//
// Example:
//   absl::StatusOr<HttpTemplate> t = ParseHttpTemplate("/v1/{name=shelves/*}:get");
//   // t->segments: Literal("v1"), Literal("shelves"), SingleWildcard()
//   // t->variables[0].field_path == {"name"}, covering segments [1, 3)
//   // t->verb == "get"
//
// Field names are only checked for syntax here. Whether a variable names an
// existing scalar field of the request message is checked by RouteSet, which
// knows the descriptors.
#ifndef GATEWAY_TRANSCODER_HTTP_TEMPLATE_H_
#define GATEWAY_TRANSCODER_HTTP_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::transcoder {

struct HttpTemplate {
  struct Segment {
    enum class Kind {
      kLiteral,         // matches exactly `literal`
      kSingleWildcard,  // "*": matches one non-empty segment
      kMultiWildcard,   // "**": matches the remaining zero or more segments
    };
    Kind kind = Kind::kLiteral;
    std::string literal;  // only for kLiteral

    bool operator==(const Segment& o) const {
      return kind == o.kind && literal == o.literal;
    }
  };

  struct Variable {
    // The dotted field path, e.g. {"book", "id"} for "{book.id}".
    std::vector<std::string> field_path;
    // The segments [start_segment, end_segment) the variable covers. When the
    // variable ends with "**", end_segment == segments.size() and the variable
    // binds every remaining segment of a request path.
    int start_segment = 0;
    int end_segment = 0;
    // True when the variable pattern spans more than one segment or contains
    // "**"; such a variable keeps "%2F" encoded when it is bound.
    bool multi_segment = false;
    // Byte offset of the '{' in the template text (for error messages).
    int position = 0;
  };

  std::vector<Segment> segments;
  std::vector<Variable> variables;
  std::string verb;  // without the ':'; empty when the template has no verb

  // Canonical text, e.g. "/v1/*/books/**:verb": the shape that matching sees.
  // Two templates with the same shape and HTTP method conflict.
  std::string Shape() const;
};

// Parses `text` as a google.api.http path template.
//
// Grammar (from google/api/http.proto, with "/" alone accepted as the root):
//
//   Template = "/" | "/" Segments [ Verb ] ;
//   Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb     = ":" LITERAL ;
//
//   IDENT    = [A-Za-z_][A-Za-z0-9_]* ;
//   LITERAL  = one or more of: unreserved / pct-encoded / sub-delims / "@" / ":"
//              (RFC 3986 pchar, without "*" and "="), except that a ":" in the
//              last segment starts the Verb and that literals inside a
//              Variable may not contain ":".
//
// Additional rules: "**" may only appear as the last segment (the Verb may
// follow it); variables may not nest; a variable's pattern may not contain
// another variable; a field path may be bound by at most one variable.
//
// Returns the template, or INVALID_ARGUMENT with a message of the form
// "position N: <what is wrong>" where N is the 0-based byte offset in `text`.
absl::StatusOr<HttpTemplate> ParseHttpTemplate(absl::string_view text);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_HTTP_TEMPLATE_H_
