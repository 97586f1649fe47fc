// Package: open (verify, then load), preprocess, run and predict on onnxruntime's C++ API.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>

#include "package_impl.hpp"

namespace fs = std::filesystem;

namespace edgepack {

using detail::fail;
using detail::Json;

namespace {

Ort::Env& ort_env() {
  // One environment per process, created on first use: onnxruntime allows only one.
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "edgepack");
  return env;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::vector<std::string> referenced_files(const Json& manifest) {
  std::vector<std::string> paths = {manifest["model"].get<std::string>()};
  const Json samples = manifest.value("samples", Json::object());
  if (samples.contains("raw")) paths.push_back(detail::string_field(samples, "raw", "samples."));
  if (samples.contains("images")) {  // image packages: the raw image files
    const Json& images = samples["images"];
    if (!images.is_array())
      fail(ErrorKind::kInvalidPackage, "manifest.json: samples.images must be a list of paths");
    for (const Json& path : images) {
      if (!path.is_string())
        fail(ErrorKind::kInvalidPackage, "manifest.json: samples.images must be a list of paths");
      paths.push_back(path.get<std::string>());
    }
  }
  for (const char* key : {"inputs", "outputs"}) {
    const Json mapping = samples.value(key, Json::object());
    for (const auto& [name, path] : mapping.items()) {
      paths.push_back(detail::string_field(mapping, name, std::string("samples.") + key + "."));
    }
  }
  // A language model's recorded generation (schema 1.2), replayed by check_generation; its
  // tokenizer and chat template, and a text package's tokenizer (text.cpp, lm_text.cpp).
  const Json generation = manifest.value("generation", Json::object());
  for (const char* key : {"sample", "tokenizer", "chat_template"})
    if (generation.contains(key)) paths.push_back(detail::string_field(generation, key, "generation."));
  const Json pre = manifest.value("preprocessing", Json::object());
  if (pre.is_object() && pre.contains("tokenizer"))
    paths.push_back(detail::string_field(pre, "tokenizer", "preprocessing."));
  if (manifest["files"].contains("tokenizer_config.json")) paths.push_back("tokenizer_config.json");
  for (const std::string& path : paths) {
    if (!manifest["files"].contains(path)) {
      fail(ErrorKind::kInvalidPackage,
           "manifest.json: " + path + " is referenced but not listed in 'files'");
    }
  }
  return paths;
}

std::vector<std::string> read_labels(const Json& manifest) {
  const Json post = manifest.value("postprocessing", Json::object());
  const Json labels =
      post.contains("labels") ? post["labels"] : manifest.value("labels", Json::array());
  if (!labels.is_array() ||
      !std::all_of(labels.begin(), labels.end(), [](const Json& l) { return l.is_string(); })) {
    fail(ErrorKind::kInvalidPackage, "manifest.json: labels must be a list of strings");
  }
  return labels.get<std::vector<std::string>>();
}

void read_preprocessing(Package::Impl& p) {
  const Json spec = p.manifest.value("preprocessing", Json{{"type", "none"}});
  p.pre_type = detail::string_field(spec, "type", "preprocessing.");
  if (spec.contains("input")) {
    p.pre_input = detail::string_field(spec, "input", "preprocessing.");
    if (std::find(p.input_names.begin(), p.input_names.end(), p.pre_input) == p.input_names.end()) {
      fail(ErrorKind::kInvalidPackage,
           "manifest.json: preprocessing.input '" + p.pre_input + "' is not a model input");
    }
  } else if (p.input_names.size() == 1) {
    p.pre_input = p.input_names[0];
  }
  if (p.pre_type == "image") {
    p.image = detail::read_image_spec(spec);
    return;
  }
  if (p.pre_type == "text") {
    detail::read_text_spec(p, spec);
    return;
  }
  if (p.pre_type != "tensor") return;
  if (spec.value("dtype", "float32") != "float32") {
    fail(ErrorKind::kUnsupported, "preprocessing.dtype " + spec["dtype"].dump() +
                                      " is not supported by the C++ runtime (float32 only)");
  }
  const Json& shape = detail::field(spec, "sample_shape", "preprocessing.");
  if (!shape.is_array() || shape.empty() ||
      !std::all_of(shape.begin(), shape.end(),
                   [](const Json& d) { return d.is_number_integer() && d.get<int64_t>() > 0; })) {
    fail(ErrorKind::kInvalidPackage,
         "manifest.json: preprocessing.sample_shape must be a list of positive integers");
  }
  p.sample_shape = shape.get<std::vector<int64_t>>();
  int64_t values = 1;  // the product must not wrap (a wrapped 0 divides by zero later)
  for (int64_t d : p.sample_shape) {
    if (d > (int64_t{1} << 40) / values) {
      fail(ErrorKind::kInvalidPackage,
           "manifest.json: preprocessing.sample_shape holds more than 2^40 values a sample");
    }
    values *= d;
  }
  const double one = 1.0, zero = 0.0;
  p.scale = detail::number_field(spec, "scale", "preprocessing.", &one);
  p.offset = detail::number_field(spec, "offset", "preprocessing.", &zero);
  p.mean = detail::number_field(spec, "mean", "preprocessing.", &zero);
  p.stdev = detail::number_field(spec, "std", "preprocessing.", &one);
  if (p.stdev == 0.0)
    fail(ErrorKind::kInvalidPackage, "manifest.json: preprocessing.std must not be 0");
}

void read_postprocessing(Package::Impl& p) {
  const Json spec = p.manifest.value("postprocessing", Json{{"type", "none"}});
  p.post_type = detail::string_field(spec, "type", "postprocessing.");
  if (p.post_type == "none") return;
  if (p.post_type == "embedding") {
    detail::read_embedding_spec(p, spec);
    return;
  }
  if (p.post_type != "classification") {
    fail(ErrorKind::kUnsupported,
         "postprocessing type '" + p.post_type +
             "' is not supported (supported: classification, embedding, none)");
  }
  p.post_output = spec.contains("output") ? detail::string_field(spec, "output", "postprocessing.")
                                          : p.output_names[0];
  if (std::find(p.output_names.begin(), p.output_names.end(), p.post_output) ==
      p.output_names.end()) {
    fail(ErrorKind::kInvalidPackage,
         "manifest.json: postprocessing.output '" + p.post_output + "' is not a model output");
  }
  const std::string activation = spec.value("activation", "softmax");
  if (activation != "softmax" && activation != "none") {
    fail(ErrorKind::kUnsupported, "postprocessing.activation '" + activation +
                                      "' is not supported (supported: softmax, none)");
  }
  p.softmax = activation == "softmax";
  // A static class count in the manifest must match the labels (a dynamic one is checked later).
  for (const Json& out : p.manifest["outputs"]) {
    const Json shape = out.value("shape", Json::array());
    if (out["name"] == p.post_output && !p.labels.empty() && !shape.empty() &&
        shape.back().is_number_integer() && shape.back().get<size_t>() != p.labels.size()) {
      fail(ErrorKind::kInvalidPackage, "manifest.json: " + std::to_string(p.labels.size()) +
                                           " labels for " + shape.back().dump() +
                                           " classes in output '" + p.post_output + "'");
    }
  }
}

void load_session(Package::Impl& p, const std::string& model_path, const std::string& model,
                  int threads) {
  Ort::SessionOptions options;
  if (threads > 0) options.SetIntraOpNumThreads(threads);
  if (model_path.size() > 4 && model_path.compare(model_path.size() - 4, 4, ".ort") == 0) {
    options.AddConfigEntry("session.load_model_format", "ORT");
  }
  try {
    p.session = Ort::Session(ort_env(), model.data(), model.size(), options);
  } catch (const Ort::Exception& e) {
    fail(ErrorKind::kUnsupported,
         model_path + ": onnxruntime cannot load the model: " + one_line(e.what()));
  }
  Ort::AllocatorWithDefaultOptions alloc;
  for (size_t i = 0; i < p.session.GetInputCount(); ++i) {
    p.input_names.push_back(p.session.GetInputNameAllocated(i, alloc).get());
    p.input_types.push_back(
        p.session.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetElementType());
  }
  for (size_t i = 0; i < p.session.GetOutputCount(); ++i) {
    p.output_names.push_back(p.session.GetOutputNameAllocated(i, alloc).get());
  }
  // Apps and samples address tensors by the manifest's names: they must be the model's.
  for (const auto& [key, actual] :
       {std::pair{"inputs", p.input_names}, std::pair{"outputs", p.output_names}}) {
    std::vector<std::string> declared;
    for (const Json& spec : p.manifest[key]) declared.push_back(spec["name"].get<std::string>());
    std::vector<std::string> sorted = actual;
    std::sort(declared.begin(), declared.end());
    std::sort(sorted.begin(), sorted.end());
    if (declared != sorted) {
      auto list = [](const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
        return "[" + out + "]";
      };
      fail(ErrorKind::kInvalidPackage, std::string("manifest.json: ") + key + " " + list(declared) +
                                           " do not match " + model_path + "'s " + list(sorted));
    }
  }
}

// NaN or infinity in an input is the caller's error: a model answers it with a label that means
// nothing, so refuse it naming the input.
template <typename T>
void check_finite(const std::string& name, const std::vector<T>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      char value[32];
      std::snprintf(value, sizeof value, "%g", static_cast<double>(values[i]));
      fail(ErrorKind::kInput, "input '" + name + "': contains NaN or infinity (" + value +
                                  " at flat index " + std::to_string(i) + "): pass finite numbers");
    }
  }
}

std::string read_manifest(const fs::path& root, const std::string& folder) {
  const std::optional<uintmax_t> size = detail::regular_size(root, detail::kManifest);
  if (!size) fail(ErrorKind::kInvalidPackage, folder + ": no manifest.json at the package root");
  if (*size > kMaxManifestBytes) {
    fail(ErrorKind::kInvalidPackage, std::string(detail::kManifest) + ": " + std::to_string(*size) +
                                         " bytes, larger than the " +
                                         std::to_string(kMaxManifestBytes >> 20) +
                                         " MiB cap for a manifest (a manifest is a few KB)");
  }
  return detail::read_member(root, detail::kManifest, *size, true).bytes;
}

Tensor to_tensor(const Ort::Value& value, const std::string& name) {
  Array array = detail::to_array(value, name);
  return Tensor{array.shape, std::vector<float>(array.values.begin(), array.values.end())};
}

}  // namespace

Package Package::open(const std::string& folder, const Options& options) try {
  const fs::path root(folder);
  if (!fs::is_directory(root)) {
    fail(ErrorKind::kInvalidPackage,
         folder + (fs::exists(root) ? ": not a folder (the C++ runtime reads folders: extract the "
                                      ".edgepack with python -m edgepack_runtime PKG --extract-to "
                                      "DIR, which refuses unsafe members)"
                                    : ": no such folder"));
  }
  auto p = std::make_unique<Impl>();
  const std::string manifest_bytes = read_manifest(root, folder);
  // The signature covers the exact manifest bytes: check it before trusting anything they say.
  if (!options.pubkey_pem.empty())
    detail::verify_signature(root, manifest_bytes, options.pubkey_pem);
  p->manifest = detail::parse_manifest(manifest_bytes);
  const std::vector<std::string> referenced = referenced_files(p->manifest);
  p->files = detail::verify_files(root, p->manifest, {referenced.begin(), referenced.end()});
  p->name = p->manifest["name"].get<std::string>();
  p->version = p->manifest["version"].get<std::string>();
  p->labels = read_labels(p->manifest);
  const std::string model_path = p->manifest["model"].get<std::string>();
  const std::string model = std::move(p->files.at(model_path));
  p->files.erase(model_path);
  load_session(*p, model_path, model, options.threads);
  read_preprocessing(*p);
  read_postprocessing(*p);
  return Package(std::move(p));
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

Package::Package(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Package::Package(Package&&) noexcept = default;
Package& Package::operator=(Package&&) noexcept = default;
Package::~Package() = default;

const std::string& Package::name() const { return impl_->name; }
const std::string& Package::version() const { return impl_->version; }
const std::vector<std::string>& Package::labels() const { return impl_->labels; }

Tensor Package::preprocess(const Array& raw) const {
  const Impl& p = *impl_;
  check_finite(p.pre_input.empty() ? std::string("raw") : p.pre_input, raw.values);
  if (p.pre_type == "none")
    return Tensor{raw.shape, std::vector<float>(raw.values.begin(), raw.values.end())};
  if (p.pre_type != "tensor") {
    fail(ErrorKind::kUnsupported, "preprocessing type '" + p.pre_type +
                                      "' is not supported by the C++ runtime (supported: tensor, "
                                      "none); pass model inputs to run()");
  }
  const int64_t per_sample = std::accumulate(p.sample_shape.begin(), p.sample_shape.end(),
                                             int64_t{1}, std::multiplies<>());
  const auto n = static_cast<int64_t>(raw.values.size());
  if (n == 0 || n % per_sample != 0) {
    fail(ErrorKind::kInput, "input has " + std::to_string(n) +
                                " values, not a whole number of samples of " +
                                std::to_string(per_sample));
  }
  Tensor x{{n / per_sample}, std::vector<float>(raw.values.size())};
  x.shape.insert(x.shape.end(), p.sample_shape.begin(), p.sample_shape.end());
  // double arithmetic and one cast at the end, as the Python runtime does: the same numbers.
  for (size_t i = 0; i < raw.values.size(); ++i) {
    x.data[i] = static_cast<float>((raw.values[i] * p.scale + p.offset - p.mean) / p.stdev);
  }
  return x;
}

std::map<std::string, Tensor> Package::run(const std::map<std::string, Tensor>& feeds) const {
  const Impl& p = *impl_;
  std::vector<Ort::Value> inputs;
  for (size_t i = 0; i < p.input_names.size(); ++i) {
    const auto it = feeds.find(p.input_names[i]);
    if (it == feeds.end())
      fail(ErrorKind::kInput, "missing feed for model input '" + p.input_names[i] + "'");
    check_finite(p.input_names[i], it->second.data);
    inputs.push_back(
        p.to_value(i, Array{it->second.shape, {it->second.data.begin(), it->second.data.end()}}));
  }
  if (feeds.size() != p.input_names.size())
    fail(ErrorKind::kInput, "feeds name tensors that are not model inputs");
  const std::vector<Ort::Value> outputs = p.run(inputs);
  std::map<std::string, Tensor> named;
  for (size_t i = 0; i < outputs.size(); ++i)
    named[p.output_names[i]] = to_tensor(outputs[i], p.output_names[i]);
  return named;
}

Prediction Package::predict(const Array& raw) const {
  const Impl& p = *impl_;
  if (p.pre_input.empty())
    fail(ErrorKind::kInput, "the model has several inputs: use run() with named feeds");
  Prediction pred;
  pred.outputs = run({{p.pre_input, preprocess(raw)}});
  return postprocess(std::move(pred));
}

Prediction Package::predict_image(const std::string& path) const {
  const Impl& p = *impl_;
  const Array x = preprocess_image(path);
  std::vector<Ort::Value> inputs;
  if (p.input_names.size() != 1) fail(ErrorKind::kInput, "the model has several inputs");
  inputs.push_back(p.to_value(0, x));
  const std::vector<Ort::Value> outputs = p.run(inputs);
  Prediction pred;
  for (size_t i = 0; i < outputs.size(); ++i)
    pred.outputs[p.output_names[i]] = to_tensor(outputs[i], p.output_names[i]);
  return postprocess(std::move(pred));
}

Prediction Package::postprocess(Prediction pred, const std::map<std::string, Array>& feeds) const {
  const Impl& p = *impl_;
  if (p.post_type == "embedding") {
    detail::embeddings(p, pred, feeds);
    return pred;
  }
  if (p.post_type != "classification") return pred;
  const Tensor& scores = pred.outputs.at(p.post_output);
  if (scores.shape.empty() || scores.shape.size() > 2) {
    fail(ErrorKind::kUnsupported,
         "classification expects output '" + p.post_output + "' shaped (batch, classes)");
  }
  const auto classes = static_cast<size_t>(scores.shape.back());
  if (!p.labels.empty() && p.labels.size() != classes) {
    fail(ErrorKind::kInvalidPackage, "manifest.json: " + std::to_string(p.labels.size()) +
                                         " labels for " + std::to_string(classes) + " classes");
  }
  for (size_t row = 0; classes > 0 && row < scores.data.size() / classes; ++row) {
    const float* z = scores.data.data() + row * classes;
    const size_t top = static_cast<size_t>(std::max_element(z, z + classes) - z);
    double score = z[top];
    if (p.softmax) {  // shifted by the row max so exp never overflows
      double sum = 0.0;
      for (size_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c]) - z[top]);
      score = 1.0 / sum;
    }
    pred.indices.push_back(static_cast<int64_t>(top));
    pred.labels.push_back(p.labels.empty() ? std::to_string(top) : p.labels[top]);
    pred.scores.push_back(static_cast<float>(score));
  }
  return pred;
}

}  // namespace edgepack
