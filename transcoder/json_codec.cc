#include "transcoder/json_codec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "transcoder/base64.h"
#include "transcoder/field_text.h"
#include "transcoder/json_scan.h"
#include "transcoder/wire_util.h"

namespace gateway::transcoder {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

namespace {

enum class Wkt {
  kNone, kAny, kTimestamp, kDuration, kFieldMask, kStruct, kValue, kListValue, kEmpty,
  kWrapper,
};

Wkt WktOf(const Descriptor* d) {
  const std::string& n = d->full_name();
  if (n.rfind("google.protobuf.", 0) != 0) return Wkt::kNone;
  if (n == "google.protobuf.Any") return Wkt::kAny;
  if (n == "google.protobuf.Timestamp") return Wkt::kTimestamp;
  if (n == "google.protobuf.Duration") return Wkt::kDuration;
  if (n == "google.protobuf.FieldMask") return Wkt::kFieldMask;
  if (n == "google.protobuf.Struct") return Wkt::kStruct;
  if (n == "google.protobuf.Value") return Wkt::kValue;
  if (n == "google.protobuf.ListValue") return Wkt::kListValue;
  if (n == "google.protobuf.Empty") return Wkt::kEmpty;
  if (IsWrapperType(d)) return Wkt::kWrapper;
  return Wkt::kNone;
}

WireType WireTypeOf(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return WireType::kFixed64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return WireType::kFixed32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return WireType::kLengthDelimited;
    default:
      return WireType::kVarint;
  }
}

int EncodeVarint(uint64_t v, char* buf) {
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  return n;
}

// Writes the length of what follows data_pos into the varint prefix that occupies
// out[len_pos, data_pos), resizing the prefix when the length needs more or fewer bytes.
void SetLength(std::string* out, size_t len_pos, size_t data_pos) {
  char buf[10];
  const size_t bytes = EncodeVarint(out->size() - data_pos, buf);
  const size_t old_bytes = data_pos - len_pos;
  if (bytes < old_bytes) out->erase(len_pos, old_bytes - bytes);
  if (bytes > old_bytes) out->insert(len_pos, bytes - old_bytes, '\0');
  std::memcpy(&(*out)[len_pos], buf, bytes);
}

bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    result |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (b < 0x80) {
      *v = result;
      return true;
    }
  }
  return false;
}

uint64_t LoadLE(absl::string_view data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(data[i])) << (8 * i);
  }
  return v;
}

}  // namespace

struct JsonCodec::MessageInfo {
  struct Field {
    const FieldDescriptor* fd = nullptr;
    int number = 0;
    FieldDescriptor::Type type = FieldDescriptor::TYPE_INT32;
    WireType wire_type = WireType::kVarint;
    bool repeated = false;
    bool map = false;
    bool packable = false;
    bool in_oneof = false;  // real or synthetic (proto3 optional) oneof
    int oneof = -1;         // index of the real oneof among the message's; -1 if none
    const MessageInfo* message = nullptr;  // message fields and map entries
    char tag[5] = {};                      // encoded tag with the field's wire type
    uint8_t tag_size = 0;
    std::string json_key;                  // "\"jsonName\":"
    std::string proto_key;                 // "\"proto_name\":"
  };

  const Descriptor* descriptor = nullptr;
  Wkt wkt = Wkt::kNone;
  std::vector<Field> fields;  // declaration order
  absl::flat_hash_map<std::string, int> by_name;  // json and proto names
  std::vector<int> by_number;                     // dense, -1 when absent
  absl::flat_hash_map<int, int> by_large_number;
  int real_oneofs = 0;  // real (not synthetic) oneofs; Field::oneof is below this

  int IndexOf(int number) const {
    if (number >= 0 && number < static_cast<int>(by_number.size())) return by_number[number];
    auto it = by_large_number.find(number);
    return it == by_large_number.end() ? -1 : it->second;
  }
};

JsonCodec::JsonCodec(const google::protobuf::DescriptorPool& pool,
                     const std::vector<const Descriptor*>& roots,
                     google::protobuf::util::TypeResolver* fallback)
    : fallback_(fallback) {
  (void)pool;
  std::vector<const Descriptor*> pending(roots.begin(), roots.end());
  while (!pending.empty()) {
    const Descriptor* d = pending.back();
    pending.pop_back();
    if (d == nullptr || messages_.contains(d)) continue;
    auto info = std::make_unique<MessageInfo>();
    info->descriptor = d;
    info->wkt = WktOf(d);
    int max_dense = 0;
    for (int i = 0; i < d->field_count(); ++i) {
      max_dense = std::max(max_dense, std::min(d->field(i)->number(), 1024));
    }
    info->by_number.assign(max_dense + 1, -1);
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* fd = d->field(i);
      MessageInfo::Field f;
      f.fd = fd;
      f.number = fd->number();
      f.type = fd->type();
      f.wire_type = WireTypeOf(fd->type());
      f.repeated = fd->is_repeated();
      f.map = fd->is_map();
      f.packable = fd->is_packable();
      f.in_oneof = fd->containing_oneof() != nullptr;
      if (const google::protobuf::OneofDescriptor* o = fd->real_containing_oneof()) {
        f.oneof = o->index();
        info->real_oneofs = std::max(info->real_oneofs, o->index() + 1);
      }
      f.tag_size = static_cast<uint8_t>(EncodeVarint(
          (static_cast<uint64_t>(f.number) << 3) | static_cast<uint32_t>(f.wire_type), f.tag));
      AppendJsonString(fd->json_name(), &f.json_key);
      f.json_key.push_back(':');
      AppendJsonString(fd->name(), &f.proto_key);
      f.proto_key.push_back(':');
      if (fd->message_type() != nullptr) pending.push_back(fd->message_type());
      info->by_name.emplace(fd->json_name(), i);
      info->by_name.emplace(fd->name(), i);
      if (f.number < static_cast<int>(info->by_number.size())) {
        info->by_number[f.number] = i;
      } else {
        info->by_large_number.emplace(f.number, i);
      }
      info->fields.push_back(std::move(f));
    }
    messages_.emplace(d, std::move(info));
  }
  for (auto& [d, info] : messages_) {
    for (MessageInfo::Field& f : info->fields) {
      if (f.fd->message_type() != nullptr) f.message = Info(f.fd->message_type());
    }
  }
}

JsonCodec::~JsonCodec() = default;

const JsonCodec::MessageInfo* JsonCodec::Info(const Descriptor* d) const {
  auto it = messages_.find(d);
  return it == messages_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------
// JSON -> protobuf

namespace {

using MessageInfo = JsonCodec::MessageInfo;
using Field = JsonCodec::MessageInfo::Field;

class Parser {
 public:
  Parser(absl::string_view in, const JsonParseConfig& config,
         google::protobuf::util::TypeResolver* fallback)
      : in_(in), config_(config), fallback_(fallback) {}

  static void Tag(const Field& f, std::string* out) { out->append(f.tag, f.tag_size); }

  // Parses one JSON value as the payload of message `m`.
  absl::Status MessagePayload(const MessageInfo& m, std::string* out) {
    switch (m.wkt) {
      case Wkt::kNone: return Object(m, out);
      case Wkt::kAny: return Any(out);
      case Wkt::kTimestamp:
      case Wkt::kDuration:
      case Wkt::kFieldMask: {
        if (Peek() != '"' && pos_ < in_.size()) {
          return Error(absl::StrCat("expected a string for ", m.descriptor->full_name()));
        }
        absl::string_view text;
        if (absl::Status s = String(&text); !s.ok()) return s;
        absl::Status s = WellKnownPayloadFromText(m.descriptor, text, false, out);
        return s.ok() ? s : Error(s.message());
      }
      case Wkt::kWrapper:
        return Singular(m.fields[0], out);
      case Wkt::kStruct: return Struct(out);
      case Wkt::kValue: return Value(out);
      case Wkt::kListValue: return List(out);
      case Wkt::kEmpty: {
        Ws();
        if (!Consume('{')) return Error("expected {} for google.protobuf.Empty");
        Ws();
        if (!Consume('}')) return Error("google.protobuf.Empty has no fields");
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() {
    Ws();
    if (pos_ != in_.size()) return SyntaxError(pos_, "unexpected data after the JSON value");
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view what) const {
    std::string path;
    for (const FieldDescriptor* f : path_) {
      if (!path.empty()) path.push_back('.');
      path += f->name();
    }
    return absl::InvalidArgumentError(absl::StrCat("(", path, "): ", what));
  }

  absl::Status OneofConflict(const MessageInfo::Field& first,
                             const MessageInfo::Field& second) const {
    return Error(absl::StrCat("fields '", first.fd->name(), "' and '", second.fd->name(),
                              "' are both members of oneof '",
                              first.fd->real_containing_oneof()->name(),
                              "'; set at most one"));
  }

  // Malformed JSON, as opposed to JSON that does not fit the message.
  absl::Status SyntaxError(size_t pos, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON at byte ", pos, ": ", what));
  }

  // "expected X", or "unexpected end of input" at the end.
  absl::Status Expected(absl::string_view what) const {
    if (pos_ >= in_.size()) return SyntaxError(pos_, "unexpected end of input");
    return SyntaxError(pos_, absl::StrCat("expected ", what));
  }

  // Call when entering an object or array at pos_.
  absl::Status Enter() {
    if (++depth_ > config_.max_depth) {
      return SyntaxError(pos_, absl::StrCat("nesting deeper than ", config_.max_depth));
    }
    return absl::OkStatus();
  }
  int RemainingDepth() const { return std::max(config_.max_depth - depth_, 0); }

  // Keys of one JSON object, to reject duplicates (map fields and Struct).
  class KeySet {
   public:
    bool Insert(absl::string_view key) {
      if (big_ != nullptr) return big_->insert(std::string(key)).second;
      for (const std::string& k : small_) {
        if (k == key) return false;
      }
      small_.emplace_back(key);
      if (small_.size() > 32) {
        big_ = std::make_unique<absl::flat_hash_set<std::string>>(small_.begin(), small_.end());
        small_.clear();
      }
      return true;
    }

   private:
    absl::InlinedVector<std::string, 8> small_;
    std::unique_ptr<absl::flat_hash_set<std::string>> big_;
  };

  absl::Status Duplicate(size_t key_pos, absl::string_view key) const {
    return SyntaxError(key_pos, absl::StrCat("duplicate key ", QuoteForError(key)));
  }

  void Ws() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }
  bool Consume(char c) {
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char Peek() {
    Ws();
    return pos_ < in_.size() ? in_[pos_] : '\0';
  }
  bool ConsumeLiteral(absl::string_view lit) {
    if (in_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
      return true;
    }
    return false;
  }

  // Reads a JSON string at pos_. The view points into the input when the
  // string has no escapes, else into scratch_ (valid until the next call).
  absl::Status String(absl::string_view* value) {
    Ws();
    if (pos_ >= in_.size() || in_[pos_] != '"') return Expected("a string");
    const size_t quote = pos_;
    const char* const base = in_.data();
    const char* const end = base + in_.size();
    const char* const start = base + quote + 1;
    uint64_t high = 0;
    const char* p = PlainRun(start, end, &high);
    if (p != end && *p == '"') {
      pos_ = p + 1 - base;
      *value = absl::string_view(start, p - start);
      if ((high & kHighBits) != 0 && !IsValidUtf8(*value)) {
        return Error("invalid UTF-8 in a string");
      }
      return absl::OkStatus();
    }
    if (p != end && *p != '\\') {
      pos_ = p - base;
      return SyntaxError(pos_, "control character in a string");
    }
    // Escapes: unescape into scratch_. Here p is at '\\' or at the end.
    scratch_.assign(start, p - start);
    while (p != end) {
      char c = *p++;
      if (static_cast<unsigned char>(c) < 0x20) {
        pos_ = p - base;
        return SyntaxError(pos_ - 1, "control character in a string");
      }
      if (c == '"') {
        pos_ = p - base;
        // Escapes append whole, valid sequences that start with ASCII or a lead
        // byte: only raw bytes >= 0x80 can make scratch_ invalid.
        if ((high & kHighBits) != 0 && !IsValidUtf8(scratch_)) {
          return Error("invalid UTF-8 in a string");
        }
        *value = scratch_;
        return absl::OkStatus();
      }
      // c is '\\'.
      if (p == end) break;
      char e = *p++;
      switch (e) {
        case '"': scratch_.push_back('"'); break;
        case '\\': scratch_.push_back('\\'); break;
        case '/': scratch_.push_back('/'); break;
        case 'b': scratch_.push_back('\b'); break;
        case 'f': scratch_.push_back('\f'); break;
        case 'n': scratch_.push_back('\n'); break;
        case 'r': scratch_.push_back('\r'); break;
        case 't': scratch_.push_back('\t'); break;
        case 'u': {
          pos_ = p - base;
          uint32_t cp;
          if (!Hex4(&cp)) return Error("invalid \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (!ConsumeLiteral("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return Error("unpaired surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("unpaired surrogate in a \\u escape");
          }
          AppendUtf8(cp);
          p = base + pos_;
          break;
        }
        default:
          pos_ = p - base;
          return Error("invalid escape in a string");
      }
      const char* run = p;
      p = PlainRun(p, end, &high);
      scratch_.append(run, p - run);
    }
    pos_ = in_.size();
    return SyntaxError(quote, "unterminated string");
  }

  // Bit 7 of every byte of a word.
  static constexpr uint64_t kHighBits = 0x8080808080808080ull;

  // Hits(w) & ~w & kHighBits is nonzero iff some byte of w is '"', '\\' or
  // below 0x20 (borrows between bytes start only at such a byte: they may mark
  // bytes after it, never a word without one). It ORs the zero-byte test
  // (v - 0x01..01) & ~v for v = w ^ '"' and v = w ^ '\\' with (w - 0x20..20) & ~w;
  // ~v and ~w agree in bit 7 ('"' and '\\' are ASCII), so one & ~w serves all three.
  static uint64_t Hits(uint64_t w) {
    constexpr uint64_t kOnes = 0x0101010101010101ull;
    uint64_t q = w ^ (kOnes * '"');
    uint64_t b = w ^ (kOnes * '\\');
    return (q - kOnes) | (b - kOnes) | (w - kOnes * 0x20);
  }

  // Returns the first byte at or after `p` that ends a run of plain string
  // characters: '"', '\\' or a control character (below 0x20); `end` if there
  // is none. ORs the run's bytes into *high (any bit of kHighBits set: a byte
  // >= 0x80 was seen). Scans 16 or 8 bytes per step while it can.
  static const char* PlainRun(const char* p, const char* end, uint64_t* high) {
    uint64_t h = *high;
    // Two words of ASCII per step while they last.
    while (end - p >= 16) {
      uint64_t w0;
      uint64_t w1;
      std::memcpy(&w0, p, 8);
      std::memcpy(&w1, p + 8, 8);
      if (((Hits(w0) | w0 | Hits(w1) | w1) & kHighBits) != 0) break;
      p += 16;
    }
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      uint64_t hits = Hits(w);
      if (((hits | w) & kHighBits) != 0) {
        // A hit, or a byte >= 0x80 (its own bit 7 set).
        if ((hits & ~w & kHighBits) != 0) break;
        h |= w;
      }
      p += 8;
    }
    // The rest: fewer than 8 bytes, or a word that holds the byte sought.
    for (; p != end; ++p) {
      unsigned char u = static_cast<unsigned char>(*p);
      if (u == '"' || u == '\\' || u < 0x20) break;
      h |= u;
    }
    *high = h;
    return p;
  }

  bool Hex4(uint32_t* cp) {
    if (pos_ + 4 > in_.size()) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_ + i];
      int h = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (h < 0) return false;
      v = v * 16 + h;
    }
    pos_ += 4;
    *cp = v;
    return true;
  }

  void AppendUtf8(uint32_t cp) {
    if (cp < 0x80) {
      scratch_.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      scratch_.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      scratch_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      scratch_.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      scratch_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      scratch_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      scratch_.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      scratch_.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      scratch_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      scratch_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // A number, a literal (true/false/null) or a string, as text.
  absl::Status Token(absl::string_view* token, bool* quoted) {
    if (Peek() == '"') {
      *quoted = true;
      return String(token);
    }
    *quoted = false;
    size_t start = pos_;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          c == '-' || c == '+' || c == '.') {
        ++pos_;
      } else {
        break;
      }
    }
    if (pos_ == start) return Expected("a value");
    *token = in_.substr(start, pos_ - start);
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Integer(absl::string_view token, absl::string_view type_name, T* v) {
    if (absl::SimpleAtoi(token, v)) return absl::OkStatus();
    double d;
    if (absl::SimpleAtod(token, &d) && std::isfinite(d) && token.find_first_of("nN") ==
                                                               absl::string_view::npos) {
      if (d != std::floor(d)) {
        return Error(absl::StrCat(QuoteForError(token), " is not an integer"));
      }
      // Bounds as doubles: [min, max + 1) is exact for every integer type.
      double lo = static_cast<double>(std::numeric_limits<T>::min());
      double hi = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
      if (d >= lo && d < hi) {
        *v = static_cast<T>(d);
        return absl::OkStatus();
      }
      return Error(absl::StrCat(QuoteForError(token), " is out of range for ", type_name));
    }
    absl::string_view digits = token;
    if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
    if (!digits.empty() && digits.find_first_not_of("0123456789") == absl::string_view::npos) {
      return Error(absl::StrCat(QuoteForError(token), " is out of range for ", type_name));
    }
    return Error(absl::StrCat(QuoteForError(token), " is not a valid ", type_name));
  }

  absl::Status Floating(absl::string_view token, bool quoted, double* d) {
    if (quoted) {
      if (token == "NaN") {
        *d = std::numeric_limits<double>::quiet_NaN();
        return absl::OkStatus();
      }
      if (token == "Infinity") {
        *d = std::numeric_limits<double>::infinity();
        return absl::OkStatus();
      }
      if (token == "-Infinity") {
        *d = -std::numeric_limits<double>::infinity();
        return absl::OkStatus();
      }
    }
    if (token.find_first_of("iInN") != absl::string_view::npos || !absl::SimpleAtod(token, d)) {
      return Error(absl::StrCat(QuoteForError(token), " is not a valid number"));
    }
    if (std::isinf(*d)) return Error(absl::StrCat(QuoteForError(token), " is out of range"));
    return absl::OkStatus();
  }

  // One value of field `f` (an element, for repeated fields), tag included.
  absl::Status Singular(const Field& f, std::string* out) {
    if (f.type == FieldDescriptor::TYPE_MESSAGE || f.type == FieldDescriptor::TYPE_GROUP) {
      if (f.message == nullptr) return Error("message type not compiled");
      if (f.message->wkt == Wkt::kNone && Peek() != '{') {
        return Error(absl::StrCat("expected an object for ", f.fd->message_type()->full_name()));
      }
      Tag(f, out);
      const size_t len_pos = out->size();
      out->push_back('\0');  // a length below 128 needs no more room
      if (absl::Status s = MessagePayload(*f.message, out); !s.ok()) return s;
      SetLength(out, len_pos, len_pos + 1);
      return absl::OkStatus();
    }
    absl::string_view token;
    bool quoted;
    if (absl::Status s = Token(&token, &quoted); !s.ok()) return s;
    switch (f.type) {
      case FieldDescriptor::TYPE_STRING:
        if (!quoted) return Error(absl::StrCat(QuoteForError(token), " is not a string"));
        Tag(f, out);
        AppendVarint(token.size(), out);
        out->append(token.data(), token.size());
        return absl::OkStatus();
      case FieldDescriptor::TYPE_BYTES: {
        if (!quoted) return Error(absl::StrCat(QuoteForError(token), " is not a string"));
        // Decoded in place behind a length prefix sized for input without
        // whitespace; the prefix is rewritten when whitespace made it wrong.
        const size_t tag_pos = out->size();
        Tag(f, out);
        const size_t len_pos = out->size();
        const size_t guess = Base64DecodedSize(token);
        AppendVarint(guess, out);
        const size_t data_pos = out->size();
        if (!Base64Decode(token, out)) {
          out->resize(tag_pos);
          return Error(absl::StrCat(QuoteForError(token), " is not valid base64"));
        }
        if (out->size() - data_pos != guess) SetLength(out, len_pos, data_pos);
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_BOOL:
        if (quoted || (token != "true" && token != "false")) {
          return Error(absl::StrCat(QuoteForError(token), " is not a valid bool"));
        }
        Tag(f, out);
        out->push_back(token == "true" ? 1 : 0);
        return absl::OkStatus();
      case FieldDescriptor::TYPE_ENUM: {
        int32_t v = 0;
        if (quoted) {
          absl::Status s = ParseEnumText(f.fd->enum_type(), token,
                                         config_.case_insensitive_enums, &v);
          if (!s.ok()) {
            if (config_.ignore_unknown_fields) return absl::OkStatus();
            return Error(s.message());
          }
        } else if (absl::Status s = Integer(token, "enum", &v); !s.ok()) {
          return s;
        }
        Tag(f, out);
        AppendVarint(static_cast<uint64_t>(static_cast<int64_t>(v)), out);
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_DOUBLE: {
        double d;
        if (absl::Status s = Floating(token, quoted, &d); !s.ok()) return s;
        uint64_t bits;
        std::memcpy(&bits, &d, 8);
        Tag(f, out);
        AppendFixed64(bits, out);
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_FLOAT: {
        double d;
        if (absl::Status s = Floating(token, quoted, &d); !s.ok()) return s;
        if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
          return Error(absl::StrCat(QuoteForError(token), " is out of range for a float"));
        }
        float fv = static_cast<float>(d);
        uint32_t bits;
        std::memcpy(&bits, &fv, 4);
        Tag(f, out);
        AppendFixed32(bits, out);
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32: {
        int32_t v = 0;
        if (absl::Status s = Integer(token, "int32", &v); !s.ok()) return s;
        if (f.type == FieldDescriptor::TYPE_SFIXED32) {
          Tag(f, out);
          AppendFixed32(static_cast<uint32_t>(v), out);
        } else {
          Tag(f, out);
          AppendVarint(f.type == FieldDescriptor::TYPE_SINT32
                           ? static_cast<uint32_t>((static_cast<uint32_t>(v) << 1) ^
                                                   static_cast<uint32_t>(v >> 31))
                           : static_cast<uint64_t>(static_cast<int64_t>(v)),
                       out);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64: {
        int64_t v = 0;
        if (absl::Status s = Integer(token, "int64", &v); !s.ok()) return s;
        if (f.type == FieldDescriptor::TYPE_SFIXED64) {
          Tag(f, out);
          AppendFixed64(static_cast<uint64_t>(v), out);
        } else {
          Tag(f, out);
          AppendVarint(f.type == FieldDescriptor::TYPE_SINT64
                           ? (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)
                           : static_cast<uint64_t>(v),
                       out);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32: {
        uint32_t v = 0;
        if (absl::Status s = Integer(token, "uint32", &v); !s.ok()) return s;
        if (f.type == FieldDescriptor::TYPE_FIXED32) {
          Tag(f, out);
          AppendFixed32(v, out);
        } else {
          Tag(f, out);
          AppendVarint(v, out);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64: {
        uint64_t v = 0;
        if (absl::Status s = Integer(token, "uint64", &v); !s.ok()) return s;
        if (f.type == FieldDescriptor::TYPE_FIXED64) {
          Tag(f, out);
          AppendFixed64(v, out);
        } else {
          Tag(f, out);
          AppendVarint(v, out);
        }
        return absl::OkStatus();
      }
      default:
        return Error("unsupported field type");
    }
  }

  // The value of field `f` in an object: null, an array, a map or a value.
  absl::Status FieldValue(const Field& f, std::string* out) {
    char c = Peek();
    if (c == 'n' && ConsumeLiteral("null")) {
      // null means "unset", except for google.protobuf.Value.
      if (!f.repeated && f.message != nullptr && f.message->wkt == Wkt::kValue) {
        AppendLengthDelimited(f.number, absl::string_view("\x08\x00", 2), out);
      }
      return absl::OkStatus();
    }
    if (f.map) {
      if (Peek() != '{') return Error("expected an object for a map field");
      if (absl::Status s = Enter(); !s.ok()) return s;
      ++pos_;
      const Field& key_field = f.message->fields[0];
      const Field& value_field = f.message->fields[1];
      if (Peek() == '}') {
        ++pos_;
        --depth_;
        return absl::OkStatus();
      }
      std::string entry;
      KeySet keys;
      while (true) {
        absl::string_view key;
        Ws();
        size_t key_pos = pos_;
        if (absl::Status s = String(&key); !s.ok()) return s;
        if (!keys.Insert(key)) return Duplicate(key_pos, key);
        entry.clear();
        if (key_field.type == FieldDescriptor::TYPE_BOOL) {
          if (key != "true" && key != "false") {
            return Error(absl::StrCat(QuoteForError(key), " is not a valid bool map key"));
          }
          AppendTag(1, WireType::kVarint, &entry);
          entry.push_back(key == "true" ? 1 : 0);
        } else if (absl::Status s = AppendFieldFromText(key_field.fd, key, false, &entry);
                   !s.ok()) {
          return Error(absl::StrCat("map key: ", s.message()));
        }
        Ws();
        if (!Consume(':')) return Expected("':'");
        if (Peek() == 'n' && ConsumeLiteral("null")) {
          if (value_field.message != nullptr && value_field.message->wkt == Wkt::kValue) {
            AppendLengthDelimited(2, absl::string_view("\x08\x00", 2), &entry);
          } else {
            return Error("null is not a valid map value");
          }
        } else if (absl::Status s = Singular(value_field, &entry); !s.ok()) {
          return s;
        }
        Tag(f, out);
        AppendVarint(entry.size(), out);
        out->append(entry);
        Ws();
        if (Consume(',')) continue;
        if (Consume('}')) {
          --depth_;
          return absl::OkStatus();
        }
        return Expected("',' or '}'");
      }
    }
    if (f.repeated) {
      if (Peek() != '[') return Error("expected an array for a repeated field");
      if (absl::Status s = Enter(); !s.ok()) return s;
      ++pos_;
      if (Peek() == ']') {
        ++pos_;
        --depth_;
        return absl::OkStatus();
      }
      while (true) {
        if (Peek() == 'n' && in_.substr(pos_, 4) == "null" &&
            !(f.message != nullptr && f.message->wkt == Wkt::kValue)) {
          return Error("null is not a valid element of a repeated field");
        }
        if (f.message != nullptr && f.message->wkt == Wkt::kValue && Peek() == 'n' &&
            ConsumeLiteral("null")) {
          AppendLengthDelimited(f.number, absl::string_view("\x08\x00", 2), out);
        } else if (absl::Status s = Singular(f, out); !s.ok()) {
          return s;
        }
        Ws();
        if (Consume(',')) continue;
        if (Consume(']')) {
          --depth_;
          return absl::OkStatus();
        }
        return Expected("',' or ']'");
      }
    }
    return Singular(f, out);
  }

  absl::Status Object(const MessageInfo& m, std::string* out) {
    if (Peek() != '{') {
      if (pos_ >= in_.size()) return Expected("an object");
      return Error(absl::StrCat("expected an object for ", m.descriptor->full_name()));
    }
    if (absl::Status s = Enter(); !s.ok()) return s;
    ++pos_;
    if (Peek() == '}') {
      ++pos_;
      --depth_;
      return absl::OkStatus();
    }
    absl::InlinedVector<bool, 64> seen(m.fields.size(), false);
    // The member (field index) that set each real oneof, -1 while unset. A
    // member given as null sets nothing, as in protobuf's JSON parser.
    absl::InlinedVector<int, 4> oneof_member(m.real_oneofs, -1);
    while (true) {
      absl::string_view key;
      Ws();
      size_t key_pos = pos_;
      if (absl::Status s = String(&key); !s.ok()) return s;
      auto it = m.by_name.find(key);
      if (it != m.by_name.end()) {
        if (seen[it->second]) return Duplicate(key_pos, key);
        seen[it->second] = true;
      }
      Ws();
      if (!Consume(':')) return Expected("':'");
      if (it == m.by_name.end()) {
        if (!config_.ignore_unknown_fields) {
          return Error(absl::StrCat("unknown field ", QuoteForError(key), " in ",
                                    m.descriptor->full_name()));
        }
        Ws();
        if (absl::Status s = SkipJsonValue(in_, &pos_, RemainingDepth()); !s.ok()) return s;
      } else {
        const Field& f = m.fields[it->second];
        const size_t size_before = out->size();
        path_.push_back(f.fd);
        if (absl::Status s = FieldValue(f, out); !s.ok()) return s;
        path_.pop_back();
        if (f.oneof >= 0 && out->size() != size_before) {
          int& member = oneof_member[f.oneof];
          if (member >= 0) return OneofConflict(m.fields[member], f);
          member = it->second;
        }
      }
      Ws();
      if (Consume(',')) continue;
      if (Consume('}')) {
        --depth_;
        return absl::OkStatus();
      }
      return Expected("',' or '}'");
    }
  }

  // google.protobuf.Value payload.
  absl::Status Value(std::string* out) {
    char c = Peek();
    if (c == 'n' && ConsumeLiteral("null")) {
      out->append("\x08\x00", 2);
    } else if (c == 't' && ConsumeLiteral("true")) {
      out->append("\x20\x01", 2);
    } else if (c == 'f' && ConsumeLiteral("false")) {
      out->append("\x20\x00", 2);
    } else if (c == '"') {
      absl::string_view s;
      if (absl::Status st = String(&s); !st.ok()) return st;
      AppendLengthDelimited(3, s, out);
    } else if (c == '{' || c == '[') {
      std::string nested;
      absl::Status s = c == '{' ? Struct(&nested) : List(&nested);
      if (!s.ok()) return s;
      AppendLengthDelimited(c == '{' ? 5 : 6, nested, out);
    } else {
      absl::string_view token;
      bool quoted;
      if (absl::Status s = Token(&token, &quoted); !s.ok()) return s;
      double d;
      if (absl::Status s = Floating(token, false, &d); !s.ok()) return s;
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      AppendTag(2, WireType::kFixed64, out);
      AppendFixed64(bits, out);
    }
    return absl::OkStatus();
  }

  absl::Status Struct(std::string* out) {
    if (Peek() != '{') {
      if (pos_ >= in_.size()) return Expected("an object");
      return Error("expected an object for google.protobuf.Struct");
    }
    if (absl::Status s = Enter(); !s.ok()) return s;
    ++pos_;
    if (Peek() == '}') {
      ++pos_;
      --depth_;
      return absl::OkStatus();
    }
    std::string entry;
    std::string value;
    KeySet keys;
    while (true) {
      absl::string_view key;
      Ws();
      size_t key_pos = pos_;
      if (absl::Status s = String(&key); !s.ok()) return s;
      if (!keys.Insert(key)) return Duplicate(key_pos, key);
      entry.clear();
      AppendLengthDelimited(1, key, &entry);
      Ws();
      if (!Consume(':')) return Expected("':'");
      value.clear();
      if (absl::Status s = Value(&value); !s.ok()) return s;
      AppendLengthDelimited(2, value, &entry);
      AppendLengthDelimited(1, entry, out);
      Ws();
      if (Consume(',')) continue;
      if (Consume('}')) {
        --depth_;
        return absl::OkStatus();
      }
      return Expected("',' or '}'");
    }
  }

  absl::Status List(std::string* out) {
    if (Peek() != '[') {
      if (pos_ >= in_.size()) return Expected("an array");
      return Error("expected an array for google.protobuf.ListValue");
    }
    if (absl::Status s = Enter(); !s.ok()) return s;
    ++pos_;
    if (Peek() == ']') {
      ++pos_;
      --depth_;
      return absl::OkStatus();
    }
    std::string value;
    while (true) {
      value.clear();
      if (absl::Status s = Value(&value); !s.ok()) return s;
      AppendLengthDelimited(1, value, out);
      Ws();
      if (Consume(',')) continue;
      if (Consume(']')) {
        --depth_;
        return absl::OkStatus();
      }
      return Expected("',' or ']'");
    }
  }

  // google.protobuf.Any: its contents need type resolution; protobuf's own
  // converter handles the subtree.
  absl::Status Any(std::string* out) {
    Ws();
    size_t start = pos_;
    if (absl::Status s = SkipJsonValue(in_, &pos_, RemainingDepth()); !s.ok()) return s;
    absl::string_view text = in_.substr(start, pos_ - start);
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = config_.ignore_unknown_fields;
    options.case_insensitive_enum_parsing = config_.case_insensitive_enums;
    google::protobuf::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
    google::protobuf::io::StringOutputStream output(out);
    google::protobuf::util::Status s = google::protobuf::util::JsonToBinaryStream(
        fallback_, "type.googleapis.com/google.protobuf.Any", &input, &output, options);
    if (!s.ok()) {
      return Error(absl::StripPrefix(absl::string_view(s.message().data(), s.message().size()),
                                     ": "));
    }
    return absl::OkStatus();
  }

  absl::string_view in_;
  size_t pos_ = 0;
  const JsonParseConfig& config_;
  google::protobuf::util::TypeResolver* fallback_;
  std::vector<const FieldDescriptor*> path_;
  std::string scratch_;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------
// protobuf -> JSON

struct Entry {
  int field;        // index into MessageInfo::fields
  WireType wire;
  uint64_t varint;  // varint, fixed32 and fixed64 values
  absl::string_view data;  // length-delimited payload
};

class Printer {
 public:
  Printer(const JsonPrintConfig& config, google::protobuf::util::TypeResolver* fallback,
          std::string* out)
      : config_(config), fallback_(fallback), out_(out) {}

  absl::Status MessagePayload(const MessageInfo& m, absl::string_view bytes, int depth) {
    if (depth > 100) return Error("message nesting too deep");
    switch (m.wkt) {
      case Wkt::kNone: return Object(m, bytes, depth);
      case Wkt::kAny: return Any(bytes);
      case Wkt::kTimestamp: return Timestamp(bytes);
      case Wkt::kDuration: return Duration(bytes);
      case Wkt::kFieldMask: return FieldMask(bytes);
      case Wkt::kWrapper: return Wrapper(m, bytes, depth);
      case Wkt::kStruct: return Struct(bytes, depth);
      case Wkt::kValue: return Value(bytes, depth);
      case Wkt::kListValue: return List(bytes, depth);
      case Wkt::kEmpty: out_->append("{}"); return absl::OkStatus();
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Error(absl::string_view what) {
    return absl::InvalidArgumentError(what);
  }

  // Splits `bytes` into the entries of known fields of `m`, sorted by field
  // declaration order. Unknown fields and wire-type mismatches are skipped.
  absl::Status Scan(const MessageInfo& m, absl::string_view bytes,
                    absl::InlinedVector<Entry, 32>* entries) {
    size_t pos = 0;
    bool sorted = true;
    while (pos < bytes.size()) {
      size_t start = pos;
      uint64_t tag;
      if (!ReadVarint(bytes, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > 536870911) {
        return Error(absl::StrCat("malformed protobuf at byte ", start));
      }
      Entry e;
      e.wire = static_cast<WireType>(tag & 7);
      e.varint = 0;
      switch (tag & 7) {
        case 0:
          if (!ReadVarint(bytes, &pos, &e.varint)) {
            return Error(absl::StrCat("malformed varint at byte ", start));
          }
          break;
        case 1:
          if (bytes.size() - pos < 8) return Error("truncated fixed64");
          e.varint = LoadLE(bytes.substr(pos, 8));
          pos += 8;
          break;
        case 5:
          if (bytes.size() - pos < 4) return Error("truncated fixed32");
          e.varint = LoadLE(bytes.substr(pos, 4));
          pos += 4;
          break;
        case 2: {
          uint64_t len;
          if (!ReadVarint(bytes, &pos, &len) || len > bytes.size() - pos) {
            return Error(absl::StrCat("truncated length-delimited field at byte ", start));
          }
          e.data = bytes.substr(pos, len);
          pos += len;
          break;
        }
        case 3: {  // a group of an unknown field: skip to its end
          int depth = 1;
          while (depth > 0) {
            uint64_t t, ignored;
            if (!ReadVarint(bytes, &pos, &t)) return Error("truncated group");
            switch (t & 7) {
              case 0: if (!ReadVarint(bytes, &pos, &ignored)) return Error("truncated group"); break;
              case 1: if (bytes.size() - pos < 8) return Error("truncated group"); pos += 8; break;
              case 5: if (bytes.size() - pos < 4) return Error("truncated group"); pos += 4; break;
              case 2:
                if (!ReadVarint(bytes, &pos, &ignored) || ignored > bytes.size() - pos) {
                  return Error("truncated group");
                }
                pos += ignored;
                break;
              case 3: ++depth; break;
              case 4: --depth; break;
              default: return Error("malformed group");
            }
          }
          continue;
        }
        default:
          return Error(absl::StrCat("malformed protobuf at byte ", start));
      }
      int index = m.IndexOf(static_cast<int>(tag >> 3));
      if (index < 0) continue;
      const Field& f = m.fields[index];
      if (e.wire != f.wire_type &&
          !(f.packable && f.repeated && e.wire == WireType::kLengthDelimited)) {
        continue;
      }
      e.field = index;
      if (!entries->empty() && entries->back().field > index) sorted = false;
      entries->push_back(e);
    }
    if (!sorted) {
      std::stable_sort(entries->begin(), entries->end(),
                       [](const Entry& a, const Entry& b) { return a.field < b.field; });
    }
    return absl::OkStatus();
  }

  absl::Status Object(const MessageInfo& m, absl::string_view bytes, int depth) {
    absl::InlinedVector<Entry, 32> entries;
    if (absl::Status s = Scan(m, bytes, &entries); !s.ok()) return s;
    out_->push_back('{');
    bool first = true;
    size_t i = 0;
    for (size_t fi = 0; fi < m.fields.size(); ++fi) {
      const Field& f = m.fields[fi];
      size_t j = i;
      while (j < entries.size() && entries[j].field == static_cast<int>(fi)) ++j;
      if (j == i) {
        if (config_.emit_default_values && !f.in_oneof &&
            (f.repeated || f.type != FieldDescriptor::TYPE_MESSAGE)) {
          Key(f, &first);
          Default(f);
        }
        continue;
      }
      Key(f, &first);
      absl::Span<const Entry> group(entries.data() + i, j - i);
      i = j;
      absl::Status s;
      if (f.map) {
        s = Map(f, group, depth);
      } else if (f.repeated) {
        s = Repeated(f, group, depth);
      } else if (f.type == FieldDescriptor::TYPE_MESSAGE) {
        if (group.size() == 1) {
          s = MessagePayload(*f.message, group[0].data, depth + 1);
        } else {
          std::string merged;
          for (const Entry& e : group) merged.append(e.data.data(), e.data.size());
          s = MessagePayload(*f.message, merged, depth + 1);
        }
      } else {
        s = Scalar(f, group.back());
      }
      if (!s.ok()) return s;
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  void Key(const Field& f, bool* first) {
    if (!*first) out_->push_back(',');
    *first = false;
    out_->append(config_.use_proto_field_names ? f.proto_key : f.json_key);
  }

  void Default(const Field& f) {
    if (f.map) {
      out_->append("{}");
      return;
    }
    if (f.repeated) {
      out_->append("[]");
      return;
    }
    switch (f.type) {
      case FieldDescriptor::TYPE_STRING:
      case FieldDescriptor::TYPE_BYTES:
        out_->append("\"\"");
        break;
      case FieldDescriptor::TYPE_BOOL:
        out_->append("false");
        break;
      case FieldDescriptor::TYPE_ENUM: {
        Entry zero{0, WireType::kVarint, 0, {}};
        (void)Scalar(f, zero);
        break;
      }
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_FIXED64:
      case FieldDescriptor::TYPE_SFIXED64:
        out_->append(config_.int64_as_number ? "0" : "\"0\"");
        break;
      default:
        out_->push_back('0');
    }
  }

  absl::Status Repeated(const Field& f, absl::Span<const Entry> group, int depth) {
    out_->push_back('[');
    bool first = true;
    for (const Entry& e : group) {
      if (e.wire == WireType::kLengthDelimited && f.packable) {
        // Packed elements.
        absl::string_view data = e.data;
        size_t pos = 0;
        while (pos < data.size()) {
          Entry element{e.field, f.wire_type, 0, {}};
          if (f.wire_type == WireType::kVarint) {
            if (!ReadVarint(data, &pos, &element.varint)) return Error("malformed packed field");
          } else {
            size_t width = f.wire_type == WireType::kFixed64 ? 8 : 4;
            if (data.size() - pos < width) return Error("malformed packed field");
            element.varint = LoadLE(data.substr(pos, width));
            pos += width;
          }
          if (!first) out_->push_back(',');
          first = false;
          if (absl::Status s = Scalar(f, element); !s.ok()) return s;
        }
        continue;
      }
      if (!first) out_->push_back(',');
      first = false;
      absl::Status s = f.type == FieldDescriptor::TYPE_MESSAGE
                           ? MessagePayload(*f.message, e.data, depth + 1)
                           : Scalar(f, e);
      if (!s.ok()) return s;
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  absl::Status Map(const Field& f, absl::Span<const Entry> group, int depth) {
    const MessageInfo& entry_info = *f.message;
    const Field& key_field = entry_info.fields[0];
    const Field& value_field = entry_info.fields[1];
    out_->push_back('{');
    bool first = true;
    absl::InlinedVector<Entry, 32> parts;
    for (const Entry& e : group) {
      parts.clear();
      if (absl::Status s = Scan(entry_info, e.data, &parts); !s.ok()) return s;
      const Entry* key = nullptr;
      const Entry* value = nullptr;
      std::string merged_value;
      for (const Entry& p : parts) {
        if (p.field == 0) key = &p;
        if (p.field == 1) value = &p;
      }
      if (!first) out_->push_back(',');
      first = false;
      // Keys are always JSON strings.
      if (key_field.type == FieldDescriptor::TYPE_STRING) {
        AppendJsonString(key != nullptr ? key->data : absl::string_view(), out_);
      } else {
        out_->push_back('"');
        Entry zero{0, key_field.wire_type, 0, {}};
        JsonPrintConfig unquoted = config_;
        unquoted.int64_as_number = true;
        Printer key_printer(unquoted, fallback_, out_);
        if (absl::Status s = key_printer.Scalar(key_field, key != nullptr ? *key : zero);
            !s.ok()) {
          return s;
        }
        out_->push_back('"');
      }
      out_->push_back(':');
      if (value == nullptr) {
        if (value_field.type == FieldDescriptor::TYPE_MESSAGE) {
          if (absl::Status s = MessagePayload(*value_field.message, "", depth + 1); !s.ok()) {
            return s;
          }
        } else {
          Default(value_field);
        }
      } else if (value_field.type == FieldDescriptor::TYPE_MESSAGE) {
        if (absl::Status s = MessagePayload(*value_field.message, value->data, depth + 1);
            !s.ok()) {
          return s;
        }
      } else if (absl::Status s = Scalar(value_field, *value); !s.ok()) {
        return s;
      }
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  void Int64(int64_t v) {
    if (!config_.int64_as_number) out_->push_back('"');
    absl::StrAppend(out_, v);
    if (!config_.int64_as_number) out_->push_back('"');
  }
  void UInt64(uint64_t v) {
    if (!config_.int64_as_number) out_->push_back('"');
    absl::StrAppend(out_, v);
    if (!config_.int64_as_number) out_->push_back('"');
  }
  // Shortest of 15 (6 for float) or 17 (9) significant digits that reads
  // back as the same value: the same text as protobuf's own printer.
  template <typename T>
  void Floating(T v) {
    if (std::isnan(v)) {
      out_->append("\"NaN\"");
      return;
    }
    if (std::isinf(v)) {
      out_->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      return;
    }
    constexpr bool kIsFloat = std::is_same_v<T, float>;
    char buf[64];
    std::to_chars_result r =
        std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, kIsFloat ? 6 : 15);
    T back;
    std::from_chars_result parsed = std::from_chars(buf, r.ptr, back);
    if (parsed.ec != std::errc() || back != v) {
      r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general,
                        kIsFloat ? 9 : 17);
    }
    out_->append(buf, r.ptr - buf);
  }

 public:
  absl::Status Scalar(const Field& f, const Entry& e) {
    switch (f.type) {
      case FieldDescriptor::TYPE_INT32:
        absl::StrAppend(out_, static_cast<int32_t>(e.varint));
        break;
      case FieldDescriptor::TYPE_SINT32: {
        uint32_t u = static_cast<uint32_t>(e.varint);
        absl::StrAppend(out_, static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1)));
        break;
      }
      case FieldDescriptor::TYPE_SFIXED32:
        absl::StrAppend(out_, static_cast<int32_t>(static_cast<uint32_t>(e.varint)));
        break;
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        absl::StrAppend(out_, static_cast<uint32_t>(e.varint));
        break;
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SFIXED64:
        Int64(static_cast<int64_t>(e.varint));
        break;
      case FieldDescriptor::TYPE_SINT64:
        Int64(static_cast<int64_t>((e.varint >> 1) ^ (~(e.varint & 1) + 1)));
        break;
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        UInt64(e.varint);
        break;
      case FieldDescriptor::TYPE_DOUBLE: {
        double d;
        std::memcpy(&d, &e.varint, 8);
        Floating(d);
        break;
      }
      case FieldDescriptor::TYPE_FLOAT: {
        uint32_t bits = static_cast<uint32_t>(e.varint);
        float v;
        std::memcpy(&v, &bits, 4);
        Floating(v);
        break;
      }
      case FieldDescriptor::TYPE_BOOL:
        out_->append(e.varint != 0 ? "true" : "false");
        break;
      case FieldDescriptor::TYPE_STRING:
        AppendJsonString(e.data, out_);
        break;
      case FieldDescriptor::TYPE_BYTES:
        out_->push_back('"');
        Base64Encode(e.data, out_);
        out_->push_back('"');
        break;
      case FieldDescriptor::TYPE_ENUM: {
        int32_t v = static_cast<int32_t>(e.varint);
        const google::protobuf::EnumDescriptor* enum_type = f.fd->enum_type();
        if (enum_type->full_name() == "google.protobuf.NullValue") {
          out_->append("null");
          break;
        }
        const google::protobuf::EnumValueDescriptor* value =
            config_.enums_as_ints ? nullptr : enum_type->FindValueByNumber(v);
        if (value != nullptr) {
          out_->push_back('"');
          out_->append(value->name());
          out_->push_back('"');
        } else {
          absl::StrAppend(out_, v);
        }
        break;
      }
      default:
        return Error("unsupported field type");
    }
    return absl::OkStatus();
  }

 private:
  // seconds (field 1) and nanos (field 2) of a Timestamp or Duration.
  static absl::Status SecondsNanos(absl::string_view bytes, int64_t* seconds, int32_t* nanos) {
    *seconds = 0;
    *nanos = 0;
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint64_t tag, v;
      if (!ReadVarint(bytes, &pos, &tag)) return Error("malformed time value");
      if ((tag & 7) != 0) return Error("malformed time value");
      if (!ReadVarint(bytes, &pos, &v)) return Error("malformed time value");
      if ((tag >> 3) == 1) *seconds = static_cast<int64_t>(v);
      if ((tag >> 3) == 2) *nanos = static_cast<int32_t>(v);
    }
    return absl::OkStatus();
  }

  absl::Status Timestamp(absl::string_view bytes) {
    google::protobuf::Timestamp t;
    int64_t seconds;
    int32_t nanos;
    if (absl::Status s = SecondsNanos(bytes, &seconds, &nanos); !s.ok()) return s;
    if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999) {
      return Error("google.protobuf.Timestamp out of range");
    }
    t.set_seconds(seconds);
    t.set_nanos(nanos);
    out_->push_back('"');
    out_->append(google::protobuf::util::TimeUtil::ToString(t));
    out_->push_back('"');
    return absl::OkStatus();
  }

  absl::Status Duration(absl::string_view bytes) {
    google::protobuf::Duration d;
    int64_t seconds;
    int32_t nanos;
    if (absl::Status s = SecondsNanos(bytes, &seconds, &nanos); !s.ok()) return s;
    if (seconds < -315576000000 || seconds > 315576000000 || nanos < -999999999 ||
        nanos > 999999999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
      return Error("google.protobuf.Duration out of range");
    }
    d.set_seconds(seconds);
    d.set_nanos(nanos);
    out_->push_back('"');
    out_->append(google::protobuf::util::TimeUtil::ToString(d));
    out_->push_back('"');
    return absl::OkStatus();
  }

  absl::Status FieldMask(absl::string_view bytes) {
    std::string joined;
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint64_t tag, len;
      if (!ReadVarint(bytes, &pos, &tag) || (tag & 7) != 2 || !ReadVarint(bytes, &pos, &len) ||
          len > bytes.size() - pos) {
        return Error("malformed google.protobuf.FieldMask");
      }
      absl::string_view path = bytes.substr(pos, len);
      pos += len;
      if ((tag >> 3) != 1) continue;
      if (!joined.empty()) joined.push_back(',');
      bool upper = false;
      for (char c : path) {
        if (c == '_') {
          upper = true;
        } else {
          joined.push_back(upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
          upper = false;
        }
      }
    }
    AppendJsonString(joined, out_);
    return absl::OkStatus();
  }

  absl::Status Wrapper(const MessageInfo& m, absl::string_view bytes, int depth) {
    absl::InlinedVector<Entry, 32> entries;
    if (absl::Status s = Scan(m, bytes, &entries); !s.ok()) return s;
    if (entries.empty()) {
      Default(m.fields[0]);
      return absl::OkStatus();
    }
    return Scalar(m.fields[0], entries.back());
  }

  absl::Status Struct(absl::string_view bytes, int depth) {
    out_->push_back('{');
    bool first = true;
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint64_t tag, len;
      if (!ReadVarint(bytes, &pos, &tag) || (tag & 7) != 2 || !ReadVarint(bytes, &pos, &len) ||
          len > bytes.size() - pos) {
        return Error("malformed google.protobuf.Struct");
      }
      absl::string_view entry = bytes.substr(pos, len);
      pos += len;
      absl::string_view key, value;
      size_t p = 0;
      while (p < entry.size()) {
        uint64_t t, l;
        if (!ReadVarint(entry, &p, &t) || (t & 7) != 2 || !ReadVarint(entry, &p, &l) ||
            l > entry.size() - p) {
          return Error("malformed google.protobuf.Struct entry");
        }
        if ((t >> 3) == 1) key = entry.substr(p, l);
        if ((t >> 3) == 2) value = entry.substr(p, l);
        p += l;
      }
      if (!first) out_->push_back(',');
      first = false;
      AppendJsonString(key, out_);
      out_->push_back(':');
      if (absl::Status s = Value(value, depth + 1); !s.ok()) return s;
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  absl::Status List(absl::string_view bytes, int depth) {
    out_->push_back('[');
    bool first = true;
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint64_t tag, len;
      if (!ReadVarint(bytes, &pos, &tag) || (tag & 7) != 2 || !ReadVarint(bytes, &pos, &len) ||
          len > bytes.size() - pos) {
        return Error("malformed google.protobuf.ListValue");
      }
      absl::string_view value = bytes.substr(pos, len);
      pos += len;
      if (!first) out_->push_back(',');
      first = false;
      if (absl::Status s = Value(value, depth + 1); !s.ok()) return s;
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  absl::Status Value(absl::string_view bytes, int depth) {
    if (depth > 100) return Error("google.protobuf.Value nesting too deep");
    // The last member of the "kind" oneof wins.
    int kind = 0;
    uint64_t scalar = 0;
    absl::string_view data;
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint64_t tag;
      if (!ReadVarint(bytes, &pos, &tag)) return Error("malformed google.protobuf.Value");
      int number = static_cast<int>(tag >> 3);
      switch (tag & 7) {
        case 0:
          if (!ReadVarint(bytes, &pos, &scalar)) return Error("malformed google.protobuf.Value");
          break;
        case 1:
          if (bytes.size() - pos < 8) return Error("malformed google.protobuf.Value");
          scalar = LoadLE(bytes.substr(pos, 8));
          pos += 8;
          break;
        case 2: {
          uint64_t len;
          if (!ReadVarint(bytes, &pos, &len) || len > bytes.size() - pos) {
            return Error("malformed google.protobuf.Value");
          }
          data = bytes.substr(pos, len);
          pos += len;
          break;
        }
        case 5:
          if (bytes.size() - pos < 4) return Error("malformed google.protobuf.Value");
          pos += 4;
          continue;
        default:
          return Error("malformed google.protobuf.Value");
      }
      if (number >= 1 && number <= 6) kind = number;
    }
    switch (kind) {
      case 2: {
        double d;
        std::memcpy(&d, &scalar, 8);
        if (!std::isfinite(d)) return Error("google.protobuf.Value number is not finite");
        Floating(d);
        return absl::OkStatus();
      }
      case 3: AppendJsonString(data, out_); return absl::OkStatus();
      case 4: out_->append(scalar != 0 ? "true" : "false"); return absl::OkStatus();
      case 5: return Struct(data, depth + 1);
      case 6: return List(data, depth + 1);
      default: out_->append("null"); return absl::OkStatus();
    }
  }

  absl::Status Any(absl::string_view bytes) {
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = config_.emit_default_values;
    options.always_print_enums_as_ints = config_.enums_as_ints;
    options.preserve_proto_field_names = config_.use_proto_field_names;
    google::protobuf::io::ArrayInputStream input(bytes.data(), static_cast<int>(bytes.size()));
    google::protobuf::io::StringOutputStream output(out_);
    google::protobuf::util::Status s = google::protobuf::util::BinaryToJsonStream(
        fallback_, "type.googleapis.com/google.protobuf.Any", &input, &output, options);
    if (!s.ok()) return Error(s.message().ToString());
    return absl::OkStatus();
  }

  const JsonPrintConfig& config_;
  google::protobuf::util::TypeResolver* fallback_;
  std::string* out_;
};

}  // namespace

absl::Status JsonCodec::JsonToProto(const Descriptor* type, absl::string_view json,
                                    const JsonParseConfig& config, std::string* out) const {
  const MessageInfo* info = Info(type);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", type->full_name(), " is not known to the JSON codec"));
  }
  Parser parser(json, config, fallback_);
  if (absl::Status s = parser.MessagePayload(*info, out); !s.ok()) return s;
  return parser.Finish();
}

absl::Status JsonCodec::ProtoToJson(const Descriptor* type, absl::string_view proto,
                                    const JsonPrintConfig& config, std::string* out) const {
  const MessageInfo* info = Info(type);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", type->full_name(), " is not known to the JSON codec"));
  }
  Printer printer(config, fallback_, out);
  return printer.MessagePayload(*info, proto, 0);
}

}  // namespace gateway::transcoder
