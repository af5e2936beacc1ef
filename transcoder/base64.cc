#include "transcoder/base64.h"

#include <cstdint>
#include <cstring>

#include "absl/base/config.h"

namespace gateway::transcoder {
namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Decoding: one table per position in a group of four characters, holding the
// character's 6 bits already shifted into place, so a group decodes as
// t[0][a] | t[1][b] | t[2][c] | t[3][d]. Bits 24 and up say what else the
// character is: kStandardOnly ('+', '/'), kUrlSafeOnly ('-', '_'), or kNotData
// (whitespace, padding, anything else), which makes the group take the slow path.
constexpr uint32_t kStandardOnly = 1u << 24;
constexpr uint32_t kUrlSafeOnly = 1u << 25;
constexpr uint32_t kNotData = 1u << 31;

constexpr int ValueOf(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

struct DecodeTables {
  uint32_t t[4][256];
};

constexpr DecodeTables MakeDecodeTables() {
  DecodeTables d{};
  for (int c = 0; c < 256; ++c) {
    int v = ValueOf(c);
    uint32_t kind = (c == '+' || c == '/')   ? kStandardOnly
                    : (c == '-' || c == '_') ? kUrlSafeOnly
                                             : 0;
    for (int i = 0; i < 4; ++i) {
      d.t[i][c] = v < 0 ? kNotData : (static_cast<uint32_t>(v) << (6 * (3 - i))) | kind;
    }
  }
  return d;
}

constexpr DecodeTables kDecode = MakeDecodeTables();

inline uint64_t ByteSwapIfLittleEndian(uint64_t x) {
#if defined(ABSL_IS_BIG_ENDIAN)
  return x;
#else
  return __builtin_bswap64(x);
#endif
}

inline uint64_t LoadBigEndian64(const unsigned char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return ByteSwapIfLittleEndian(x);
}

inline void StoreBigEndian64(uint64_t x, char* p) {
  x = ByteSwapIfLittleEndian(x);
  std::memcpy(p, &x, 8);
}

// absl::ascii_isspace.
inline bool IsSpace(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

inline bool IsPad(unsigned char c) { return c == '=' || c == '.'; }

// Encoding: the two characters for each 12-bit half of a 3-byte group.
struct EncodeTable {
  char pair[4096][2];
};

constexpr EncodeTable MakeEncodeTable() {
  EncodeTable e{};
  for (int i = 0; i < 4096; ++i) {
    e.pair[i][0] = kAlphabet[i >> 6];
    e.pair[i][1] = kAlphabet[i & 63];
  }
  return e;
}

constexpr EncodeTable kEncode = MakeEncodeTable();

}  // namespace

size_t Base64DecodedSize(absl::string_view in) {
  size_t m = in.size();
  for (int i = 0; i < 2 && m > 0 && IsPad(static_cast<unsigned char>(in[m - 1])); ++i) --m;
  return 3 * (m / 4) + (m % 4 >= 2 ? m % 4 - 1 : 0);
}

bool Base64Decode(absl::string_view in, std::string* out) {
  const size_t old_size = out->size();
  // At most 3 bytes per 4 characters, the rest rounded up (as absl sizes it).
  out->resize(old_size + 3 * (in.size() / 4) + in.size() % 4);
  char* const begin = &(*out)[old_size];
  char* d = begin;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(in.data());
  const unsigned char* const end = p + in.size();
  const uint32_t(&t)[4][256] = kDecode.t;
  uint32_t kinds = 0;  // kStandardOnly | kUrlSafeOnly seen so far
  uint32_t bits = 0;   // data of the group in progress (slow path)
  int state = 0;       // data characters in `bits`
  for (;;) {
    if (state == 0) {
      // Fast path: whole groups of four data characters, two per step while
      // 12 characters remain (the output then has room for an 8-byte store).
      while (end - p >= 12) {
        uint32_t x = t[0][p[0]] | t[1][p[1]] | t[2][p[2]] | t[3][p[3]];
        uint32_t y = t[0][p[4]] | t[1][p[5]] | t[2][p[6]] | t[3][p[7]];
        if ((x | y) & kNotData) break;
        kinds |= x | y;
        // x's kind bits shift out; y's are masked off.
        uint64_t six = (uint64_t{x} << 40) | (uint64_t{y & 0xFFFFFF} << 16);
        StoreBigEndian64(six, d);
        d += 6;
        p += 8;
      }
      while (end - p >= 4) {
        uint32_t x = t[0][p[0]] | t[1][p[1]] | t[2][p[2]] | t[3][p[3]];
        if (x & kNotData) break;
        kinds |= x;
        d[0] = static_cast<char>(x >> 16);
        d[1] = static_cast<char>(x >> 8);
        d[2] = static_cast<char>(x);
        d += 3;
        p += 4;
      }
    }
    if (p == end) break;
    unsigned char c = *p;
    uint32_t x = t[3][c];
    if (x & kNotData) {
      if (IsPad(c)) break;
      if (!IsSpace(c)) {
        out->resize(old_size);
        return false;
      }
      ++p;
      continue;
    }
    ++p;
    kinds |= x;
    bits = (bits << 6) | (x & 63);
    if (++state == 4) {
      d[0] = static_cast<char>(bits >> 16);
      d[1] = static_cast<char>(bits >> 8);
      d[2] = static_cast<char>(bits);
      d += 3;
      bits = 0;
      state = 0;
    }
  }
  // The last, partial group, and the padding that may follow it.
  int expected_pads = 0;
  bool ok = (kinds & kStandardOnly) == 0 || (kinds & kUrlSafeOnly) == 0;
  switch (state) {
    case 0:
      break;
    case 1:
      ok = false;
      break;
    case 2:
      *d++ = static_cast<char>(bits >> 4);
      expected_pads = 2;
      break;
    case 3:
      d[0] = static_cast<char>(bits >> 10);
      d[1] = static_cast<char>(bits >> 2);
      d += 2;
      expected_pads = 1;
      break;
  }
  int pads = 0;
  for (; ok && p < end; ++p) {
    if (IsPad(*p)) {
      ++pads;
    } else if (!IsSpace(*p)) {
      ok = false;
    }
  }
  if (!ok || (pads != 0 && pads != expected_pads)) {
    out->resize(old_size);
    return false;
  }
  out->resize(old_size + (d - begin));
  return true;
}

void Base64Encode(absl::string_view in, std::string* out) {
  const size_t old_size = out->size();
  out->resize(old_size + (in.size() + 2) / 3 * 4);
  char* d = &(*out)[old_size];
  const unsigned char* p = reinterpret_cast<const unsigned char*>(in.data());
  const unsigned char* const end = p + in.size();
  // Six bytes per step, loaded as eight, while eight remain.
  while (end - p >= 8) {
    uint64_t x = LoadBigEndian64(p);
    std::memcpy(d, kEncode.pair[x >> 52], 2);
    std::memcpy(d + 2, kEncode.pair[(x >> 40) & 0xFFF], 2);
    std::memcpy(d + 4, kEncode.pair[(x >> 28) & 0xFFF], 2);
    std::memcpy(d + 6, kEncode.pair[(x >> 16) & 0xFFF], 2);
    d += 8;
    p += 6;
  }
  while (end - p >= 3) {
    uint32_t x = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    std::memcpy(d, kEncode.pair[x >> 12], 2);
    std::memcpy(d + 2, kEncode.pair[x & 0xFFF], 2);
    d += 4;
    p += 3;
  }
  if (end - p == 1) {
    uint32_t x = uint32_t{p[0]} << 4;  // 12 bits
    std::memcpy(d, kEncode.pair[x], 2);
    d[2] = '=';
    d[3] = '=';
  } else if (end - p == 2) {
    uint32_t x = (uint32_t{p[0]} << 10) | (uint32_t{p[1]} << 2);  // 18 bits
    std::memcpy(d, kEncode.pair[x >> 6], 2);
    d[2] = kAlphabet[x & 63];
    d[3] = '=';
  }
}

}  // namespace gateway::transcoder
