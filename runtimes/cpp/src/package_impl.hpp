// Package's private state, shared by edgepack.cpp (load, predict) and samples.cpp (checks).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "internal.hpp"

namespace edgepack {

struct Package::Impl {
  detail::Json manifest;
  detail::Files files;  // verified bytes of the samples (the model bytes go to onnxruntime)
  std::string name, version;
  std::vector<std::string> labels;

  Ort::Session session{nullptr};
  std::vector<std::string> input_names, output_names;
  std::vector<ONNXTensorElementDataType> input_types;

  // preprocessing: "tensor" (below), "none" (raw is the feed) or a type only Python reads.
  std::string pre_type = "none";
  std::string pre_input;  // the model input it feeds; empty if ambiguous
  std::vector<int64_t> sample_shape;
  double scale = 1.0, offset = 0.0, mean = 0.0, stdev = 1.0;
  detail::ImageSpec image;  // preprocessing "image"

  // postprocessing: "classification" (top-1 of post_output) or "none".
  std::string post_type = "none";
  std::string post_output;
  bool softmax = true;

  // Run on onnxruntime values in input_names order; outputs in output_names order.
  std::vector<Ort::Value> run(const std::vector<Ort::Value>& inputs) const;
  // An Array as a tensor of the model input's element type (float, double, int32/64, bool).
  Ort::Value to_value(size_t input, const Array& array) const;
};

namespace detail {

// Any numeric onnxruntime tensor, widened to double (for comparisons with recorded samples).
Array to_array(const Ort::Value& value, const std::string& name);

}  // namespace detail

}  // namespace edgepack
