// Text in, text out with a language-model package: streams the greedy continuation of a prompt
// (with --chat, the assistant's reply through the package's chat template) as it is generated.
//   generate PKG_FOLDER "Once upon a time" [--chat] [--max-new-tokens N]
#include <iostream>
#include <string>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: generate PKG_FOLDER PROMPT [--chat] [--max-new-tokens N]\n";
    return 2;
  }
  edgepack::GenerateOptions options;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--chat") options.chat = true;
    if (arg == "--max-new-tokens" && i + 1 < argc) options.max_new_tokens = std::stoi(argv[++i]);
  }
  try {
    auto pkg = edgepack::Package::open(argv[1]);  // verifies every sha256 before loading
    // Tokenized by onnxruntime-genai; one decode step per token on the KV cache; each piece is
    // printed as it arrives. Ends at an EOS token or before one of the package's stop strings.
    pkg.generate(argv[2], options, [](const std::string& piece) { std::cout << piece << std::flush; });
    std::cout << "\n";
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
