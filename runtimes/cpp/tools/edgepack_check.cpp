// edgepack_check PKG_FOLDER [--pubkey KEY.pem] [--image FILE [--tensor]]
//
// With --image, predicts on an image file and prints `label score` (or, with --tensor, the
// preprocessed model input as JSON: {"shape": [...], "data": [...]}).
// Verifies a package folder (signature when a key is given, schema major, every file's sha256)
// and replays its recorded samples. Prints "ok: N samples reproduced (max abs diff X)" and exits
// 0, or one "error: ..." line on stderr and exits 1. `edgepack verify --runtime cpp` calls it.
// PKG_FOLDER is a package folder: extract a .edgepack with a reader that refuses duplicate,
// symlink and oversized members (python -m edgepack_runtime PKG --extract-to DIR), not unzip.
#include <cstdio>
#include <iostream>
#include <string>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  std::string folder, image;
  bool tensor = false;
  edgepack::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--pubkey" && i + 1 < argc) {
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
          std::printf("%s %.6f\n", edgepack::printable(pred.labels[i]).c_str(), pred.scores[i]);
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
    std::cerr << "error: " << edgepack::printable(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {  // a bug or out-of-memory: still one line, still exit 1
    std::cerr << "error: internal: " << edgepack::printable(e.what()) << "\n";
    return 1;
  }
  return 0;
}
