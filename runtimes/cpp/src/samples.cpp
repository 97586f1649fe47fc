// Tensors in and out of onnxruntime, and the replay of the package's recorded samples.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "package_impl.hpp"

namespace edgepack {

using detail::fail;
using detail::Json;

namespace {

template <typename T>
Ort::Value make_value(const Array& array) {
  Ort::AllocatorWithDefaultOptions alloc;
  Ort::Value value = Ort::Value::CreateTensor<T>(alloc, array.shape.data(), array.shape.size());
  T* out = value.GetTensorMutableData<T>();
  for (size_t i = 0; i < array.values.size(); ++i) out[i] = static_cast<T>(array.values[i]);
  return value;
}

template <typename T>
void widen(const Ort::Value& value, size_t count, std::vector<double>& out) {
  const T* data = value.GetTensorData<T>();
  out.assign(data, data + count);
}

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Largest |got - expected|, and whether every element is within atol + rtol*|expected|
// (numpy.allclose; a NaN is never close).
double max_abs_diff(const Array& got, const Array& expected, double atol, double rtol, bool& ok) {
  double worst = 0.0;
  ok = true;
  for (size_t i = 0; i < got.values.size(); ++i) {
    const double diff = std::abs(got.values[i] - expected.values[i]);
    if (!(diff <= atol + rtol * std::abs(expected.values[i]))) ok = false;
    if (std::isnan(diff) || diff > worst) worst = std::isnan(diff) ? INFINITY : diff;
  }
  return worst;
}

void image_feeds(const Package::Impl& p, const Json& samples, std::map<std::string, Array>& feeds,
                 double atol) {
  const auto recorded = feeds.find(p.pre_input);
  if (p.pre_type != "image" || recorded == feeds.end())
    fail(ErrorKind::kInvalidPackage,
         "manifest.json: samples.images needs image preprocessing and a recorded input");
  Array& expected = recorded->second;
  const Json& images = samples["images"];
  if (!images.is_array() || expected.shape.empty() ||
      static_cast<int64_t>(images.size()) != expected.shape[0])
    fail(ErrorKind::kInvalidPackage, "manifest.json: samples.images must list one image per "
                                     "recorded input row");
  const size_t per = expected.values.size() / images.size();
  const double zero = 0.0;
  const double jpeg_atol = detail::number_field(samples, "jpeg_atol", "samples.", &zero);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string path = images[i].get<std::string>();
    const Array x = detail::apply_image_spec(detail::decode_image(p.files.at(path), path), p.image);
    const std::string lower = [&] {
      std::string s = path;
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      return s;
    }();
    const bool jpeg = lower.size() > 4 && (lower.rfind(".jpg") == lower.size() - 4 ||
                                           lower.rfind(".jpeg") == lower.size() - 5);
    double diff = x.values.size() == per ? 0.0 : INFINITY;
    for (size_t j = 0; j < per && std::isfinite(diff); ++j)
      diff = std::max(diff, std::abs(x.values[j] - expected.values[i * per + j]));
    const double tol = jpeg ? jpeg_atol : atol;
    if (!(diff <= tol))
      fail(ErrorKind::kSampleMismatch, path + ": preprocessed max abs diff " + fmt(diff) + " > " +
                                           fmt(tol) + " (" + (jpeg ? "JPEG" : "PNG") + ")");
    if (!jpeg) std::copy(x.values.begin(), x.values.end(), expected.values.begin() + i * per);
  }
}

}  // namespace

namespace detail {

Array to_array(const Ort::Value& value, const std::string& name) {
  if (!value.IsTensor()) fail(ErrorKind::kUnsupported, "output '" + name + "' is not a tensor");
  const auto info = value.GetTensorTypeAndShapeInfo();
  Array array{info.GetShape(), {}};
  const size_t count = info.GetElementCount();
  switch (info.GetElementType()) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      widen<float>(value, count, array.values);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      widen<double>(value, count, array.values);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      widen<int64_t>(value, count, array.values);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      widen<int32_t>(value, count, array.values);
      break;
    default:
      fail(ErrorKind::kUnsupported,
           "output '" + name +
               "' has an element type the C++ runtime does not read (float, double, int32, int64)");
  }
  return array;
}

}  // namespace detail

Ort::Value Package::Impl::to_value(size_t input, const Array& array) const {
  const std::string& name = input_names[input];
  const size_t count =
      std::accumulate(array.shape.begin(), array.shape.end(), size_t{1},
                      [](size_t a, int64_t d) { return a * static_cast<size_t>(d); });
  if (count != array.values.size()) {
    fail(ErrorKind::kInput, "input '" + name + "': shape " + shape_str(array.shape) +
                                " does not hold " + std::to_string(array.values.size()) +
                                " values");
  }
  switch (input_types[input]) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return make_value<float>(array);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      return make_value<double>(array);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return make_value<int64_t>(array);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return make_value<int32_t>(array);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:  // image packages with uint8 input
      return make_value<uint8_t>(array);
    default:
      fail(ErrorKind::kUnsupported,
           "input '" + name +
               "' has an element type the C++ runtime does not feed (float, double, int32, int64, "
               "uint8)");
  }
}

std::vector<Ort::Value> Package::Impl::run(const std::vector<Ort::Value>& inputs) const {
  std::vector<const char*> in_names, out_names;
  for (const auto& n : input_names) in_names.push_back(n.c_str());
  for (const auto& n : output_names) out_names.push_back(n.c_str());
  try {
    // Session::Run is const in onnxruntime's sense (thread-safe); the C++ wrapper is not marked so.
    auto& s = const_cast<Ort::Session&>(session);
    return s.Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(),
                 out_names.data(), out_names.size());
  } catch (const Ort::Exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    if (e.GetOrtErrorCode() == ORT_INVALID_ARGUMENT)
      fail(ErrorKind::kInput, "onnxruntime rejected the input: " + what);
    fail(ErrorKind::kUnsupported, "onnxruntime failed to run: " + what);
  }
}

SampleCheck Package::check_samples() const try {
  const Impl& p = *impl_;
  if (!p.manifest.contains("samples"))
    fail(ErrorKind::kInvalidPackage, "manifest.json: the package records no samples to check");
  const Json& samples = p.manifest["samples"];
  const double atol = detail::number_field(samples, "atol", "samples.");
  const double rtol = detail::number_field(samples, "rtol", "samples.");
  const std::string within = "within atol=" + fmt(atol) + ", rtol=" + fmt(rtol);
  auto load = [&](const Json& path) {
    return detail::parse_npy(p.files.at(path.get<std::string>()), path.get<std::string>());
  };

  std::map<std::string, Array> feeds;
  const Json recorded_inputs = samples.value("inputs", Json::object());
  for (const auto& [name, path] : recorded_inputs.items()) feeds[name] = load(path);
  // image files -> preprocess must give the recorded model feed (PNG within atol, JPEG within
  // jpeg_atol); the model then runs on this runtime's tensor for PNGs, the recorded for JPEGs.
  if (samples.contains("images")) image_feeds(p, samples, feeds, atol);
  // A text package's raw strings -> its token ids must be the recorded feeds, exactly.
  if (samples.contains("raw") && p.pre_type == "text" && p.wordpiece) {
    const std::string raw = samples["raw"].get<std::string>();
    const Json texts = detail::parse_json(p.files.at(raw), raw);
    const auto got = preprocess_text(texts.get<std::vector<std::string>>());
    for (const auto& [name, array] : got) {
      const auto recorded = feeds.find(name);
      if (recorded != feeds.end() && (recorded->second.shape != array.shape ||
                                      recorded->second.values != array.values)) {
        fail(ErrorKind::kSampleMismatch, raw + ": tokenizing gives '" + name + "' " +
                                             shape_str(array.shape) +
                                             " that does not reproduce the recorded " +
                                             shape_str(recorded->second.shape));
      }
      feeds[name] = array;
    }
  }
  // raw -> preprocess must give the recorded model feed: the app's path from raw to answer.
  if (samples.contains("raw") && (p.pre_type == "tensor" || p.pre_type == "none") &&
      !p.pre_input.empty()) {
    const Tensor pre = preprocess(load(samples["raw"]));
    const Array got{pre.shape, {pre.data.begin(), pre.data.end()}};
    const auto recorded = feeds.find(p.pre_input);
    if (recorded == feeds.end()) {
      feeds[p.pre_input] = got;
    } else {
      bool ok = got.shape == recorded->second.shape;
      const double diff = ok ? max_abs_diff(got, recorded->second, atol, rtol, ok) : INFINITY;
      if (!ok) {
        fail(ErrorKind::kSampleMismatch,
             samples["raw"].get<std::string>() + ": preprocessing gives " + shape_str(got.shape) +
                 " that does not reproduce the recorded '" + p.pre_input + "' " +
                 shape_str(recorded->second.shape) + " " + within + " (max abs diff " + fmt(diff) +
                 ")");
      }
    }
  }
  std::vector<Ort::Value> inputs;
  for (size_t i = 0; i < p.input_names.size(); ++i) {
    const auto it = feeds.find(p.input_names[i]);
    if (it == feeds.end())
      fail(ErrorKind::kInvalidPackage,
           "manifest.json: samples record no input for '" + p.input_names[i] + "'");
    inputs.push_back(p.to_value(i, it->second));
  }
  const std::vector<Ort::Value> outputs = p.run(inputs);

  SampleCheck result;
  const Array& first = feeds.at(p.input_names[0]);
  result.count = first.shape.empty() ? 1 : first.shape[0];
  for (const auto& [name, path] : detail::field(samples, "outputs", "samples.").items()) {
    const auto at = std::find(p.output_names.begin(), p.output_names.end(), name);
    if (at == p.output_names.end())
      fail(ErrorKind::kInvalidPackage,
           "manifest.json: samples.outputs names '" + name + "', not a model output");
    const Array got =
        detail::to_array(outputs[static_cast<size_t>(at - p.output_names.begin())], name);
    const Array expected = load(path);
    if (got.shape != expected.shape) {
      fail(ErrorKind::kSampleMismatch,
           name + ": shape " + shape_str(got.shape) + " does not match the recorded " +
               shape_str(expected.shape) + " in " + path.get<std::string>());
    }
    bool ok = true;
    const double diff = max_abs_diff(got, expected, atol, rtol, ok);
    if (!ok) {
      fail(ErrorKind::kSampleMismatch, name + ": " + std::to_string(result.count) +
                                           " samples do not reproduce " + path.get<std::string>() +
                                           " " + within + " (max abs diff " + fmt(diff) + ")");
    }
    result.max_abs_diff = std::max(result.max_abs_diff, diff);
  }
  return result;
} catch (const nlohmann::json::exception& e) {
  detail::fail_json(e);
}

}  // namespace edgepack
