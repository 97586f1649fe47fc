// Text generation from strings (docs/runtimes.md, "Text and chat"): a prompt, or chat messages
// through the package's chat template, -> onnxruntime-genai's tokenizer -> greedy decoding with
// the KV cache (generation.cpp) -> text pieces as tokens arrive, the loop of the Python and Node
// runtimes: each piece is the decoded text's new suffix, held back while it ends in an
// incomplete UTF-8 sequence (U+FFFD); generation ends before a stop string.
#include <algorithm>

#include "package_impl.hpp"
#include "text.hpp"

namespace edgepack {

using detail::fail;
using detail::Json;

namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

const detail::GenaiTokenizer& tokenizer(const Package::Impl& p) {
  if (!p.lm_tokenizer) {
    const Json& gen = p.manifest["generation"];
    const Json ctx = gen.value("context_length", Json());
    p.lm_tokenizer = std::make_shared<detail::GenaiTokenizer>(
        p.files, gen.value("tokenizer", "tokenizer.json"), ctx.is_number_integer() ? ctx.get<int64_t>() : 4096);
  }
  return *p.lm_tokenizer;
}

std::string chat_prompt(const Package::Impl& p, const std::vector<Message>& messages) {
  if (messages.empty())
    fail(ErrorKind::kInput, R"(a chat is a non-empty list of {"role": ..., "content": ...} messages)");
  const Json& gen = p.manifest["generation"];
  if (!gen.contains("chat_template") || !gen["chat_template"].is_string())
    fail(ErrorKind::kUnsupported,
         "this package has no chat template (generation.chat_template): give a plain prompt");
  const std::string path = gen["chat_template"].get<std::string>();
  const auto file = p.files.find(path);
  if (file == p.files.end())
    fail(ErrorKind::kInvalidPackage, "manifest.json: generation.chat_template " + path + " not found");
  Json list = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    detail::check_text(messages[i].content, "message " + std::to_string(i) + " content");
    list.push_back({{"role", messages[i].role}, {"content", messages[i].content}});
  }
  return tokenizer(p).apply_chat_template(file->second, list.dump());
}

// The first place a stop string starts in `text`, or npos.
size_t stop_at(const std::string& text, const std::vector<std::string>& stops) {
  size_t cut = std::string::npos;
  for (const auto& s : stops)
    if (!s.empty()) cut = std::min(cut, text.find(s));
  return cut;
}

Generation decode_text(const Package::Impl& p, std::vector<int64_t> prompt, const GenerateOptions& options,
               const std::function<void(const std::string&)>& on_text) {
  const Json& gen = p.manifest["generation"];
  const Json ctx = gen.value("context_length", Json());
  const int64_t context = ctx.is_number_integer() ? ctx.get<int64_t>() : 0;
  if (context > 0 && static_cast<int64_t>(prompt.size()) >= context) {
    fail(ErrorKind::kInput, "the prompt is " + with_commas(static_cast<int64_t>(prompt.size())) +
                                " tokens but the model's context is " + with_commas(context) +
                                " positions (prompt and generated tokens together): shorten the prompt");
  }
  std::set<int64_t> eos;
  for (const Json& id : gen.value("eos_token_ids", Json::array())) eos.insert(id.get<int64_t>());
  std::vector<std::string> stops = options.stop;
  for (const Json& s : gen.value("stop_strings", Json::array()))
    if (s.is_string()) stops.push_back(s.get<std::string>());
  const int max_new = options.max_new_tokens > 0
                          ? options.max_new_tokens
                          : gen.value("defaults", Json::object()).value("max_new_tokens", 64);
  Generation out;
  out.prompt_ids = prompt;
  std::string shown;  // the decoded text so far; out.text is what the pieces made
  auto emit = [&](const std::string& piece) {
    out.text += piece;
    if (on_text) on_text(piece);
  };
  const auto& tok = tokenizer(p);
  p.decode_greedy(prompt, max_new, eos, context, [&](int64_t token) {
    out.generated_ids.push_back(token);
    const std::string text = tok.decode(out.generated_ids);
    if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return true;
    const size_t cut = stop_at(text, stops);
    if (cut != std::string::npos) {
      if (cut > shown.size()) emit(text.substr(shown.size(), cut - shown.size()));
      return false;
    }
    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0)
      emit(text.substr(shown.size()));
    shown = text;
    return true;
  });
  return out;
}

}  // namespace

Generation Package::generate(const std::string& prompt, const GenerateOptions& options,
                             const std::function<void(const std::string&)>& on_text) const try {
  const Impl& p = *impl_;
  if (!is_language_model())
    fail(ErrorKind::kUnsupported, p.name + ": not a language-model package (no KV cache)");
  if (options.chat) return chat({{"user", prompt}}, options, on_text);
  detail::check_text(prompt, "prompt");
  return decode_text(p, tokenizer(p).encode(prompt, true), options, on_text);
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

Generation Package::chat(const std::vector<Message>& messages, const GenerateOptions& options,
                         const std::function<void(const std::string&)>& on_text) const try {
  const Impl& p = *impl_;
  if (!is_language_model())
    fail(ErrorKind::kUnsupported, p.name + ": not a language-model package (no KV cache)");
  const std::string text = chat_prompt(p, messages);
  return decode_text(p, tokenizer(p).encode(text, false), options, on_text);
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

}  // namespace edgepack
