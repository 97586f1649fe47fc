// Package's private state, shared by edgepack.cpp (load, predict) and samples.cpp (checks).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "internal.hpp"

namespace edgepack {

namespace detail {
class WordPiece;
class GenaiTokenizer;
}  // namespace detail

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
  // preprocessing "text" (text.cpp): a WordPiece tokenizer, or why this runtime has none.
  std::shared_ptr<detail::WordPiece> wordpiece;
  std::string text_unsupported;
  int64_t max_length = 128, fixed_length = 0, pad_id = 0;
  bool truncation = true;

  // postprocessing: "classification" (top-1 of post_output) or "none".
  std::string post_type = "none";
  std::string post_output;
  bool softmax = true;
  // postprocessing "embedding": pooled in the graph, or here (mean over the mask, or cls).
  bool in_graph = true, normalize = false;
  std::string pooling = "none";

  // A language model's tokenizer (lm_text.cpp), made on first use.
  mutable std::shared_ptr<detail::GenaiTokenizer> lm_tokenizer;

  // Greedy decoding with the KV cache (generation.cpp): on_token sees each new token until it
  // returns false, a stop id comes (not passed on), max_new_tokens, or `context` positions
  // (0: no limit) are reached.
  void decode_greedy(const std::vector<int64_t>& prompt, int max_new_tokens,
                     const std::set<int64_t>& stop, int64_t context,
                     const std::function<bool(int64_t)>& on_token) const;

  // Run on onnxruntime values in input_names order; outputs in output_names order.
  std::vector<Ort::Value> run(const std::vector<Ort::Value>& inputs) const;
  // An Array as a tensor of the model input's element type (float, double, int32/64, bool).
  Ort::Value to_value(size_t input, const Array& array) const;
};

namespace detail {

// Any numeric onnxruntime tensor, widened to double (for comparisons with recorded samples).
Array to_array(const Ort::Value& value, const std::string& name);

// text.cpp: the "text" preprocessing and "embedding" postprocessing blocks, checked at open.
void read_text_spec(Package::Impl& p, const Json& spec);
void read_embedding_spec(Package::Impl& p, const Json& spec);
// pred.embeddings from the output, pooled with feeds' attention_mask when not in the graph.
void embeddings(const Package::Impl& p, Prediction& pred, const std::map<std::string, Array>& feeds);

}  // namespace detail

}  // namespace edgepack
