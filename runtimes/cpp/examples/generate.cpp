// Greedy decoding with a language-model package's KV cache: replays the package's recorded
// sample generation and prints each continuation's token ids (the C++ runtime has no
// tokenizer: the Python runtime turns text into ids and back).
//   generate PKG_FOLDER
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: generate PKG_FOLDER\n";
    return 2;
  }
  const std::string folder = argv[1];  // an unzipped .edgepack
  try {
    auto pkg = edgepack::Package::open(folder);  // verifies every sha256 before loading
    std::ifstream in(folder + "/samples/generation.json");
    std::stringstream text;
    text << in.rdbuf();
    const auto sample = nlohmann::json::parse(text.str());
    for (size_t i = 0; i < sample["prompt_ids"].size(); ++i) {
      const auto prompt = sample["prompt_ids"][i].get<std::vector<int64_t>>();
      // Prefill once, then one step a token; the recording runs through EOS (stops_at_eos).
      const auto ids = pkg.greedy(prompt, sample["max_new_tokens"].get<int>(),
                                  sample.value("stops_at_eos", true));
      std::cout << i << ":";
      for (auto t : ids) std::cout << " " << t;
      const bool same = ids == sample["generated_ids"][i].get<std::vector<int64_t>>();
      std::cout << (same ? " (matches the recording)" : " (DIFFERS)") << "\n";
    }
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
