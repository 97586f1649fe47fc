// type "image" preprocessing: PNG/JPEG bytes -> the model's tensor, step for step as
// docs/package-format.md ("Image packages") specifies and the Python and JS runtimes compute:
//
//   decode (8-bit, to RGB) -> channel order -> resize -> centre crop -> scale, mean, std -> layout
//
// Decoding is stb_image (Debian's libstb-dev). Resize is Pillow's 8-bit resampling: separable
// filters, horizontal pass first, coefficients in 22-bit fixed point, each pass rounded to 8
// bits. Built with -ffp-contract=off (CMakeLists.txt): a fused multiply-add would round
// differently from Python and JavaScript.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "package_impl.hpp"

namespace edgepack {

using detail::fail;
using detail::Json;

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  const double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coefficients {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<int64_t> weights;  // out x ksize, 22-bit fixed point
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc.
Coefficients coefficients(int in_size, int out_size, const std::string& interpolation) {
  const bool cubic = interpolation == "bicubic";
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = (cubic ? 2.0 : 1.0) * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = (x + xmin - center + 0.5) * (1.0 / filterscale);
      w[x] = cubic ? bicubic(t) : bilinear(t);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double k = ww != 0.0 ? w[x] / ww : w[x];
      const double one = static_cast<double>(1 << kPrecisionBits);
      c.weights[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int64_t>(k < 0 ? -0.5 + k * one : 0.5 + k * one);
    }
    c.start[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's int
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

detail::Image resample(const detail::Image& in, int out_size, const std::string& interpolation,
                       bool horizontal) {
  const Coefficients c = coefficients(horizontal ? in.width : in.height, out_size, interpolation);
  detail::Image out{horizontal ? out_size : in.width, horizontal ? in.height : out_size, {}};
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const int o = horizontal ? x : y;
      const int64_t* k = &c.weights[static_cast<size_t>(o) * c.ksize];
      for (int ch = 0; ch < 3; ++ch) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (int t = 0; t < c.count[o]; ++t) {
          const size_t i = horizontal ? (static_cast<size_t>(y) * in.width + c.start[o] + t)
                                      : (static_cast<size_t>(c.start[o] + t) * in.width + x);
          acc += in.rgb[i * 3 + ch] * k[t];
        }
        out.rgb[(static_cast<size_t>(y) * out.width + x) * 3 + ch] = clip8(acc);
      }
    }
  }
  return out;
}

// torchvision's CenterCrop offset: round((size - crop) / 2), halves to even.
int crop_offset(int size, int crop) {
  const int d = size - crop;
  const int half = d / 2;
  return half + ((d % 2) && (half % 2) ? 1 : 0);
}

int positive(const Json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number_integer() ||
      obj[key].get<int64_t>() < 1 || obj[key].get<int64_t>() > (1 << 24)) {
    fail(ErrorKind::kInvalidPackage,
         "manifest.json: preprocessing." + where + key + " must be a positive integer");
  }
  return obj[key].get<int>();
}

std::vector<double> channels(const Json& spec, const char* key, double fallback) {
  if (!spec.contains(key)) return {fallback, fallback, fallback};
  const Json& v = spec[key];
  if (!v.is_array() || v.size() != 3 ||
      !std::all_of(v.begin(), v.end(), [](const Json& n) { return n.is_number(); })) {
    fail(ErrorKind::kInvalidPackage, std::string("manifest.json: preprocessing.") + key +
                                         " must be a list of 3 finite numbers (one per channel)");
  }
  return v.get<std::vector<double>>();
}

}  // namespace

namespace detail {

ImageSpec read_image_spec(const Json& spec) {
  ImageSpec s;
  const auto text = [&](const char* key, const std::string& fallback) {
    return spec.contains(key) ? string_field(spec, key, "preprocessing.") : fallback;
  };
  s.channel_order = text("channel_order", "RGB");
  s.layout = text("layout", "NCHW");
  s.dtype = text("dtype", "float32");
  const auto bad = [](const std::string& what) {
    fail(ErrorKind::kInvalidPackage, "manifest.json: preprocessing." + what);
  };
  if (s.channel_order != "RGB" && s.channel_order != "BGR") bad("channel_order must be RGB or BGR");
  if (s.layout != "NCHW" && s.layout != "NHWC") bad("layout must be NCHW or NHWC");
  if (s.dtype != "float32" && s.dtype != "uint8") bad("dtype must be float32 or uint8");
  if (spec.contains("resize") && !spec["resize"].is_null()) {
    const Json& r = spec["resize"];
    s.interpolation = r.is_object() ? r.value("interpolation", "") : "";
    if (s.interpolation != "bilinear" && s.interpolation != "bicubic")
      bad("resize.interpolation must be bilinear or bicubic");
    if (r.contains("shorter")) {
      s.shorter = positive(r, "shorter", "resize.");
    } else {
      s.resize_h = positive(r, "height", "resize.");
      s.resize_w = positive(r, "width", "resize.");
    }
  }
  if (spec.contains("crop") && !spec["crop"].is_null()) {
    s.crop_h = positive(spec["crop"], "height", "crop.");
    s.crop_w = positive(spec["crop"], "width", "crop.");
  }
  if (s.dtype == "float32") {
    const double one = 1.0;
    s.scale = number_field(spec, "scale", "preprocessing.", &one);
    s.mean = channels(spec, "mean", 0.0);
    s.stdev = channels(spec, "std", 1.0);
    if (std::any_of(s.stdev.begin(), s.stdev.end(), [](double v) { return v == 0.0; }))
      bad("std must not be 0");
  }
  return s;
}

Image decode_image(const std::string& bytes, const std::string& where, int64_t max_pixels) {
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  if (bytes.size() > kMaxImageFileBytes)
    fail(ErrorKind::kInput, where + ": too large (" + std::to_string(bytes.size()) + " bytes, over " +
                                std::to_string(kMaxImageFileBytes) + ")");
  const int len = static_cast<int>(bytes.size());
  if (stbi_is_16_bit_from_memory(data, len))
    fail(ErrorKind::kInput, where + ": 16-bit images are not supported (8-bit PNG or JPEG)");
  int w = 0, h = 0, comp = 0;
  const auto bomb = [&](const std::string& size) {
    fail(ErrorKind::kInput, where + ": " + size + " is over the " + std::to_string(max_pixels) +
                                "-pixel limit (a decompression bomb?)");
  };
  // The size in the header, before anything is decoded: a small file can claim gigapixels.
  if (stbi_info_from_memory(data, len, &w, &h, &comp) && static_cast<int64_t>(w) * h > max_pixels)
    bomb(std::to_string(w) + "x" + std::to_string(h) + " pixels");
  stbi_uc* pixels = stbi_load_from_memory(data, len, &w, &h, &comp, 3);
  // stb_image refuses a header over 1 GiB decoded as "too large", before allocating.
  if (pixels == nullptr && std::string(stbi_failure_reason()) == "too large")
    bomb("its header's size");
  if (pixels == nullptr)
    fail(ErrorKind::kInput,
         where + ": cannot decode the image (" + stbi_failure_reason() + "; PNG or JPEG)");
  Image image{w, h, std::vector<uint8_t>(pixels, pixels + static_cast<size_t>(w) * h * 3)};
  stbi_image_free(pixels);
  return image;
}

// A resize never makes more pixels (2^24, as in the Python and JS runtimes; the message says it).
constexpr int64_t kMaxResizedPixels = int64_t{1} << 24;

Array apply_image_spec(Image image, const ImageSpec& s) {
  if (s.channel_order == "BGR") {
    for (size_t i = 0; i + 2 < image.rgb.size(); i += 3) std::swap(image.rgb[i], image.rgb[i + 2]);
  }
  if (!s.interpolation.empty()) {
    int h = s.resize_h, w = s.resize_w;
    if (s.shorter > 0) {
      const int64_t n = s.shorter;
      if (image.height <= image.width) {
        h = s.shorter;
        w = static_cast<int>(n * image.width / image.height);
      } else {
        w = s.shorter;
        h = static_cast<int>(n * image.height / image.width);
      }
    }
    if (static_cast<int64_t>(w) * h > kMaxResizedPixels) {  // an extreme aspect ratio
      fail(ErrorKind::kInput, "a " + std::to_string(image.width) + "x" +
                                  std::to_string(image.height) + " image resizes to " +
                                  std::to_string(w) + "x" + std::to_string(h) +
                                  ", over the 16,777,216-pixel cap (an extreme aspect ratio): "
                                  "crop it first");
    }
    if (w != image.width) image = resample(image, w, s.interpolation, true);
    if (h != image.height) image = resample(image, h, s.interpolation, false);
  }
  if (s.crop_h > 0) {
    if (s.crop_h > image.height || s.crop_w > image.width) {
      fail(ErrorKind::kInput, "image of " + std::to_string(image.width) + "x" +
                                  std::to_string(image.height) +
                                  " after resize is smaller than the " + std::to_string(s.crop_w) +
                                  "x" + std::to_string(s.crop_h) + " centre crop");
    }
    const int top = crop_offset(image.height, s.crop_h), left = crop_offset(image.width, s.crop_w);
    Image out{s.crop_w, s.crop_h, {}};
    for (int y = 0; y < s.crop_h; ++y) {
      const auto row = image.rgb.begin() + (static_cast<size_t>(top + y) * image.width + left) * 3;
      out.rgb.insert(out.rgb.end(), row, row + static_cast<size_t>(s.crop_w) * 3);
    }
    image = std::move(out);
  }
  const size_t n = static_cast<size_t>(image.width) * image.height;
  Array x;
  x.shape = s.layout == "NCHW" ? std::vector<int64_t>{3, image.height, image.width}
                               : std::vector<int64_t>{image.height, image.width, 3};
  x.values.resize(n * 3);
  for (size_t i = 0; i < n; ++i) {
    for (size_t ch = 0; ch < 3; ++ch) {
      const double p = image.rgb[i * 3 + ch];
      // double arithmetic, one cast to float32 at the end: the same numbers in every runtime.
      const double v = s.dtype == "uint8"
                           ? p
                           : static_cast<double>(static_cast<float>(
                                 (p * s.scale - s.mean[ch]) / s.stdev[ch]));
      x.values[s.layout == "NCHW" ? ch * n + i : i * 3 + ch] = v;
    }
  }
  return x;
}

}  // namespace detail

Array Package::preprocess_image(const std::string& path) const {
  const Impl& p = *impl_;
  if (p.pre_type != "image")
    fail(ErrorKind::kInput, "this package does not take images (preprocessing '" + p.pre_type + "')");
  const std::string bytes = detail::read_file(path, path, ErrorKind::kInput, kMaxImageFileBytes);
  Array one = detail::apply_image_spec(detail::decode_image(bytes, path), p.image);
  one.shape.insert(one.shape.begin(), 1);
  return one;
}

}  // namespace edgepack
