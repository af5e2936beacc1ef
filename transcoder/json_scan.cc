#include "transcoder/json_scan.h"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"

#include "absl/strings/str_cat.h"

namespace gateway::transcoder {
namespace {

absl::Status ErrorAt(size_t pos, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON at byte ", pos, ": ", what));
}

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Skips a string starting at the opening quote at *pos.
absl::Status SkipString(absl::string_view in, size_t* pos) {
  size_t i = *pos + 1;
  while (i < in.size()) {
    char c = in[i];
    if (c == '"') {
      *pos = i + 1;
      return absl::OkStatus();
    }
    if (c == '\\') {
      if (i + 1 >= in.size()) break;
      i += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      return ErrorAt(i, "control character in a string");
    }
    ++i;
  }
  return ErrorAt(*pos, "unterminated string");
}

// Length of the UTF-8 sequence at s[i], or 0 if invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2; cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3; cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4; cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Unescapes the body of a JSON string literal (without quotes). Invalid
// escapes are copied as written; the converter reports them later.
std::string UnescapeJsonString(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char e = s[++i];
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'u': {
        uint32_t cp = 0;
        bool ok = i + 4 < s.size();
        for (int k = 1; ok && k <= 4; ++k) {
          int h = Hex(s[i + k]);
          if (h < 0) ok = false; else cp = cp * 16 + h;
        }
        if (!ok) {
          out.append("\\u");
          break;
        }
        i += 4;
        AppendUtf8(cp, &out);
        break;
      }
      default: out.push_back(e); break;
    }
  }
  return out;
}

}  // namespace

void SkipJsonWhitespace(absl::string_view in, size_t* pos) {
  while (*pos < in.size() && IsWs(in[*pos])) ++*pos;
}

absl::Status SkipJsonValue(absl::string_view in, size_t* pos, int max_depth) {
  // Iterative, so that hostile nesting cannot exhaust the stack. Each open
  // container has a Level; the keys of open objects are kept (as raw views)
  // to reject duplicates: a linear scan for small objects, a hash set once an
  // object has many keys.
  struct Level {
    char open;
    size_t key_base;
    std::unique_ptr<absl::flat_hash_set<absl::string_view>> big;
  };
  constexpr size_t kLinearKeys = 32;
  std::vector<Level> stack;
  std::vector<absl::string_view> keys;
  bool expect_value = true;
  size_t i = *pos;

  // Reads `"key" :` at i, inside the object at the top of the stack.
  auto read_key = [&]() -> absl::Status {
    SkipJsonWhitespace(in, &i);
    if (i >= in.size() || in[i] != '"') return ErrorAt(i, "expected a key");
    size_t key_start = i;
    if (absl::Status s = SkipString(in, &i); !s.ok()) return s;
    absl::string_view key = in.substr(key_start + 1, i - key_start - 2);
    Level& level = stack.back();
    bool duplicate = false;
    if (level.big != nullptr) {
      duplicate = !level.big->insert(key).second;
    } else {
      for (size_t k = level.key_base; k < keys.size(); ++k) {
        if (keys[k] == key) {
          duplicate = true;
          break;
        }
      }
      keys.push_back(key);
      if (keys.size() - level.key_base > kLinearKeys) {
        level.big = std::make_unique<absl::flat_hash_set<absl::string_view>>(
            keys.begin() + level.key_base, keys.end());
        keys.resize(level.key_base);
      }
    }
    if (duplicate) {
      return ErrorAt(key_start, absl::StrCat("duplicate key \"",
                                             key.substr(0, std::min<size_t>(key.size(), 64)),
                                             "\""));
    }
    SkipJsonWhitespace(in, &i);
    if (i >= in.size() || in[i] != ':') return ErrorAt(i, "expected ':'");
    ++i;
    return absl::OkStatus();
  };
  auto pop = [&]() {
    keys.resize(std::min(keys.size(), stack.back().key_base));
    stack.pop_back();
  };

  while (true) {
    if (!expect_value && stack.empty()) {
      *pos = i;
      return absl::OkStatus();
    }
    SkipJsonWhitespace(in, &i);
    if (i >= in.size()) return ErrorAt(i, "unexpected end of input");
    char c = in[i];
    if (expect_value) {
      if (c == '{' || c == '[') {
        if (static_cast<int>(stack.size()) >= max_depth) {
          return ErrorAt(i, absl::StrCat("nesting deeper than ", max_depth));
        }
        stack.push_back(Level{c, keys.size(), nullptr});
        ++i;
        SkipJsonWhitespace(in, &i);
        if (i < in.size() && in[i] == (c == '{' ? '}' : ']')) {
          pop();
          ++i;
          expect_value = false;
        } else if (c == '{') {
          if (absl::Status s = read_key(); !s.ok()) return s;
        }
        continue;
      }
      if (c == '"') {
        if (absl::Status s = SkipString(in, &i); !s.ok()) return s;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        while (i < in.size() && (in[i] == '-' || in[i] == '+' || in[i] == '.' ||
                                 in[i] == 'e' || in[i] == 'E' ||
                                 (in[i] >= '0' && in[i] <= '9'))) {
          ++i;
        }
      } else if (in.substr(i, 4) == "true" || in.substr(i, 4) == "null") {
        i += 4;
      } else if (in.substr(i, 5) == "false") {
        i += 5;
      } else {
        return ErrorAt(i, "expected a value");
      }
      expect_value = false;
      continue;
    }
    // After a value inside a container: close it or separate members.
    char open = stack.back().open;
    if (c == ',') {
      ++i;
      if (open == '{') {
        if (absl::Status s = read_key(); !s.ok()) return s;
      }
      expect_value = true;
    } else if ((c == '}' && open == '{') || (c == ']' && open == '[')) {
      pop();
      ++i;
    } else {
      return ErrorAt(i, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}

absl::Status CheckJsonDocument(absl::string_view in, int max_depth) {
  size_t pos = 0;
  if (absl::Status s = SkipJsonValue(in, &pos, max_depth); !s.ok()) return s;
  SkipJsonWhitespace(in, &pos);
  if (pos != in.size()) return ErrorAt(pos, "unexpected data after the JSON value");
  return absl::OkStatus();
}

absl::Status ForEachJsonMember(
    absl::string_view in,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value)> fn) {
  size_t i = 0;
  SkipJsonWhitespace(in, &i);
  if (i >= in.size() || in[i] != '{') return ErrorAt(i, "expected an object");
  ++i;
  SkipJsonWhitespace(in, &i);
  if (i < in.size() && in[i] == '}') return absl::OkStatus();
  while (i < in.size()) {
    SkipJsonWhitespace(in, &i);
    if (i >= in.size() || in[i] != '"') return ErrorAt(i, "expected a key");
    size_t key_start = i;
    if (absl::Status s = SkipString(in, &i); !s.ok()) return s;
    std::string key = UnescapeJsonString(in.substr(key_start + 1, i - key_start - 2));
    SkipJsonWhitespace(in, &i);
    if (i >= in.size() || in[i] != ':') return ErrorAt(i, "expected ':'");
    ++i;
    SkipJsonWhitespace(in, &i);
    size_t value_start = i;
    if (absl::Status s = SkipJsonValue(in, &i, 1 << 20); !s.ok()) return s;
    fn(key, in.substr(value_start, i - value_start));
    SkipJsonWhitespace(in, &i);
    if (i < in.size() && in[i] == ',') {
      ++i;
      continue;
    }
    if (i < in.size() && in[i] == '}') return absl::OkStatus();
    return ErrorAt(i, "expected ',' or '}'");
  }
  return ErrorAt(i, "unexpected end of input");
}

absl::Status ForEachJsonElement(absl::string_view in,
                                absl::FunctionRef<void(absl::string_view element)> fn) {
  size_t i = 0;
  SkipJsonWhitespace(in, &i);
  if (i >= in.size() || in[i] != '[') return ErrorAt(i, "expected an array");
  ++i;
  SkipJsonWhitespace(in, &i);
  if (i < in.size() && in[i] == ']') return absl::OkStatus();
  while (i < in.size()) {
    SkipJsonWhitespace(in, &i);
    size_t start = i;
    if (absl::Status s = SkipJsonValue(in, &i, 1 << 20); !s.ok()) return s;
    fn(in.substr(start, i - start));
    SkipJsonWhitespace(in, &i);
    if (i < in.size() && in[i] == ',') {
      ++i;
      continue;
    }
    if (i < in.size() && in[i] == ']') return absl::OkStatus();
    return ErrorAt(i, "expected ',' or ']'");
  }
  return ErrorAt(i, "unexpected end of input");
}

namespace {

// 0: copied as is; 1: escaped; 2: first byte of a multi-byte UTF-8 sequence
// (or an invalid byte).
constexpr std::array<uint8_t, 256> MakeJsonCharClass() {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = 1;
  table['"'] = 1;
  table['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) table[c] = 2;
  return table;
}
constexpr std::array<uint8_t, 256> kJsonCharClass = MakeJsonCharClass();

}  // namespace

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;
    while (run < s.size() && kJsonCharClass[static_cast<unsigned char>(s[run])] == 0) ++run;
    out->append(s.data() + i, run - i);
    i = run;
    if (i >= s.size()) break;
    unsigned char c = s[i];
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
    ++i;
  }
  out->push_back('"');
}

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace gateway::transcoder
