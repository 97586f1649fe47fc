// edgepack C++ runtime: open a verified package folder and run it on onnxruntime.
//
//   auto pkg = edgepack::Package::open("digits");   // hashes every file before the model loads
//   auto pred = pkg.predict(edgepack::read_npy("digits/samples/raw.npy"));
//   std::cout << pred.labels[0] << "\n";
//
// The package format is docs/package-format.md (schema 1.x). Every failure is an
// edgepack::Error whose what() is one line naming the file and what is wrong.
//
// The runtime reads folders, not zips: extract a .edgepack with a reader that refuses duplicate,
// symlink and oversized members (`python -m edgepack_runtime PKG --extract-to DIR`, or
// edgepack_runtime.open_package(PKG).extract_to(DIR)), not with a plain unzip.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgepack {

constexpr int kSupportedMajor = 1;  // schema_version majors this runtime reads

// Caps on what a package can make the runtime read (docs/package-format.md, "What a reader
// refuses"); the same numbers as the Python and JS runtimes. Every file must also be exactly its
// manifest size.
constexpr uintmax_t kMaxManifestBytes = uintmax_t{16} << 20;  // manifest.json
constexpr uintmax_t kMaxFileBytes = uintmax_t{2} << 30;       // any listed file (protobuf's 2 GiB)
constexpr int kMaxJsonDepth = 64;                             // [ and { nesting in manifest.json
constexpr uintmax_t kMaxSignatureBytes = 1024;                // manifest.sig (64 bytes when valid)

enum class ErrorKind {
  kInvalidPackage,  // not a package, or the manifest is malformed
  kIntegrity,       // a file is missing, unlisted, or its size or sha256 differs
  kSignature,       // manifest.sig is missing or does not match the public key
  kSchemaVersion,   // schema_version has a major this runtime does not know
  kUnsupported,     // a valid package that needs something this runtime lacks
  kInput,           // the caller's input does not fit the model
  kSampleMismatch,  // the model does not reproduce the recorded samples
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Any numeric .npy array (float, int, uint, bool), widened to double. Row-major.
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> values;
};

// A float32 tensor as onnxruntime sees it. Row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// What predict returns: the raw outputs always; top-1 fields per row for a classifier; one
// vector per row for a feature extractor (postprocessing "embedding").
struct Prediction {
  std::map<std::string, Tensor> outputs;
  std::vector<std::string> labels;  // top-1 label per row (empty unless classification)
  std::vector<int64_t> indices;     // top-1 class index per row
  std::vector<float> scores;        // top-1 probability (or score if activation "none")
  std::vector<std::vector<float>> embeddings;  // per row (empty unless embedding)
};

// A chat message: role "system", "user" or "assistant", and its text (UTF-8).
struct Message {
  std::string role, content;
};

struct GenerateOptions {
  int max_new_tokens = 0;         // 0: the package's generation.defaults.max_new_tokens (or 64)
  std::vector<std::string> stop;  // generation ends before these, and the package's stop_strings
  bool chat = false;              // generate(prompt): the prompt is one user message of a chat
};

// What generate returns: the prompt's ids, the generated ids, the text (what the pieces made).
struct Generation {
  std::vector<int64_t> prompt_ids, generated_ids;
  std::string text;
};

// The result of replaying the recorded samples.
struct SampleCheck {
  int64_t count = 0;          // samples replayed
  double max_abs_diff = 0.0;  // over every recorded output
};

struct Options {
  std::string pubkey_pem;  // path to an ed25519 public key (PEM); empty: no signature check
  int threads = 0;         // onnxruntime intra-op threads; 0: onnxruntime's default
};

// Read a .npy file (little-endian, C order). Throws Error(kInput) if it cannot.
Array read_npy(const std::string& path);

class Package {
 public:
  // Verify and load a package folder (a safely extracted .edgepack), in this order: the
  // signature when options.pubkey_pem is set, manifest.json within the caps, schema_version
  // major, only regular files in the tree (a symlink, FIFO or device is refused, never followed
  // or opened), no unlisted file, every file's size and then its sha256 (each read to exactly
  // its manifest size), then the model session. Throws Error.
  static Package open(const std::string& folder, const Options& options = {});

  Package(Package&&) noexcept;
  Package& operator=(Package&&) noexcept;
  ~Package();

  const std::string& name() const;
  const std::string& version() const;
  const std::vector<std::string>& labels() const;

  // Raw app input -> model input, per the manifest's "preprocessing" block ("tensor" or "none").
  // NaN or infinity in raw (or in run's feeds) is Error(kInput) naming the input.
  Tensor preprocess(const Array& raw) const;
  // An image file (PNG or JPEG) -> the model input (1, ...), per an "image" preprocessing block:
  // decode, channel order, resize, centre crop, scale/mean/std, layout (docs/package-format.md).
  Array preprocess_image(const std::string& path) const;
  // preprocess_image + run + postprocess.
  Prediction predict_image(const std::string& path) const;
  // Run the model on float32 feeds by input name; every output by name.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& feeds) const;
  // preprocess + run + postprocess ("classification": softmax and top-1 per row).
  Prediction predict(const Array& raw) const;
  // Replay samples: raw -> preprocess must give the recorded inputs, and the recorded inputs
  // must give the recorded outputs within the manifest's atol/rtol. Throws kSampleMismatch.
  SampleCheck check_samples() const;

  // Softmax and top-1 per row of a classifier's output, the vectors of an embedding model
  // (no-op for postprocessing "none"). `feeds`: the attention_mask, for pooling outside the graph.
  Prediction postprocess(Prediction pred, const std::map<std::string, Array>& feeds = {}) const;

  // Text packages (preprocessing "text"; WordPiece tokenizers, the BERT family): UTF-8 strings
  // -> int64 feeds input_ids, attention_mask, token_type_ids, by the manifest's rule (special
  // tokens added; truncation to max_length keeps them; a batch pads to its longest text with
  // pad_id). Invalid UTF-8 and NUL are Error(kInput) naming the byte.
  std::map<std::string, Array> preprocess_text(const std::vector<std::string>& texts) const;
  // preprocess_text + run + postprocess: labels, or embeddings.
  Prediction predict_text(const std::vector<std::string>& texts) const;

  // Language-model packages (task text-generation, the manifest's "generation" block, schema
  // 1.2): true when the model is a decoder with a KV cache.
  bool is_language_model() const;
  // Greedy decoding with the KV cache: the prompt's token ids are run once (prefill), then one
  // step per new token on the cache the last step returned. Stops before an EOS id.
  // With stop_at_eos false it runs all max_new_tokens steps (as the recorded sample does).
  std::vector<int64_t> greedy(const std::vector<int64_t>& prompt, int max_new_tokens,
                              bool stop_at_eos = true) const;
  // Replay the recorded sample generation (samples/generation.json) token for token; returns
  // the number of tokens reproduced. Throws Error(kSampleMismatch) at the first difference.
  int64_t check_generation() const;

  // Text in, text out (onnxruntime-genai's tokenizer and chat templates): the greedy
  // continuation of `prompt` (with options.chat, the assistant's reply to it as one user
  // message, through the package's chat template), streamed to `on_text` piece by piece as the
  // tokens arrive. Ends at an EOS id, max_new_tokens, the context length, or before a stop
  // string (held back while a piece ends in an incomplete UTF-8 sequence).
  Generation generate(const std::string& prompt, const GenerateOptions& options = {},
                      const std::function<void(const std::string&)>& on_text = nullptr) const;
  // The assistant's reply to a chat (messages in order), through the package's chat template.
  Generation chat(const std::vector<Message>& messages, const GenerateOptions& options = {},
                  const std::function<void(const std::string&)>& on_text = nullptr) const;

  struct Impl;  // opaque: keeps onnxruntime and JSON headers out of apps' builds

 private:
  explicit Package(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgepack
