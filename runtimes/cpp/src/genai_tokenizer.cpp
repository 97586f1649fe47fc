// onnxruntime-genai's tokenizer on a package's verified tokenizer files. genai loads a tokenizer
// from a folder (tokenizer.json, tokenizer_config.json and a genai_config.json), so the verified
// bytes are written to a private temporary folder (mkdtemp, mode 0700), loaded, and the folder
// removed: what genai reads is what was hashed, never a file that could have changed since.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "oga.h"
#include "text.hpp"

namespace fs = std::filesystem;

namespace edgepack::detail {

namespace {

// An OgaResult as Error(kind) with genai's message (null: success).
void check(OgaResult* result, ErrorKind kind, const std::string& what) {
  if (result == nullptr) return;
  std::string message = OgaResultGetError(result);
  OgaDestroyResult(result);
  for (char& c : message)
    if (c == '\n') c = ' ';
  fail(kind, what + ": " + message);
}

std::string owned(const char* text) {
  std::string out = text ? text : "";
  OgaDestroyString(text);
  return out;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string name = (fs::temp_directory_path() / "edgepack-tokenizer-XXXXXX").string();
    if (mkdtemp(name.data()) == nullptr)
      fail(ErrorKind::kUnsupported, "cannot make a temporary folder for the tokenizer");
    path = name;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path / name, std::ios::binary);
    out << bytes;
    if (!out) fail(ErrorKind::kUnsupported, "cannot write " + (path / name).string());
  }
};

// GPT-2's table: the printable bytes stand for themselves, the others for U+0100 onwards.
std::map<char32_t, unsigned char> byte_level_table() {
  std::map<char32_t, unsigned char> table;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    table[printable ? static_cast<char32_t>(b) : next++] = static_cast<unsigned char>(b);
  }
  return table;
}

// A token's bytes under the ByteLevel decoder: its characters through the table, or (one of
// them missing) the token's own UTF-8, as tokenizers does.
std::string token_bytes(const std::string& token, const std::map<char32_t, unsigned char>& table) {
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const auto b = static_cast<unsigned char>(token[i]);
    const int n = b < 0x80 ? 0 : b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
    char32_t c = n == 0 ? b : n == 1 ? (b & 0x1f) : n == 2 ? (b & 0x0f) : (b & 0x07);
    for (int k = 1; k <= n && i + k < token.size(); ++k)
      c = (c << 6) | (static_cast<unsigned char>(token[i + k]) & 0x3f);
    const auto it = table.find(c);
    if (it == table.end()) return token;
    out += static_cast<char>(it->second);
    i += n + 1;
  }
  return out;
}

// UTF-8 with each maximal ill-formed subpart replaced by U+FFFD (Rust's from_utf8_lossy).
std::string lossy_utf8(const std::string& bytes) {
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = b[i];
    size_t more = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) more = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) more = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else if (c >= 0x80) more = SIZE_MAX;
    size_t ok = 0;  // continuation bytes that fit
    while (more != SIZE_MAX && ok < more && i + 1 + ok < bytes.size()) {
      const unsigned char d = b[i + 1 + ok];
      if (d < (ok == 0 ? lo : 0x80) || d > (ok == 0 ? hi : 0xbf)) break;
      ++ok;
    }
    if (more != SIZE_MAX && ok == more) {
      out.append(bytes, i, more + 1);
      i += more + 1;
    } else {
      out += "\xEF\xBF\xBD";
      i += more == SIZE_MAX ? 1 : ok + 1;
    }
  }
  return out;
}

}  // namespace

GenaiTokenizer::GenaiTokenizer(const Files& files, const std::string& tokenizer_path,
                               int64_t context_length) {
  const auto tok = files.find(tokenizer_path);
  if (tok == files.end())
    fail(ErrorKind::kInvalidPackage, "manifest.json: generation.tokenizer '" + tokenizer_path + "' not found");
  TempDir dir;
  dir.write("tokenizer.json", tok->second);
  const auto config = files.find("tokenizer_config.json");
  dir.write("tokenizer_config.json", config != files.end()
                                         ? config->second
                                         : R"({"tokenizer_class": "PreTrainedTokenizerFast"})");
  // genai reads its own config first; only the context length matters to a tokenizer.
  const Json genai = {{"model", {{"type", "llama"}, {"context_length", std::max<int64_t>(context_length, 1)}}}};
  dir.write("genai_config.json", genai.dump());
  check(OgaCreateTokenizerFromPath(dir.path.string().c_str(), &tok_), ErrorKind::kUnsupported,
        tokenizer_path + ": onnxruntime-genai cannot load the tokenizer");
  const Json json = parse_json(tok->second, tokenizer_path);
  const Json decoder = json.value("decoder", Json());
  if (!decoder.is_object() || decoder.value("type", "") != "ByteLevel") return;
  const auto table = byte_level_table();
  for (const auto& [token, id] : json.at("model").at("vocab").items()) {
    const auto i = id.get<size_t>();
    if (bytes_.size() <= i) bytes_.resize(i + 1);
    bytes_[i] = token_bytes(token, table);
  }
  for (const Json& added : json.value("added_tokens", Json::array())) {
    const auto i = added.at("id").get<size_t>();
    if (bytes_.size() <= i) bytes_.resize(i + 1);
    bytes_[i] = added.value("special", false) ? "" : token_bytes(added.at("content").get<std::string>(), table);
  }
}

GenaiTokenizer::~GenaiTokenizer() {
  if (tok_) OgaDestroyTokenizer(tok_);
}

std::vector<int64_t> GenaiTokenizer::encode(const std::string& text, bool add_special) const {
  const char* keys[] = {"add_special_tokens"};
  const char* values[] = {add_special ? "true" : "false"};
  check(OgaUpdateTokenizerOptions(tok_, keys, values, 1), ErrorKind::kUnsupported, "tokenizer");
  OgaSequences* seqs = nullptr;
  check(OgaCreateSequences(&seqs), ErrorKind::kUnsupported, "tokenizer");
  std::unique_ptr<OgaSequences, void (*)(OgaSequences*)> hold(seqs, OgaDestroySequences);
  check(OgaTokenizerEncode(tok_, text.c_str(), seqs), ErrorKind::kInput, "tokenizer");
  const size_t n = OgaSequencesGetSequenceCount(seqs, 0);
  const int32_t* data = OgaSequencesGetSequenceData(seqs, 0);
  return std::vector<int64_t>(data, data + n);
}

std::string GenaiTokenizer::decode(const std::vector<int64_t>& ids) const {
  if (!bytes_.empty()) {
    std::string raw;
    for (int64_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= bytes_.size())
        fail(ErrorKind::kInput, "token id " + std::to_string(id) + " is not in the vocabulary");
      raw += bytes_[static_cast<size_t>(id)];
    }
    return lossy_utf8(raw);
  }
  const std::vector<int32_t> narrow(ids.begin(), ids.end());
  const char* out = nullptr;
  check(OgaTokenizerDecode(tok_, narrow.data(), narrow.size(), &out), ErrorKind::kInput, "tokenizer");
  return owned(out);
}

std::string GenaiTokenizer::apply_chat_template(const std::string& template_text,
                                                const std::string& messages_json) const {
  const char* out = nullptr;
  check(OgaTokenizerApplyChatTemplate(tok_, template_text.c_str(), messages_json.c_str(), nullptr,
                                      true, &out),
        ErrorKind::kInput, "chat template");
  return owned(out);
}

}  // namespace edgepack::detail
