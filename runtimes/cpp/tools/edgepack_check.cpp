// edgepack_check PKG_FOLDER [--pubkey KEY.pem] [--image FILE [--tensor]]
//                [--text T | --text-file F]... [--tokens]
//                [--prompt T | --prompt-file F] [--chat] [--max-new-tokens N]
//
// With --text (or --text-file, a file's bytes as one text), predicts on the texts and prints
// {"embeddings": ...} or {"predictions": ...} (--tokens: the feeds); with --prompt, prints
// {"prompt_ids", "generated_ids", "text"} of the greedy continuation: what `python -m
// edgepack_runtime` and runtimes/js/bin/check.js print for the same arguments.
// With --image, predicts on an image file and prints `label score` (or, with --tensor, the
// preprocessed model input as JSON: {"shape": [...], "data": [...]}).
// Verifies a package folder (signature when a key is given, schema major, every file's sha256)
// and replays its recorded samples. Prints "ok: N samples reproduced (max abs diff X)" and exits
// 0, or one "error: ..." line on stderr and exits 1. `edgepack verify --runtime cpp` calls it.
// PKG_FOLDER is a package folder: extract a .edgepack with a reader that refuses duplicate,
// symlink and oversized members (python -m edgepack_runtime PKG --extract-to DIR), not unzip.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "edgepack.hpp"

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw edgepack::Error(edgepack::ErrorKind::kInput, path + ": cannot read the input");
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

nlohmann::json text_json(const edgepack::Package& pkg, const std::vector<std::string>& texts,
                         bool tokens) {
  nlohmann::json out = nlohmann::json::object();
  if (tokens) {
    for (const auto& [name, array] : pkg.preprocess_text(texts)) {
      const auto cols = static_cast<size_t>(array.shape[1]);
      auto& rows = out[name] = nlohmann::json::array();
      for (size_t r = 0; r < static_cast<size_t>(array.shape[0]); ++r) {
        std::vector<int64_t> row;
        for (size_t c = 0; c < cols; ++c) row.push_back(static_cast<int64_t>(array.values[r * cols + c]));
        rows.push_back(row);
      }
    }
    return out;
  }
  const auto pred = pkg.predict_text(texts);
  if (!pred.embeddings.empty()) return {{"embeddings", pred.embeddings}};
  auto& rows = out["predictions"] = nlohmann::json::array();
  for (size_t i = 0; i < pred.labels.size(); ++i)
    rows.push_back({{"label", pred.labels[i]}, {"index", pred.indices[i]}, {"score", pred.scores[i]}});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, image, prompt, prompt_file;
  bool tensor = false, tokens = false, has_prompt = false;
  std::vector<std::pair<bool, std::string>> texts;  // (is a file, value), in order
  edgepack::GenerateOptions generation;
  edgepack::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--text" || arg == "--text-file") && i + 1 < argc) {
      texts.emplace_back(arg == "--text-file", argv[++i]);
    } else if (arg == "--tokens") {
      tokens = true;
    } else if ((arg == "--prompt" || arg == "--prompt-file") && i + 1 < argc) {
      (arg == "--prompt" ? prompt : prompt_file) = argv[++i];
      has_prompt = true;
    } else if (arg == "--chat") {
      generation.chat = true;
    } else if (arg == "--max-new-tokens" && i + 1 < argc) {
      generation.max_new_tokens = std::atoi(argv[++i]);
    } else if (arg == "--pubkey" && i + 1 < argc) {
      options.pubkey_pem = argv[++i];
    } else if (arg == "--image" && i + 1 < argc) {
      image = argv[++i];
    } else if (arg == "--tensor") {
      tensor = true;
    } else if (arg.rfind("--", 0) != 0 && folder.empty()) {
      folder = arg;
    } else {
      std::cerr << "usage: edgepack_check PKG_FOLDER [--pubkey KEY.pem]\n";
      return 2;
    }
  }
  if (folder.empty()) {
    std::cerr << "usage: edgepack_check PKG_FOLDER [--pubkey KEY.pem]\n";
    return 2;
  }
  try {
    const auto pkg = edgepack::Package::open(folder, options);
    if (!texts.empty()) {
      std::vector<std::string> raw;
      for (const auto& [file, value] : texts) raw.push_back(file ? read_bytes(value) : value);
      std::printf("%s\n", text_json(pkg, raw, tokens).dump().c_str());
      return 0;
    }
    if (has_prompt) {
      const auto g = pkg.generate(prompt_file.empty() ? prompt : read_bytes(prompt_file), generation);
      const nlohmann::json out = {
          {"prompt_ids", g.prompt_ids}, {"generated_ids", g.generated_ids}, {"text", g.text}};
      std::printf("%s\n", out.dump().c_str());
      return 0;
    }
    if (!image.empty()) {
      if (tensor) {
        const edgepack::Array x = pkg.preprocess_image(image);
        std::printf("{\"shape\": [");
        for (size_t i = 0; i < x.shape.size(); ++i)
          std::printf("%s%lld", i ? ", " : "", static_cast<long long>(x.shape[i]));
        std::printf("], \"data\": [");
        for (size_t i = 0; i < x.values.size(); ++i) std::printf("%s%.9g", i ? ", " : "", x.values[i]);
        std::printf("]}\n");
      } else {
        const edgepack::Prediction pred = pkg.predict_image(image);
        for (size_t i = 0; i < pred.labels.size(); ++i)
          std::printf("%s %.6f\n", pred.labels[i].c_str(), pred.scores[i]);
      }
      return 0;
    }
    const edgepack::SampleCheck check = pkg.check_samples();
    std::printf("ok: %lld samples reproduced (max abs diff %.3g)", static_cast<long long>(check.count),
                check.max_abs_diff);
    if (pkg.is_language_model()) {  // its recorded greedy generation, token for token
      std::printf(", generation %lld greedy tokens reproduced",
                  static_cast<long long>(pkg.check_generation()));
    }
    std::printf("\n");
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {  // a bug or out-of-memory: still one line, still exit 1
    std::cerr << "error: internal: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
