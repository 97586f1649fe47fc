// Text in, vectors out with a sentence-embedding package (e.g. all-MiniLM-L6-v2): one vector
// per text, tokenized by the package's own tokenizer.json.
//   embed PKG_FOLDER "first text" ["second text" ...]
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: embed PKG_FOLDER TEXT [TEXT ...]\n";
    return 2;
  }
  try {
    auto pkg = edgepack::Package::open(argv[1]);  // verifies every sha256 before loading
    const std::vector<std::string> texts(argv + 2, argv + argc);  // UTF-8
    const auto pred = pkg.predict_text(texts);  // one batch, padded to its longest text
    for (size_t i = 0; i < pred.embeddings.size(); ++i) {
      const auto& e = pred.embeddings[i];
      double norm = 0;
      for (float v : e) norm += double(v) * v;
      std::printf("%zu: dim %zu, norm %.4f, [", i, e.size(), std::sqrt(norm));
      for (size_t k = 0; k < e.size() && k < 8; ++k) std::printf("%s%+.4f", k ? ", " : "", e[k]);
      std::printf(", ...]\n");
    }
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
