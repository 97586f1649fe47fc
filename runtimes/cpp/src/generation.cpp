// Greedy decoding with a language model's KV cache (docs/package-format.md, "Language models"):
// the loop of the Python and JS runtimes. Inputs input_ids, attention_mask, position_ids (when
// the model takes them) and past_key_values.{i}.key/value; outputs logits and present.{i}.*.
#include <algorithm>
#include <set>

#include "package_impl.hpp"

namespace edgepack {

using detail::fail;
using detail::Json;

namespace {

const std::string kPast = "past_key_values.";
const std::string kPresent = "present.";

Ort::Value int64_tensor(const std::vector<int64_t>& values, const std::vector<int64_t>& shape) {
  Ort::AllocatorWithDefaultOptions alloc;
  Ort::Value v = Ort::Value::CreateTensor<int64_t>(alloc, shape.data(), shape.size());
  std::copy(values.begin(), values.end(), v.GetTensorMutableData<int64_t>());
  return v;
}

Ort::Value empty_cache(int64_t heads, int64_t dim) {
  Ort::AllocatorWithDefaultOptions alloc;
  const std::vector<int64_t> shape = {1, heads, 0, dim};
  return Ort::Value::CreateTensor<float>(alloc, shape.data(), shape.size());
}

// Argmax of the last position of logits (1, n, vocab); ties go to the lowest id (numpy's).
int64_t last_argmax(const Ort::Value& logits) {
  const auto info = logits.GetTensorTypeAndShapeInfo();
  const auto shape = info.GetShape();
  const int64_t vocab = shape.back();
  const float* data = logits.GetTensorData<float>() + (info.GetElementCount() - vocab);
  return std::max_element(data, data + vocab) - data;
}

}  // namespace

bool Package::is_language_model() const {
  const auto& names = impl_->input_names;
  return impl_->manifest.contains("generation") &&
         std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return n.rfind(kPast, 0) == 0; });
}

void Package::Impl::decode_greedy(const std::vector<int64_t>& prompt, int max_new_tokens,
                                  const std::set<int64_t>& stop, int64_t context,
                                  const std::function<bool(int64_t)>& on_token) const try {
  const Impl& p = *this;
  if (prompt.empty()) fail(ErrorKind::kInput, "the prompt has no tokens: give some text (or a BOS token)");
  const Json& gen = p.manifest["generation"];
  const Json& cache = detail::field(gen, "kv_cache", "generation.");
  const int64_t heads = cache.at("kv_heads").get<int64_t>(), dim = cache.at("head_dim").get<int64_t>();

  // The cache by input name; the first step starts from empty (length 0) caches.
  std::map<std::string, Ort::Value> past;
  for (const auto& n : p.input_names)
    if (n.rfind(kPast, 0) == 0) past.emplace(n, empty_cache(heads, dim));
  int64_t length = 0;
  auto step = [&](const std::vector<int64_t>& ids) {
    const int64_t n = static_cast<int64_t>(ids.size());
    std::vector<Ort::Value> inputs;
    for (const auto& name : p.input_names) {
      if (name == "input_ids") {
        inputs.push_back(int64_tensor(ids, {1, n}));
      } else if (name == "attention_mask") {
        inputs.push_back(int64_tensor(std::vector<int64_t>(length + n, 1), {1, length + n}));
      } else if (name == "position_ids") {
        std::vector<int64_t> pos(n);
        for (int64_t i = 0; i < n; ++i) pos[i] = length + i;
        inputs.push_back(int64_tensor(pos, {1, n}));
      } else {
        inputs.push_back(std::move(past.at(name)));
      }
    }
    std::vector<Ort::Value> outputs = p.run(inputs);
    int64_t token = -1;
    for (size_t i = 0; i < p.output_names.size(); ++i) {
      const std::string& out = p.output_names[i];
      if (out == "logits") token = last_argmax(outputs[i]);
      if (out.rfind(kPresent, 0) == 0) past.insert_or_assign(kPast + out.substr(kPresent.size()), std::move(outputs[i]));
    }
    length += n;
    return token;
  };
  int64_t token = step(prompt);
  for (int i = 0; i < max_new_tokens && !stop.count(token); ++i) {
    if (!on_token(token) || (context > 0 && length >= context)) return;
    if (i + 1 < max_new_tokens) token = step({token});
  }
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

std::vector<int64_t> Package::greedy(const std::vector<int64_t>& prompt, int max_new_tokens,
                                     bool stop_at_eos) const try {
  const Impl& p = *impl_;
  if (!is_language_model())
    fail(ErrorKind::kUnsupported, p.name + ": not a language-model package (no KV cache)");
  std::set<int64_t> stop;
  if (stop_at_eos)
    for (const auto& id : p.manifest["generation"].value("eos_token_ids", Json::array()))
      stop.insert(id.get<int64_t>());
  std::vector<int64_t> generated;
  p.decode_greedy(prompt, max_new_tokens, stop, 0, [&](int64_t t) {
    generated.push_back(t);
    return true;
  });
  return generated;
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

int64_t Package::check_generation() const try {
  const Impl& p = *impl_;
  const std::string path = detail::string_field(p.manifest["generation"], "sample", "generation.");
  const Json sample = detail::parse_json(p.files.at(path), path);
  const int max_new = sample.at("max_new_tokens").get<int>();
  const bool stops = sample.value("stops_at_eos", true);
  const auto& prompts = sample.at("prompt_ids");
  const auto& recorded = sample.at("generated_ids");
  int64_t tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto got = greedy(prompts[i].get<std::vector<int64_t>>(), max_new, stops);
    const auto want = recorded[i].get<std::vector<int64_t>>();
    if (got != want) {
      size_t at = 0;
      while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
      fail(ErrorKind::kSampleMismatch, "generation sample " + std::to_string(i) +
                                           ": greedy decoding differs from the recorded tokens at "
                                           "position " + std::to_string(at));
    }
    tokens += static_cast<int64_t>(got.size());
  }
  return tokens;
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

}  // namespace edgepack
