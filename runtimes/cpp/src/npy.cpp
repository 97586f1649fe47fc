// The .npy reader (numpy's format 1.0-3.0) of every array the runtime takes from a package or a
// user, header first, as the Python and JS runtimes read it: the header (at most
// kMaxNpyHeaderBytes) is parsed and checked before a byte of data is touched: numbers and bools
// only, little-endian, C order, no negative dim, and exactly as many data bytes as the shape says.
#include <cctype>
#include <cstring>

#include "internal.hpp"

namespace edgepack {

namespace {

template <typename T>
void widen(const char* data, size_t count, std::vector<double>& out) {
  out.resize(count);
  for (size_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, data + i * sizeof(T), sizeof(T));  // unaligned-safe
    out[i] = static_cast<double>(value);
  }
}

// descr without its byte-order character ("f4", "i8", ...) -> converter; false if unknown.
bool convert(const std::string& kind, const char* data, size_t count, std::vector<double>& out) {
  if (kind == "f4") return widen<float>(data, count, out), true;
  if (kind == "f8") return widen<double>(data, count, out), true;
  if (kind == "i1") return widen<int8_t>(data, count, out), true;
  if (kind == "u1" || kind == "b1") return widen<uint8_t>(data, count, out), true;
  if (kind == "i2") return widen<int16_t>(data, count, out), true;
  if (kind == "u2") return widen<uint16_t>(data, count, out), true;
  if (kind == "i4") return widen<int32_t>(data, count, out), true;
  if (kind == "u4") return widen<uint32_t>(data, count, out), true;
  if (kind == "i8") return widen<int64_t>(data, count, out), true;
  if (kind == "u8") return widen<uint64_t>(data, count, out), true;
  return false;
}

// Why an array of this descr ("<f4", "|O", "<M8[D]") is not an array of numbers; "" if it is.
std::string dtype_refusal(const std::string& descr) {
  const size_t at = descr.find_first_not_of("<>|=");
  const char kind = at < descr.size() ? descr[at] : '?';
  const std::string size = at + 1 <= descr.size() ? descr.substr(at + 1) : "";
  const bool number =
      (kind == 'b' && size == "1") ||
      ((kind == 'i' || kind == 'u') && (size == "1" || size == "2" || size == "4" || size == "8")) ||
      (kind == 'f' && (size == "2" || size == "4" || size == "8"));
  if (number) return "";
  const std::string what = kind == 'M'   ? "datetime"
                           : kind == 'm' ? "timedelta"
                           : kind == 'U' ? "string"
                           : kind == 'S' ? "bytes"
                           : kind == 'O' ? "object"
                           : kind == 'c' ? "complex"
                                         : "structured or void";
  return what + " arrays (" + descr + ") are not numbers: pass bool, int or float arrays";
}

// The value after `'key':` in the header dict (spaces skipped); npos if the key is missing.
size_t value_of(const std::string& header, const std::string& key) {
  const size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) return at;
  size_t pos = header.find(':', at);
  if (pos == std::string::npos) return pos;
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  return pos;
}

}  // namespace

namespace detail {

NpyHeader parse_npy_header(const std::string& head, const std::string& where, ErrorKind kind) {
  auto bad = [&](const std::string& why) {
    fail(kind, where + ": not a readable .npy array (" + why + ")");
  };
  if (head.size() < 8 || head.compare(0, 6, "\x93NUMPY") != 0) bad("bad magic: not an .npy file");
  const auto major = static_cast<unsigned char>(head[6]);
  const auto minor = static_cast<unsigned char>(head[7]);
  if (major < 1 || major > 3 || minor != 0)
    bad("unknown format version " + std::to_string(major) + "." + std::to_string(minor));
  const size_t start = major == 1 ? 10 : 12;
  if (head.size() < start) bad("truncated header");
  size_t header_len = 0;
  for (size_t i = start; i-- > 8;) header_len = header_len << 8 | static_cast<unsigned char>(head[i]);
  if (header_len > kMaxNpyHeaderBytes)
    bad("a " + std::to_string(header_len) + "-byte header, over the " +
        std::to_string(kMaxNpyHeaderBytes) + "-byte cap");
  if (head.size() < start + header_len) bad("truncated header");
  const std::string header = head.substr(start, header_len);
  std::string shown = header;  // one line: the header ends in '\n' and may pad with spaces
  shown.erase(shown.find_last_not_of(" \n") + 1);

  // The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2,)}
  const size_t d = value_of(header, "descr");
  const size_t f = value_of(header, "fortran_order");
  const size_t s = value_of(header, "shape");
  const size_t d_end = d == std::string::npos ? d : header.find('\'', d + 1);
  const size_t s_end = s == std::string::npos ? s : header.find(')', s);
  if (d_end == std::string::npos || header[d] != '\'' || f == std::string::npos ||
      s_end == std::string::npos || header[s] != '(')
    bad("unparsable header: " + shown.substr(0, 200));
  NpyHeader out;
  out.descr = header.substr(d + 1, d_end - d - 1);
  const std::string refusal = dtype_refusal(out.descr);
  if (!refusal.empty()) fail(kind, where + ": " + refusal);
  if (out.descr[0] == '>') bad("big-endian arrays are not supported");
  out.code = out.descr.substr(out.descr.find_first_not_of("<>|="));  // "f4", "b1", ...
  if (header.compare(f, 4, "True") == 0)
    bad("Fortran-order arrays are not supported (save a C-order array)");
  if (header.compare(f, 5, "False") != 0) bad("unparsable header: " + shown.substr(0, 200));
  const std::string dims = header.substr(s + 1, s_end - s - 1);
  if (dims.find('-') != std::string::npos) bad("negative dimension in shape (" + dims + ")");
  double count = 1.0;  // a double: a product past 2^64 only gets bigger, never wraps
  for (size_t i = 0; i < dims.size();) {
    const char c = dims[i];
    if (c == ' ' || c == ',') {
      ++i;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) bad("bad shape (" + dims + ")");
    size_t end = i;
    while (end < dims.size() && std::isdigit(static_cast<unsigned char>(dims[end]))) ++end;
    const std::string digits = dims.substr(i, end - i);
    if (digits.size() > 18) bad("shape (" + dims + ") is larger than any file");
    out.shape.push_back(std::stoll(digits));
    count *= static_cast<double>(out.shape.back());
    i = end;
  }
  out.item_size = static_cast<size_t>(std::stoi(out.code.substr(1)));
  out.offset = start + header_len;
  out.data_bytes = count * static_cast<double>(out.item_size);
  return out;
}

void check_npy_size(const NpyHeader& header, uintmax_t size, const std::string& where,
                    ErrorKind kind) {
  const double have = static_cast<double>(size) - static_cast<double>(header.offset);
  if (have != header.data_bytes) {
    std::string dims;
    for (size_t i = 0; i < header.shape.size(); ++i)
      dims += (i ? ", " : "") + std::to_string(header.shape[i]);
    char needs[32];
    std::snprintf(needs, sizeof needs, "%.0f", header.data_bytes);
    fail(kind, where + ": not a readable .npy array (shape (" + dims + ") of " + header.descr +
                   " needs " + needs + " data bytes, the file holds " +
                   std::to_string(static_cast<long long>(have)) + ")");
  }
}

Array parse_npy(const std::string& bytes, const std::string& where, ErrorKind kind) {
  const NpyHeader header =
      parse_npy_header(bytes.substr(0, 12 + kMaxNpyHeaderBytes), where, kind);
  check_npy_size(header, bytes.size(), where, kind);
  Array array{header.shape, {}};
  const size_t count = static_cast<size_t>(header.data_bytes) / header.item_size;
  if (!convert(header.code, bytes.data() + header.offset, count, array.values))
    fail(kind, where + ": dtype '" + header.descr + "' is not supported (numbers and bools only)");
  return array;
}

}  // namespace detail

Array read_npy(const std::string& path) {
  // A FIFO or device refused unopened, a file over the cap unread, the header checked first.
  return detail::parse_npy(detail::read_file(path, path, ErrorKind::kInput, kMaxInputBytes), path,
                           ErrorKind::kInput);
}

}  // namespace edgepack
