#include "transcoder/json_stream.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gateway::transcoder {
namespace {

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

absl::string_view StreamContentType(StreamFormat format) {
  switch (format) {
    case StreamFormat::kJsonArray: return "application/json";
    case StreamFormat::kNdjson: return "application/x-ndjson";
    case StreamFormat::kServerSentEvents: return "text/event-stream";
  }
  return "application/json";
}

StreamFormat ChooseStreamFormat(absl::string_view accept_header,
                                StreamFormat default_format) {
  for (absl::string_view item : absl::StrSplit(accept_header, ',')) {
    absl::string_view media = absl::StripAsciiWhitespace(item.substr(0, item.find(';')));
    if (absl::EqualsIgnoreCase(media, "text/event-stream")) {
      return StreamFormat::kServerSentEvents;
    }
    if (absl::EqualsIgnoreCase(media, "application/x-ndjson") ||
        absl::EqualsIgnoreCase(media, "application/jsonl") ||
        absl::EqualsIgnoreCase(media, "application/json-seq")) {
      return StreamFormat::kNdjson;
    }
    if (absl::EqualsIgnoreCase(media, "application/json")) {
      return StreamFormat::kJsonArray;
    }
  }
  return default_format;
}

std::string StreamFramer::Message(absl::string_view json) {
  std::string out;
  switch (format_) {
    case StreamFormat::kJsonArray:
      out.reserve(json.size() + 1);
      out.push_back(started_ ? ',' : '[');
      out.append(json.data(), json.size());
      break;
    case StreamFormat::kNdjson:
      // A pretty-printed message must still be one line.
      out.reserve(json.size() + 1);
      for (char c : json) {
        if (c != '\n' && c != '\r') out.push_back(c);
      }
      out.push_back('\n');
      break;
    case StreamFormat::kServerSentEvents:
      for (absl::string_view line : absl::StrSplit(json, '\n')) {
        absl::StrAppend(&out, "data: ", line, "\n");
      }
      out.push_back('\n');
      break;
  }
  started_ = true;
  return out;
}

std::string StreamFramer::End() {
  if (format_ != StreamFormat::kJsonArray) return "";
  return started_ ? "]" : "[]";
}

std::string StreamFramer::Error(absl::string_view error_json) {
  switch (format_) {
    case StreamFormat::kJsonArray:
      return absl::StrCat(started_ ? "," : "[", "{\"error\":", error_json, "}]");
    case StreamFormat::kNdjson: {
      std::string line = absl::StrCat("{\"error\":", error_json, "}");
      line.erase(std::remove(line.begin(), line.end(), '\n'), line.end());
      return line + "\n";
    }
    case StreamFormat::kServerSentEvents: {
      std::string out = "event: error\n";
      for (absl::string_view line : absl::StrSplit(error_json, '\n')) {
        absl::StrAppend(&out, "data: ", line, "\n");
      }
      out.push_back('\n');
      return out;
    }
  }
  return "";
}

JsonStreamReader::JsonStreamReader(StreamFormat format, size_t max_message_bytes)
    : format_(format == StreamFormat::kJsonArray ? format : StreamFormat::kNdjson),
      max_message_bytes_(max_message_bytes) {}

void JsonStreamReader::Append(absl::string_view bytes) {
  buffer_.append(bytes.data(), bytes.size());
}

absl::Status JsonStreamReader::Fail(size_t offset, absl::string_view what) {
  error_ = absl::InvalidArgumentError(
      absl::StrCat("invalid stream body at byte ", consumed_ + offset, ": ", what));
  return error_;
}

absl::StatusOr<std::optional<std::string>> JsonStreamReader::Next() {
  if (!error_.ok()) return error_;
  while (true) {
    if (!in_value_) {
      while (pos_ < buffer_.size() && IsWs(buffer_[pos_])) ++pos_;
      if (pos_ == buffer_.size()) return std::optional<std::string>();
      char c = buffer_[pos_];
      if (format_ == StreamFormat::kJsonArray) {
        if (!array_open_) {
          if (c != '[') return Fail(pos_, "a client stream body must be a JSON array");
          array_open_ = true;
          ++pos_;
          continue;
        }
        if (array_closed_) return Fail(pos_, "data after the end of the array");
        if (c == ']' && !after_comma_) {
          array_closed_ = true;
          ++pos_;
          continue;
        }
        if (need_separator_) {
          if (c != ',') return Fail(pos_, "expected ',' or ']'");
          need_separator_ = false;
          after_comma_ = true;
          ++pos_;
          continue;
        }
        if (c == ']' || c == ',') return Fail(pos_, "expected a message");
      }
      in_value_ = true;
      value_scan_ = pos_;
      depth_ = 0;
      in_string_ = false;
      escape_ = false;
    }

    // Resume scanning the value that starts at pos_.
    size_t end = std::string::npos;
    char first = buffer_[pos_];
    bool scalar = first != '{' && first != '[' && first != '"';
    size_t i = value_scan_;
    for (; i < buffer_.size(); ++i) {
      char c = buffer_[i];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
          if (depth_ == 0) {
            end = i + 1;
            break;
          }
        }
        continue;
      }
      if (scalar) {
        if (IsWs(c) || c == ',' || c == ']' || c == '}' || c == '[' || c == '{') {
          end = i;
          break;
        }
        continue;
      }
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) {
          end = i + 1;
          break;
        }
      }
    }
    if (end == std::string::npos && scalar && finished_ && i == buffer_.size()) {
      end = buffer_.size();
    }
    if (end == std::string::npos) {
      value_scan_ = i;
      if (buffer_.size() - pos_ > max_message_bytes_) {
        return Fail(pos_, absl::StrCat("a message is larger than ", max_message_bytes_,
                                       " bytes"));
      }
      return std::optional<std::string>();
    }
    if (end - pos_ > max_message_bytes_) {
      return Fail(pos_, absl::StrCat("a message is larger than ", max_message_bytes_,
                                     " bytes"));
    }
    std::string message = buffer_.substr(pos_, end - pos_);
    pos_ = end;
    in_value_ = false;
    need_separator_ = format_ == StreamFormat::kJsonArray;
    after_comma_ = false;
    if (pos_ > (64 << 10) && pos_ * 2 > buffer_.size()) {
      buffer_.erase(0, pos_);
      consumed_ += pos_;
      pos_ = 0;
    }
    return std::optional<std::string>(std::move(message));
  }
}

absl::Status JsonStreamReader::Finish() {
  if (!error_.ok()) return error_;
  finished_ = true;
  if (in_value_) {
    char first = buffer_[pos_];
    bool scalar = first != '{' && first != '[' && first != '"';
    if (!scalar || format_ == StreamFormat::kJsonArray) {
      return Fail(pos_, "the body ends inside a message");
    }
    return absl::OkStatus();  // Next() returns the trailing scalar
  }
  if (format_ == StreamFormat::kJsonArray) {
    if (!array_open_) return Fail(pos_, "a client stream body must be a JSON array");
    if (!array_closed_) return Fail(pos_, "the JSON array is not closed");
  }
  return absl::OkStatus();
}

}  // namespace gateway::transcoder
