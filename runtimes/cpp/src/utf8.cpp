// Text in and out, over one UTF-8 decoder: the input policy for texts and prompts (check_text,
// the same refusal lines as the Python and Node runtimes) and what is shown on a terminal
// (printable: the same characters escaped as they escape).
#include <cstdio>

#include "edgepack.hpp"
#include "text.hpp"

namespace edgepack {

namespace {

// The length of the UTF-8 sequence at text[i] and its code point; 0 if it is not valid UTF-8
// (Unicode's table 3-7: a stray continuation byte, a truncated or overlong sequence, a
// surrogate, past U+10FFFF).
size_t utf8_at(const std::string& text, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  cp = n == 1 ? b : b & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (byte(i + k) & 0x3f);
  }
  const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool unprintable(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c || cp == 0x200e ||
         cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// Unicode's White_Space property: a text of nothing else is empty (the same set in every runtime).
bool white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

}  // namespace

std::string printable(const std::string& text) {
  std::string out;
  char buf[16];
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_at(text, i, cp);
    if (n == 0) {  // not UTF-8: the byte, escaped
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(text[i]));
      out += buf;
      ++i;
      continue;
    }
    if (unprintable(cp)) {
      std::snprintf(buf, sizeof buf, cp < 0x100 ? "\\x%02x" : "\\u%04x", cp);
      out += buf;
    } else {
      out.append(text, i, n);
    }
    i += n;
  }
  return out;
}

namespace detail {

void check_text(const std::string& text, const std::string& where) {
  bool empty = true;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_at(text, i, cp);
    if (n == 0) {
      fail(ErrorKind::kInput,
           where + ": not valid UTF-8 at byte " + std::to_string(i) + ": pass Unicode text");
    }
    empty = empty && white_space(cp);
    i += n;
  }
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    fail(ErrorKind::kInput,
         where + ": contains NUL (U+0000) at byte " + std::to_string(nul) + ": remove it");
  }
  if (empty) fail(ErrorKind::kInput, where + ": empty text: give some words");
}

}  // namespace detail

}  // namespace edgepack
