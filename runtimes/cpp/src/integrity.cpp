// Trust before use: signature, manifest (depth, schema major, fields, sizes within the caps).
// Reading the folder's files and their sha256 is files.cpp.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <sstream>

#include "internal.hpp"

namespace fs = std::filesystem;

namespace edgepack::detail {

namespace {

// A package path must be a plain relative posix path: it is joined onto the folder.
bool safe_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string::npos ||
      name.find(':') != std::string::npos) {
    return false;
  }
  std::stringstream parts(name);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return name.back() != '/';
}

std::string type_name(const Json& value) { return value.type_name(); }

bool digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// How deep [ and { nest in JSON text, counted without parsing (strings and escapes skipped):
// nlohmann parses deep documents, but copying or comparing one recurses, so refuse it first.
int json_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

[[noreturn]] void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

[[noreturn]] void fail_json(const nlohmann::json::exception& e) {
  fail(ErrorKind::kInvalidPackage,
       std::string(kManifest) + ": a field has an unexpected type (" + e.what() + ")");
}

const Json& field(const Json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) {
    fail(ErrorKind::kInvalidPackage,
         std::string(kManifest) + ": missing required field '" + where + key + "'");
  }
  return obj.at(key);
}

std::string string_field(const Json& obj, const std::string& key, const std::string& where) {
  const Json& value = field(obj, key, where);
  if (!value.is_string()) {
    fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": field '" + where + key +
                                         "' must be a string, got " + type_name(value));
  }
  return value.get<std::string>();
}

double number_field(const Json& obj, const std::string& key, const std::string& where,
                    const double* fallback) {
  if (fallback != nullptr && !obj.contains(key)) return *fallback;
  const Json& value = field(obj, key, where);
  // JSON booleans are not numbers here: a scale of `true` is a packaging bug.
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": field '" + where + key +
                                         "' must be a finite number, got " + type_name(value));
  }
  return value.get<double>();
}


void verify_signature(const fs::path& root, const std::string& manifest_bytes,
                      const std::string& pubkey_pem) {
  // The caller's key first: a bad --pubkey is reported as such, whatever the package holds.
  // read_file refuses a FIFO or device before opening it (BIO_new_file would wait on a FIFO).
  // A PEM public key is a few hundred bytes: a file over 64 KiB is refused unread (as in the
  // Python and JavaScript runtimes).
  const std::string pem =
      read_file(pubkey_pem, pubkey_pem, ErrorKind::kSignature, kMaxPublicKeyBytes);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) fail(ErrorKind::kSignature, pubkey_pem + ": cannot read the public key file");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) fail(ErrorKind::kSignature, pubkey_pem + ": not a PEM public key");
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    fail(ErrorKind::kSignature, pubkey_pem + ": not an ed25519 public key");
  }
  const std::optional<uintmax_t> size = regular_size(root, kSignature);
  if (!size) {
    fail(ErrorKind::kSignature, std::string(kSignature) +
                                    ": missing (the package is not signed, but a public key was "
                                    "given)");
  }
  if (*size > kMaxSignatureBytes) {
    fail(ErrorKind::kSignature, std::string(kSignature) + ": " + std::to_string(*size) +
                                    " bytes, larger than a signature can be");
  }
  const std::string sig = read_member(root, kSignature, *size, true).bytes;
  if (sig.size() != 64) {
    fail(ErrorKind::kSignature, std::string(kSignature) +
                                    ": expected a 64-byte ed25519 "
                                    "signature, got " +
                                    std::to_string(sig.size()) + " bytes");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  // Ed25519 hashes internally: the digest is NULL and the message goes in one call.
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(manifest_bytes.data()),
                       manifest_bytes.size()) == 1;
  if (!ok) {
    fail(ErrorKind::kSignature,
         std::string(kSignature) + ": signature does not match the public key " + pubkey_pem);
  }
}

namespace {

// Every entry of "files": a safe relative name, a sha256 hex, a size within kMaxFileBytes.
void check_files(const Json& files) {
  for (const auto& [name, entry] : files.items()) {
    if (!safe_name(name)) {
      fail(ErrorKind::kInvalidPackage,
           std::string(kManifest) + ": unsafe file name '" + name + "' (must be a relative path)");
    }
    const std::string where = "files." + name + ".";
    const std::string sha = string_field(entry, "sha256", where);
    const auto lower_hex = [](unsigned char c) {
      return std::isdigit(c) || (c >= 'a' && c <= 'f');
    };
    if (sha.size() != 64 || !std::all_of(sha.begin(), sha.end(), lower_hex)) {
      fail(ErrorKind::kInvalidPackage,
           std::string(kManifest) + ": '" + where + "sha256' is not a sha256 hex");
    }
    const Json& size = field(entry, "size", where);
    if (!size.is_number_integer() || (!size.is_number_unsigned() && size.get<int64_t>() < 0)) {
      fail(ErrorKind::kInvalidPackage,
           std::string(kManifest) + ": '" + where + "size' must be a non-negative integer");
    }
    if (size.get<uintmax_t>() > kMaxFileBytes) {
      fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": files." + name + ".size is " +
                                           size.dump() + " bytes, larger than the " +
                                           std::to_string(kMaxFileBytes >> 30) +
                                           " GiB cap for a package file");
    }
  }
}

}  // namespace

Json parse_json(const std::string& bytes, const std::string& where) {
  if (json_depth(bytes) > kMaxJsonDepth) {
    fail(ErrorKind::kInvalidPackage, where + ": JSON nested deeper than " +
                                         std::to_string(kMaxJsonDepth) +
                                         " levels (edgepack writes at most a few): refusing to "
                                         "parse it");
  }
  // nlohmann skips a byte order mark; the Python and JS runtimes refuse it, in the same words.
  if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) {
    fail(ErrorKind::kInvalidPackage, where +
                                         ": not valid JSON (it starts with a UTF-8 byte order "
                                         "mark, which JSON text must not have (RFC 8259): write "
                                         "the file without one)");
  }
  try {
    return Json::parse(bytes);
  } catch (const Json::out_of_range& e) {  // 406: 1e999, a number no double holds
    fail(ErrorKind::kInvalidPackage,
         where + ": not valid JSON (a number is out of range of a double: " + e.what() + ")");
  } catch (const Json::parse_error& e) {
    fail(ErrorKind::kInvalidPackage, where + ": not valid JSON (" + e.what() + ")");
  }
}

Json parse_manifest(const std::string& bytes) {
  Json manifest = parse_json(bytes, kManifest);
  if (!manifest.is_object()) {
    fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": expected a JSON object");
  }
  // The major first: a 2.0 package gets "upgrade the runtime", not a complaint about a field.
  const std::string version = string_field(manifest, "schema_version", "");
  const size_t dot = version.find('.');
  if (!digits(version.substr(0, dot)) || dot == std::string::npos ||
      !digits(version.substr(dot + 1))) {
    fail(ErrorKind::kInvalidPackage,
         std::string(kManifest) + ": schema_version must be 'MAJOR.MINOR', got '" + version + "'");
  }
  if (std::stoll(version.substr(0, std::min<size_t>(dot, 9))) != kSupportedMajor) {
    fail(ErrorKind::kSchemaVersion, std::string(kManifest) + ": schema_version " + version +
                                        " is not supported by this runtime (supports " +
                                        std::to_string(kSupportedMajor) + ".x)");
  }
  for (const char* key : {"name", "version", "task", "model"}) string_field(manifest, key, "");
  for (const char* key : {"inputs", "outputs"}) {
    const Json& specs = field(manifest, key, "");
    if (!specs.is_array() || specs.empty()) {
      fail(ErrorKind::kInvalidPackage,
           std::string(kManifest) + ": '" + key + "' must list at least one tensor");
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      const std::string where = std::string(key) + "[" + std::to_string(i) + "].";
      string_field(specs[i], "name", where);
      string_field(specs[i], "dtype", where);
    }
  }
  const Json& files = field(manifest, "files", "");
  if (!files.is_object()) {
    fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": 'files' must be an object");
  }
  check_files(files);
  for (const char* key : {"preprocessing", "postprocessing", "samples"}) {
    if (manifest.contains(key) && !manifest[key].is_object()) {
      fail(ErrorKind::kInvalidPackage,
           std::string(kManifest) + ": '" + key + "' must be an object");
    }
  }
  if (!files.contains(manifest["model"].get<std::string>())) {
    fail(ErrorKind::kInvalidPackage, std::string(kManifest) + ": the model " +
                                         manifest["model"].get<std::string>() +
                                         " is not listed in 'files'");
  }
  return manifest;
}

}  // namespace edgepack::detail
