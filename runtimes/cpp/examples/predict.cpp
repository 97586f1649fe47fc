// The shortest app: load a package folder and print the top label of each raw sample.
//   predict PKG_FOLDER [RAW.npy]      (RAW.npy defaults to the package's samples/raw.npy)
//   predict PKG_FOLDER photo.jpg      (image packages: a PNG or JPEG file)
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
    const std::string input = argc > 2 ? argv[2] : folder + "/samples/raw.npy";
    const bool npy = input.size() > 4 && input.compare(input.size() - 4, 4, ".npy") == 0;
    auto pred = npy ? pkg.predict(edgepack::read_npy(input))  // 64 pixel values 0..16 per image
                    : pkg.predict_image(input);              // an image file

    for (size_t i = 0; i < pred.labels.size(); ++i) {
      // A label is the package's text: printed escaped, it cannot forge lines or steer the terminal.
      std::cout << edgepack::printable(pred.labels[i]) << " " << pred.scores[i] << "\n";
    }
  } catch (const edgepack::Error& e) {
    std::cerr << "error: " << edgepack::printable(e.what()) << "\n";
    return 1;
  }
}
