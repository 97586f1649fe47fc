// Text packages (preprocessing "text", postprocessing "embedding"): strings -> token ids by the
// manifest's rule (docs/runtimes.md, "Text and chat"), the model, then labels or vectors.
#include <cmath>

#include "package_impl.hpp"
#include "text.hpp"

namespace edgepack {

using detail::fail;
using detail::Json;

namespace detail {

void check_text(const std::string& text, const std::string& where) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {  // Unicode's table 3-7 of well-formed UTF-8
    const unsigned char c = b[i];
    size_t more = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      more = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
    } else {
      more = SIZE_MAX;
    }
    bool ok = more != SIZE_MAX;
    for (size_t k = 1; ok && k <= more; ++k) {
      const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xbf;
      ok = i + k < n && b[i + k] >= min && b[i + k] <= max;
    }
    if (!ok) {
      fail(ErrorKind::kInput,
           where + ": not valid UTF-8 at byte " + std::to_string(i) + ": pass Unicode text");
    }
    i += more + 1;
  }
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    fail(ErrorKind::kInput,
         where + ": contains NUL (U+0000) at byte " + std::to_string(nul) + ": remove it");
  }
}

void read_text_spec(Package::Impl& p, const Json& spec) {
  static const std::set<std::string> kFeeds = {"input_ids", "attention_mask", "token_type_ids"};
  for (const auto& name : p.input_names) {
    if (!kFeeds.count(name))
      fail(ErrorKind::kUnsupported, "text preprocessing cannot feed model input '" + name + "'");
  }
  const std::string path = spec.value("tokenizer", "tokenizer.json");
  const auto file = p.files.find(path);
  if (file == p.files.end())
    fail(ErrorKind::kInvalidPackage, "manifest.json: preprocessing.tokenizer '" + path + "' not found");
  const Json tok = parse_json(file->second, path);
  // A fixed sequence length in the model's inputs wins over max_length, as in every runtime.
  for (const Json& in : p.manifest["inputs"]) {
    const Json shape = in.value("shape", Json::array());
    if (shape.size() > 1 && shape[1].is_number_integer()) p.fixed_length = shape[1].get<int64_t>();
  }
  p.max_length = p.fixed_length ? p.fixed_length : spec.value("max_length", int64_t{128});
  p.truncation = spec.value("truncation", true);
  const Json baked = tok.value("padding", Json::object());
  p.pad_id = spec.contains("pad_id")                           ? spec["pad_id"].get<int64_t>()
             : baked.is_object() && baked.contains("pad_id") ? baked["pad_id"].get<int64_t>()
                                                               : 0;
  try {
    p.wordpiece = std::make_shared<WordPiece>(tok);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    p.text_unsupported = e.what();  // the package opens; preprocess_text says why it cannot
  }
}

void read_embedding_spec(Package::Impl& p, const Json& spec) {
  p.post_output = spec.contains("output") ? string_field(spec, "output", "postprocessing.")
                                          : p.output_names[0];
  if (std::find(p.output_names.begin(), p.output_names.end(), p.post_output) == p.output_names.end())
    fail(ErrorKind::kInvalidPackage,
         "manifest.json: postprocessing.output '" + p.post_output + "' is not a model output");
  p.in_graph = spec.value("in_graph", true);
  p.normalize = spec.value("normalize", false);
  p.pooling = spec.contains("pooling") && spec["pooling"].is_string() ? spec["pooling"].get<std::string>() : "none";
  if (p.pooling != "mean" && p.pooling != "cls" && p.pooling != "none")
    fail(ErrorKind::kUnsupported,
         "postprocessing.pooling '" + p.pooling + "' is not supported (supported: mean, cls)");
}

void embeddings(const Package::Impl& p, Prediction& pred, const std::map<std::string, Array>& feeds) {
  const Tensor& out = pred.outputs.at(p.post_output);
  const auto dim = static_cast<size_t>(out.shape.back());
  if (p.in_graph || p.pooling == "none") {
    for (size_t r = 0; dim > 0 && r < out.data.size() / dim; ++r)
      pred.embeddings.emplace_back(out.data.begin() + r * dim, out.data.begin() + (r + 1) * dim);
    return;
  }
  const auto mask = feeds.find("attention_mask");
  if (p.pooling == "mean" && mask == feeds.end())
    fail(ErrorKind::kUnsupported, "mean pooling needs the attention_mask feed");
  const auto batch = static_cast<size_t>(out.shape[0]), tokens = static_cast<size_t>(out.shape[1]);
  for (size_t b = 0; b < batch; ++b) {
    std::vector<double> row(dim, 0.0);
    double weight = 0.0;
    for (size_t t = 0; t < (p.pooling == "cls" ? 1 : tokens); ++t) {
      const double m = p.pooling == "cls" ? 1.0 : mask->second.values[b * tokens + t];
      weight += m;
      for (size_t d = 0; d < dim; ++d) row[d] += m * out.data[(b * tokens + t) * dim + d];
    }
    double norm = 0.0;
    for (double& v : row) v /= std::max(weight, 1e-9), norm += v * v;
    norm = p.normalize ? std::max(std::sqrt(norm), 1e-12) : 1.0;
    std::vector<float> vec;
    for (double v : row) vec.push_back(static_cast<float>(v / norm));
    pred.embeddings.push_back(std::move(vec));
  }
}

}  // namespace detail

std::map<std::string, Array> Package::preprocess_text(const std::vector<std::string>& texts) const {
  const Impl& p = *impl_;
  if (p.pre_type != "text")
    fail(ErrorKind::kUnsupported, p.name + ": not a text package (preprocessing " + p.pre_type + ")");
  if (!p.wordpiece) fail(ErrorKind::kUnsupported, p.text_unsupported);
  if (texts.empty()) fail(ErrorKind::kInput, "input must be a non-empty list of strings");
  std::vector<detail::Encoding> rows;
  size_t longest = p.fixed_length > 0 ? static_cast<size_t>(p.fixed_length) : 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    detail::check_text(texts[i], texts.size() == 1 ? "text" : "text " + std::to_string(i));
    rows.push_back(p.wordpiece->encode(texts[i], p.truncation ? p.max_length : 0));
    longest = std::max(longest, rows.back().ids.size());
  }
  std::map<std::string, Array> feeds;
  const std::vector<int64_t> shape = {static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)};
  for (const auto& name : p.input_names) feeds[name] = Array{shape, {}};
  for (const auto& e : rows) {
    for (size_t t = 0; t < longest; ++t) {  // padded on the right: pad_id, mask 0, type 0
      const bool real = t < e.ids.size();
      for (auto& [name, array] : feeds) {
        const double v = name == "input_ids"        ? (real ? e.ids[t] : p.pad_id)
                         : name == "attention_mask" ? (real ? 1 : 0)
                                                    : (real ? e.type_ids[t] : 0);
        array.values.push_back(v);
      }
    }
  }
  return feeds;
}

Prediction Package::predict_text(const std::vector<std::string>& texts) const {
  const Impl& p = *impl_;
  const auto feeds = preprocess_text(texts);
  std::vector<Ort::Value> inputs;
  for (size_t i = 0; i < p.input_names.size(); ++i) inputs.push_back(p.to_value(i, feeds.at(p.input_names[i])));
  const std::vector<Ort::Value> outputs = p.run(inputs);
  Prediction pred;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Array a = detail::to_array(outputs[i], p.output_names[i]);
    pred.outputs[p.output_names[i]] = Tensor{a.shape, {a.values.begin(), a.values.end()}};
  }
  return postprocess(std::move(pred), feeds);
}

}  // namespace edgepack
