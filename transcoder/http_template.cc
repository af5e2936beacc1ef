#include "transcoder/http_template.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gateway::transcoder {
namespace {

bool IsLiteralChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&':
    case '\'': case '(': case ')': case '+': case ',': case ';': case '@':
      return true;
    default:
      return false;
  }
}

bool IsHex(char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); }

// Recursive-descent parser over the grammar in http_template.h. Positions in
// error messages are byte offsets into the template text.
class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<HttpTemplate> Parse() {
    if (text_.empty() || text_[0] != '/') {
      return Error(0, "a template must start with '/'");
    }
    pos_ = 1;
    if (text_.size() == 1) return std::move(result_);
    if (absl::Status s = ParseSegments(/*in_variable=*/false); !s.ok()) return s;
    if (pos_ < text_.size() && text_[pos_] == ':') {
      if (absl::Status s = ParseVerb(); !s.ok()) return s;
    }
    if (pos_ < text_.size()) {
      if (text_[pos_] == '}') return Error(pos_, "unbalanced '}'");
      return Error(pos_, absl::StrCat("unexpected character '",
                                      absl::CEscape(text_.substr(pos_, 1)), "'"));
    }
    for (size_t i = 0; i + 1 < result_.segments.size(); ++i) {
      if (result_.segments[i].kind == HttpTemplate::Segment::Kind::kMultiWildcard) {
        return Error(segment_positions_[i], "'**' must be the last segment");
      }
    }
    for (HttpTemplate::Variable& v : result_.variables) {
      if (v.end_segment == static_cast<int>(result_.segments.size()) &&
          result_.segments.back().kind ==
              HttpTemplate::Segment::Kind::kMultiWildcard) {
        v.multi_segment = true;
      }
    }
    return std::move(result_);
  }

 private:
  absl::Status Error(size_t pos, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("position ", pos, ": ", what));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }

  // True when a ':' at `pos` is in the last segment (no '/' follows).
  bool VerbStartsAt(size_t pos) const {
    return text_.find('/', pos) == absl::string_view::npos;
  }

  // Segments = Segment { "/" Segment } ;
  absl::Status ParseSegments(bool in_variable) {
    while (true) {
      if (absl::Status s = ParseSegment(in_variable); !s.ok()) return s;
      if (!AtEnd() && text_[pos_] == '/') {
        ++pos_;
        continue;
      }
      return absl::OkStatus();
    }
  }

  // Segment = "*" | "**" | LITERAL | Variable ;
  absl::Status ParseSegment(bool in_variable) {
    size_t start = pos_;
    if (AtEnd() || text_[pos_] == '/') return Error(start, "empty segment");
    if (text_[pos_] == '}') {
      return in_variable ? Error(start, "empty segment") : Error(start, "unbalanced '}'");
    }
    if (text_[pos_] == ':' && !in_variable && VerbStartsAt(pos_)) {
      return Error(start, "empty segment before the verb");
    }
    HttpTemplate::Segment seg;
    if (text_[pos_] == '*') {
      if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        pos_ += 2;
        seg.kind = HttpTemplate::Segment::Kind::kMultiWildcard;
      } else {
        pos_ += 1;
        seg.kind = HttpTemplate::Segment::Kind::kSingleWildcard;
      }
      if (!AtEnd() && text_[pos_] != '/' && text_[pos_] != '}' && text_[pos_] != ':') {
        return Error(pos_, "a wildcard must be a whole segment");
      }
      AddSegment(std::move(seg), start);
      return absl::OkStatus();
    }
    if (text_[pos_] == '{') {
      if (in_variable) return Error(start, "nested variable");
      return ParseVariable();
    }
    // LITERAL
    while (!AtEnd()) {
      char c = text_[pos_];
      if (IsLiteralChar(c)) {
        ++pos_;
      } else if (c == '%') {
        if (pos_ + 2 >= text_.size()) {
          return Error(pos_, "incomplete percent-encoding");
        }
        if (!IsHex(text_[pos_ + 1]) || !IsHex(text_[pos_ + 2])) {
          return Error(pos_, "invalid percent-encoding");
        }
        pos_ += 3;
      } else if (c == ':') {
        // A ':' in the last segment starts the verb. Inside a variable it is
        // not allowed, so that the pattern's literals never look like a verb.
        if (in_variable) return Error(pos_, "':' is not allowed in a variable's pattern");
        if (VerbStartsAt(pos_)) break;
        ++pos_;
      } else if (c == '/' || c == '}') {
        break;
      } else if (c == '{') {
        return Error(pos_, "a variable must be a whole segment");
      } else if (c == '*') {
        return Error(pos_, "a wildcard must be a whole segment");
      } else {
        return Error(pos_, absl::StrCat("invalid character '",
                                        absl::CEscape(text_.substr(pos_, 1)),
                                        "' in a literal segment"));
      }
    }
    if (pos_ == start) return Error(start, "empty segment");
    seg.kind = HttpTemplate::Segment::Kind::kLiteral;
    seg.literal = std::string(text_.substr(start, pos_ - start));
    AddSegment(std::move(seg), start);
    return absl::OkStatus();
  }

  // Variable = "{" FieldPath [ "=" Segments ] "}" ;
  absl::Status ParseVariable() {
    size_t open = pos_;
    ++pos_;  // '{'
    HttpTemplate::Variable var;
    var.position = static_cast<int>(open);
    // FieldPath = IDENT { "." IDENT } ;
    while (true) {
      size_t id_start = pos_;
      if (AtEnd()) return Error(open, "unbalanced '{'");
      char c = text_[pos_];
      if (!(absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_')) {
        if (c == '{') return Error(pos_, "nested variable");
        return Error(pos_, "expected a field name");
      }
      while (!AtEnd() && (absl::ascii_isalnum(static_cast<unsigned char>(text_[pos_])) ||
                          text_[pos_] == '_')) {
        ++pos_;
      }
      var.field_path.emplace_back(text_.substr(id_start, pos_ - id_start));
      if (!AtEnd() && text_[pos_] == '.') {
        ++pos_;
        continue;
      }
      break;
    }
    std::string dotted = absl::StrJoin(var.field_path, ".");
    if (!bound_fields_.insert(dotted).second) {
      return Error(open, absl::StrCat("field '", dotted, "' is bound twice"));
    }
    var.start_segment = static_cast<int>(result_.segments.size());
    if (AtEnd()) return Error(open, "unbalanced '{'");
    if (text_[pos_] == '=') {
      ++pos_;
      if (absl::Status s = ParseSegments(/*in_variable=*/true); !s.ok()) return s;
    } else {
      HttpTemplate::Segment seg;
      seg.kind = HttpTemplate::Segment::Kind::kSingleWildcard;
      AddSegment(std::move(seg), open);
    }
    if (AtEnd()) return Error(open, "unbalanced '{'");
    if (text_[pos_] == '{') return Error(pos_, "nested variable");
    if (text_[pos_] != '}') {
      return Error(pos_, absl::StrCat("expected '}' but found '",
                                      absl::CEscape(text_.substr(pos_, 1)), "'"));
    }
    ++pos_;
    var.end_segment = static_cast<int>(result_.segments.size());
    var.multi_segment = var.end_segment - var.start_segment > 1;
    if (!AtEnd() && text_[pos_] != '/' && text_[pos_] != ':') {
      return Error(pos_, "a variable must be a whole segment");
    }
    result_.variables.push_back(std::move(var));
    return absl::OkStatus();
  }

  // Verb = ":" LITERAL ;
  absl::Status ParseVerb() {
    size_t start = ++pos_;
    while (!AtEnd() && (IsLiteralChar(text_[pos_]) || text_[pos_] == ':')) ++pos_;
    if (pos_ == start) return Error(start, "empty verb");
    if (!AtEnd()) {
      return Error(pos_, absl::StrCat("invalid character '",
                                      absl::CEscape(text_.substr(pos_, 1)),
                                      "' in the verb"));
    }
    result_.verb = std::string(text_.substr(start));
    return absl::OkStatus();
  }

  void AddSegment(HttpTemplate::Segment seg, size_t position) {
    result_.segments.push_back(std::move(seg));
    segment_positions_.push_back(position);
  }

  absl::string_view text_;
  size_t pos_ = 0;
  HttpTemplate result_;
  std::vector<size_t> segment_positions_;
  std::set<std::string> bound_fields_;
};

}  // namespace

std::string HttpTemplate::Shape() const {
  std::string out;
  for (const Segment& s : segments) {
    out += '/';
    switch (s.kind) {
      case Segment::Kind::kLiteral: out += s.literal; break;
      case Segment::Kind::kSingleWildcard: out += '*'; break;
      case Segment::Kind::kMultiWildcard: out += "**"; break;
    }
  }
  if (segments.empty()) out = "/";
  if (!verb.empty()) absl::StrAppend(&out, ":", verb);
  return out;
}

absl::StatusOr<HttpTemplate> ParseHttpTemplate(absl::string_view text) {
  return Parser(text).Parse();
}

}  // namespace gateway::transcoder
