// The shortest app: load a package folder and print the top label of each raw sample.
//   predict PKG_FOLDER [RAW.npy]      (RAW.npy defaults to the package's samples/raw.npy)
#include <iostream>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: predict PKG_FOLDER [RAW.npy]\n";
    return 2;
  }
  const std::string folder = argv[1];  // an unzipped .edgepack
  try {
    auto pkg = edgepack::Package::open(folder);  // verifies every sha256 before loading
    auto raw = edgepack::read_npy(argc > 2 ? argv[2] : folder + "/samples/raw.npy");
    auto pred = pkg.predict(raw);  // raw: 64 pixel values 0..16 per image, one or a batch
    for (size_t i = 0; i < pred.labels.size(); ++i) {
      std::cout << pred.labels[i] << " " << pred.scores[i] << "\n";
    }
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
