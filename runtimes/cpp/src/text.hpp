// Text in (internal): the checks on a string every runtime makes, the BERT WordPiece tokenizer
// (wordpiece.cpp) and onnxruntime-genai's tokenizer for language models (genai_tokenizer.cpp).
// The rule is docs/runtimes.md's "Text and chat", the one the Python and Node runtimes apply.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "internal.hpp"

struct OgaTokenizer;

namespace edgepack::detail {

// `text` must be valid UTF-8 (Unicode's table 3-7: no overlong form, surrogate or value past
// U+10FFFF) without NUL: else Error(kInput) "WHERE: not valid UTF-8 at byte N: pass Unicode
// text" or "WHERE: contains NUL (U+0000) at byte N: remove it", the other runtimes' wording.
void check_text(const std::string& text, const std::string& where);

struct Encoding {
  std::vector<int64_t> ids, type_ids;
};

// Hugging Face tokenizers' BERT pipeline, from tokenizer.json: special tokens found whole in
// the text, BertNormalizer, BertPreTokenizer, WordPiece, and a TemplateProcessing or
// BertProcessing post-processor. Any other tokenizer.json is Error(kUnsupported).
class WordPiece {
 public:
  explicit WordPiece(const Json& tokenizer);
  ~WordPiece();
  // The text's ids with the template's special tokens; with max_length > 0 the text's own
  // tokens are cut from the end so that the whole fits (the special tokens stay).
  Encoding encode(const std::string& text, int64_t max_length) const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

// onnxruntime-genai's tokenizer (byte-level BPE, SentencePiece-style BPE, Unigram) on a
// package's verified tokenizer files, and its chat-template engine.
class GenaiTokenizer {
 public:
  GenaiTokenizer(const Files& files, const std::string& tokenizer_path, int64_t context_length);
  ~GenaiTokenizer();
  GenaiTokenizer(const GenaiTokenizer&) = delete;
  GenaiTokenizer& operator=(const GenaiTokenizer&) = delete;

  // add_special: the special tokens the tokenizer adds to a plain text (a BOS, say); a chat
  // prompt is encoded without them (its template writes them).
  std::vector<int64_t> encode(const std::string& text, bool add_special) const;
  // Special tokens skipped, as the other runtimes decode. A ByteLevel decoder (GPT-2's bytes as
  // characters: GPT-2, Qwen, Llama 3, SmolLM, tiny-lm) is applied here as Hugging Face
  // tokenizers applies it, each ill-formed byte run becoming one U+FFFD and the text going on
  // (genai's own decode drops what follows such bytes); other decoders are genai's.
  std::string decode(const std::vector<int64_t>& ids) const;
  // messages_json: [{"role", "content"}, ...]; the assistant's turn opened.
  std::string apply_chat_template(const std::string& template_text,
                                  const std::string& messages_json) const;

 private:
  OgaTokenizer* tok_ = nullptr;
  std::vector<std::string> bytes_;  // ByteLevel: each id's bytes ("" for a special token)
};

}  // namespace edgepack::detail
