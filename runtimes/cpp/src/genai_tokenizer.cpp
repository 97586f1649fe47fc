// onnxruntime-genai's tokenizer on a package's verified tokenizer files. genai loads a tokenizer
// from a folder (tokenizer.json, tokenizer_config.json and a genai_config.json), so the verified
// bytes are written to a private temporary folder (mkdtemp, mode 0700), loaded, and the folder
// removed: what genai reads is what was hashed, never a file that could have changed since.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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
