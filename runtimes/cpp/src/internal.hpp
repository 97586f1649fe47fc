// Helpers shared by the library's .cpp files; not part of the public API.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "edgepack.hpp"

namespace edgepack::detail {

using Json = nlohmann::json;
// Verified file contents by package path: the bytes that were hashed are the bytes that are used.
using Files = std::map<std::string, std::string>;

inline constexpr const char* kManifest = "manifest.json";
inline constexpr const char* kSignature = "manifest.sig";

[[noreturn]] void fail(ErrorKind kind, const std::string& message);
// nlohmann throws on a field of a type the explicit checks did not cover: still one clear line.
[[noreturn]] void fail_json(const nlohmann::json::exception& e);

// The whole file; Error(kind) naming `label` if it cannot be read or is not a regular file (a
// FIFO, device or folder is refused before it is opened: a FIFO without a writer blocks forever).
// For files the app names (read_npy, images, the public key); a package's go through read_member.
// A file longer than max_bytes (each caller's cap) is refused from its size before a byte is
// read, and one that changes while it is read is refused.
std::string read_file(const std::filesystem::path& path, const std::string& label, ErrorKind kind,
                      size_t max_bytes);

// files.cpp: every regular file under root by package path, with its lstat size. A symlink
// (to a file or a folder), FIFO, socket or device anywhere in the tree: Error(kInvalidPackage).
std::map<std::string, uintmax_t> list_files(const std::filesystem::path& root);

// The lstat size of root/name; nullopt if it does not exist; Error if it is not a regular file.
std::optional<uintmax_t> regular_size(const std::filesystem::path& root, const std::string& name);

struct Member {
  std::string bytes;  // empty unless kept
  std::string sha256;
};

// Exactly `size` bytes of root/name, streamed through sha256 (kept when `keep`): opened with
// O_NOFOLLOW one component at a time, refused unread if fstat's size differs, and refused as
// soon as it holds more. Error(kIntegrity) naming the file otherwise.
Member read_member(const std::filesystem::path& root, const std::string& name, uintmax_t size,
                   bool keep);

// manifest.sig must be the ed25519 signature of these exact manifest bytes under the PEM key.
void verify_signature(const std::filesystem::path& root, const std::string& manifest_bytes,
                      const std::string& pubkey_pem);

// Parse a package's JSON file as the Python and JS runtimes do: refused unparsed if nested
// deeper than kMaxJsonDepth or opening with a byte order mark; invalid JSON and numbers beyond
// a double are Error(kInvalidPackage) naming `where` and why.
Json parse_json(const std::string& bytes, const std::string& where);

// Parse manifest.json (parse_json), refuse an unknown schema major, check the fields the runtime
// reads and the sizes against kMaxFileBytes.
Json parse_manifest(const std::string& bytes);

// Every listed file must exist with its size and sha256, and every file in the folder must be
// listed (except manifest.json/manifest.sig); all sizes are checked before any file is read.
// Returns the contents of the files in `keep`.
Files verify_files(const std::filesystem::path& root, const Json& manifest,
                   const std::set<std::string>& keep);

// An .npy header, checked (npy.cpp): numbers only, little-endian, C order, dims >= 0.
struct NpyHeader {
  std::string descr;  // numpy's, e.g. "<f4"
  std::string code;   // without the byte order: "f4"
  std::vector<int64_t> shape;
  size_t item_size = 0;
  size_t offset = 0;        // where the data starts
  double data_bytes = 0.0;  // a double: a hostile shape's product never wraps
};

// The header at the start of `head` (its first 12 + kMaxNpyHeaderBytes bytes, or the file).
NpyHeader parse_npy_header(const std::string& head, const std::string& where, ErrorKind kind);
// The data after the header must be exactly what the shape says.
void check_npy_size(const NpyHeader& header, uintmax_t size, const std::string& where,
                    ErrorKind kind);
// A .npy held in memory; `where` names it in errors of `kind`.
Array parse_npy(const std::string& bytes, const std::string& where,
                ErrorKind kind = ErrorKind::kInvalidPackage);

// The first `n` bytes of root/name (fewer if shorter), opened as read_member opens it.
std::string read_head(const std::filesystem::path& root, const std::string& name, size_t n);

// budget.cpp: the memory budget (docs/package-format.md), checked once every size holds and
// before any file is read: the `kept` files besides the model within kMaxKeptBytes together,
// and each sample .npy's header (read first) fitting its model tensor.
void check_budget(const std::filesystem::path& root, const Json& manifest,
                  const std::set<std::string>& kept);

// Decoded 8-bit RGB pixels, row-major, interleaved.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// A checked preprocessing block of type "image" (docs/package-format.md, "Image packages").
struct ImageSpec {
  std::string channel_order = "RGB", layout = "NCHW", dtype = "float32";
  std::string interpolation;  // empty: no resize
  int shorter = 0, resize_h = 0, resize_w = 0, crop_h = 0, crop_w = 0;
  double scale = 1.0;
  std::vector<double> mean{0, 0, 0}, stdev{1, 1, 1};
};

ImageSpec read_image_spec(const Json& spec);
// PNG/JPEG bytes -> RGB (stb_image: 8-bit, gray repeated, alpha dropped). Error(kInput) if not,
// or if its header says more than `max_pixels` (checked before anything is decoded).
Image decode_image(const std::string& bytes, const std::string& where,
                   int64_t max_pixels = kMaxImagePixels);
// Decoded pixels -> one image's tensor (C, H, W) or (H, W, C), float32 values held as double.
Array apply_image_spec(Image image, const ImageSpec& spec);

// Field access that names the field on error ("manifest.json: field 'samples.atol' must be ...").
const Json& field(const Json& obj, const std::string& key, const std::string& where);
std::string string_field(const Json& obj, const std::string& key, const std::string& where);
double number_field(const Json& obj, const std::string& key, const std::string& where,
                    const double* fallback = nullptr);

}  // namespace edgepack::detail
