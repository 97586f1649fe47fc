// A .npy reader for what numpy.save writes: format 1.0-3.0, little-endian numbers, C order.
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

}  // namespace

namespace detail {

Array parse_npy(const std::string& bytes, const std::string& where) {
  auto bad = [&](const std::string& why) { fail(ErrorKind::kInput, where + ": " + why); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) bad("not a .npy file");
  const auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad("truncated .npy header");
    for (int i = 3; i >= 0; --i)
      header_len = header_len << 8 | static_cast<unsigned char>(bytes[8 + i]);
    offset = 12;
  } else {
    bad(".npy format version " + std::to_string(major) + " is not supported");
  }
  if (bytes.size() < offset + header_len) bad("truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);

  // The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),
  // }
  auto after = [&](const char* key) {
    const size_t at = header.find(key);
    if (at == std::string::npos) bad(std::string("no ") + key + " in .npy header");
    size_t pos = header.find(':', at) + 1;
    while (pos < header.size() && header[pos] == ' ') ++pos;
    return pos;
  };
  const size_t d = after("'descr'");
  const size_t d_end = header.find('\'', d + 1);
  if (header[d] != '\'' || d_end == std::string::npos || d_end - d < 4) {
    std::string shown = header;  // one line: the header ends in '\n' and may pad with spaces
    shown.erase(shown.find_last_not_of(" \n") + 1);
    bad("unsupported dtype in .npy header " + shown);
  }
  const char order = header[d + 1];
  const std::string kind = header.substr(d + 2, d_end - d - 2);  // "f4", "i8", ...
  if (order == '>') bad("big-endian arrays are not supported");
  if (header.compare(after("'fortran_order'"), 4, "True") == 0) {
    bad("Fortran-order arrays are not supported (save a C-order array)");
  }
  const size_t s = after("'shape'");
  const size_t s_end = header.find(')', s);
  if (header[s] != '(' || s_end == std::string::npos) bad("no shape tuple in .npy header");

  Array array;
  size_t count = 1;
  const std::string dims = header.substr(s + 1, s_end - s - 1);
  for (size_t i = 0; i < dims.size();) {
    if (!std::isdigit(static_cast<unsigned char>(dims[i]))) {
      ++i;
      continue;
    }
    size_t len = 0;
    array.shape.push_back(std::stoll(dims.substr(i), &len));
    i += len;
    count *= static_cast<size_t>(array.shape.back());
    if (count > bytes.size()) bad("shape (" + dims + ") is larger than the file");  // no overflow
  }
  if (kind.size() < 2 || std::string("fiub").find(kind[0]) == std::string::npos ||
      !std::isdigit(static_cast<unsigned char>(kind[1]))) {
    bad("dtype '" + kind + "' is not supported (numbers and bools only)");
  }
  const size_t item = static_cast<size_t>(std::stoi(kind.substr(1)));
  const size_t data_offset = offset + header_len;
  if (bytes.size() - data_offset != count * item) {
    bad("expected " + std::to_string(count * item) + " data bytes for the shape, got " +
        std::to_string(bytes.size() - data_offset));
  }
  if (!convert(kind, bytes.data() + data_offset, count, array.values)) {
    bad("dtype '" + kind + "' is not supported (numbers and bools only)");
  }
  return array;
}

}  // namespace detail

Array read_npy(const std::string& path) {
  return detail::parse_npy(detail::read_file(path, path, ErrorKind::kInput), path);
}

}  // namespace edgepack
