// Helpers shared by the library's .cpp files; not part of the public API.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
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

// The whole file; Error(kind) naming `label` if it cannot be read.
std::string read_file(const std::filesystem::path& path, const std::string& label,
                      ErrorKind kind = ErrorKind::kIntegrity);

// manifest.sig must be the ed25519 signature of these exact manifest bytes under the PEM key.
void verify_signature(const std::filesystem::path& root, const std::string& manifest_bytes,
                      const std::string& pubkey_pem);

// Parse manifest.json, refuse an unknown schema major, check the fields the runtime reads.
Json parse_manifest(const std::string& bytes);

// Every listed file must exist with its size and sha256, and every file in the folder must be
// listed (except manifest.json/manifest.sig). Returns the contents of the files in `keep`.
Files verify_files(const std::filesystem::path& root, const Json& manifest,
                   const std::set<std::string>& keep);

// A .npy held in memory; `where` names it in errors.
Array parse_npy(const std::string& bytes, const std::string& where);

// Field access that names the field on error ("manifest.json: field 'samples.atol' must be ...").
const Json& field(const Json& obj, const std::string& key, const std::string& where);
std::string string_field(const Json& obj, const std::string& key, const std::string& where);
double number_field(const Json& obj, const std::string& key, const std::string& where,
                    const double* fallback = nullptr);

}  // namespace edgepack::detail
