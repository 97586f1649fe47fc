// The memory budget of reading a package (docs/package-format.md, "The memory budget"), checked
// once the listing and every size hold and before any file is read, as the Python and JS runtimes
// check it, so a refusal costs no more than the caps:
// - the files a reader keeps besides the model (samples, sample images, the tokenizer, the
//   recorded generation) hold at most kMaxKeptBytes together, from their listed sizes;
// - each sample array's .npy header is read first and must fit its use: numbers, the model
//   tensor's dtype, rank and fixed dims, and exactly the listed size; raw samples a whole number
//   of the preprocessing's sample shape.
// (The Python reader that unpacks a zip for this runtime also refuses a member that inflates more
// than 64 times: this runtime reads folders.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "internal.hpp"

namespace fs = std::filesystem;

namespace edgepack::detail {

namespace {

struct Fit {
  const Json* spec = nullptr;  // the model tensor's, or null
  int64_t values = 0;          // raw samples: values per sample (0: numbers only)
};

const std::map<std::string, std::string> kNumpyCode = {
    {"float16", "f2"}, {"float32", "f4"}, {"float64", "f8"}, {"int8", "i1"},
    {"int16", "i2"},   {"int32", "i4"},   {"int64", "i8"},   {"uint8", "u1"},
    {"uint16", "u2"},  {"uint32", "u4"},  {"uint64", "u8"},  {"bool", "b1"},
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// (file, what it must fit) for every .npy sample.
std::vector<std::pair<std::string, Fit>> sample_arrays(const Json& manifest) {
  std::vector<std::pair<std::string, Fit>> out;
  const Json samples = manifest.value("samples", Json::object());
  for (const char* key : {"inputs", "outputs"}) {
    const Json mapping = samples.value(key, Json::object());
    for (const auto& [tensor, path] : mapping.items()) {
      const Json& specs = manifest[key];
      const auto spec = std::find_if(specs.begin(), specs.end(),
                                     [&](const Json& t) { return t.value("name", "") == tensor; });
      if (spec == specs.end()) {
        fail(ErrorKind::kInvalidPackage, std::string("manifest.json: samples.") + key +
                                             " names '" + tensor + "', not a model " +
                                             std::string(key).substr(0, std::strlen(key) - 1));
      }
      out.push_back({path.get<std::string>(), Fit{&*spec, 0}});
    }
  }
  if (samples.contains("raw") && samples["raw"].is_string()) {
    const std::string raw = samples["raw"].get<std::string>();
    if (raw.size() > 4 && raw.compare(raw.size() - 4, 4, ".npy") == 0) {
      const Json pre = manifest.value("preprocessing", Json::object());
      Fit fit;
      if (pre.value("type", "") == "tensor" && pre.contains("sample_shape") &&
          pre["sample_shape"].is_array()) {
        fit.values = 1;
        for (const Json& d : pre["sample_shape"])
          if (d.is_number_integer() && d.get<int64_t>() > 0 && d.get<int64_t>() < (1LL << 40))
            fit.values *= d.get<int64_t>();
      }
      out.push_back({raw, fit});
    }
  }
  return out;
}

void check_fits(const NpyHeader& header, const std::string& name, const Fit& fit) {
  const auto refuse = [&](const std::string& why) {
    fail(ErrorKind::kInvalidPackage, name + ": " + why + ": it does not fit its use");
  };
  if (fit.spec == nullptr) {
    double count = 1.0;
    for (int64_t d : header.shape) count *= static_cast<double>(d);
    if (fit.values > 0 && (count == 0.0 || std::fmod(count, static_cast<double>(fit.values)) != 0))
      refuse("shape " + shape_text(header.shape) +
             " is not a whole number of preprocessing.sample_shape samples (" +
             std::to_string(fit.values) + " values each)");
    return;
  }
  const Json& spec = *fit.spec;
  const std::string tensor = spec.value("name", "");
  const std::string dtype = spec.value("dtype", "");
  const auto code = kNumpyCode.find(dtype);
  if (code != kNumpyCode.end() && header.code != code->second)
    refuse("dtype " + header.descr + " for tensor '" + tensor + "' of dtype " + dtype);
  const Json dims = spec.value("shape", Json::array());
  bool ok = dims.is_array() && dims.size() == header.shape.size();
  for (size_t i = 0; ok && i < dims.size(); ++i)
    if (dims[i].is_number_integer() && dims[i].get<int64_t>() >= 0)
      ok = dims[i].get<int64_t>() == header.shape[i];
  if (!ok)
    refuse("shape " + shape_text(header.shape) + " for tensor '" + tensor + "' of shape " +
           dims.dump());
}

}  // namespace

void check_budget(const fs::path& root, const Json& manifest, const std::set<std::string>& kept) {
  const Json& files = manifest["files"];
  const std::string model = manifest["model"].get<std::string>();
  const Json mobile = manifest.value("mobile", Json::object());
  std::map<std::string, uintmax_t> sizes;
  uintmax_t total = 0;
  std::string biggest;
  for (const std::string& name : kept) {
    if (name == model || (mobile.is_object() && mobile.value("model", "") == name)) continue;
    sizes[name] = files[name]["size"].get<uintmax_t>();
    total += sizes[name];
    if (biggest.empty() || sizes[name] > sizes[biggest]) biggest = name;
  }
  if (total > kMaxKeptBytes) {
    fail(ErrorKind::kInvalidPackage,
         biggest + ": " + std::to_string(sizes[biggest]) +
             " bytes; the samples, tokenizer and generation a reader keeps total " +
             std::to_string(total) + " bytes, over the " + std::to_string(kMaxKeptBytes >> 20) +
             " MiB cap of the memory budget (edgepack writes a few MB)");
  }
  for (const auto& [name, fit] : sample_arrays(manifest)) {
    const uintmax_t size = sizes.count(name) ? sizes[name] : files[name]["size"].get<uintmax_t>();
    const size_t head = static_cast<size_t>(std::min<uintmax_t>(size, 12 + kMaxNpyHeaderBytes));
    const NpyHeader header =
        parse_npy_header(read_head(root, name, head), name, ErrorKind::kInvalidPackage);
    check_npy_size(header, size, name, ErrorKind::kInvalidPackage);
    check_fits(header, name, fit);
  }
}

}  // namespace edgepack::detail
