"""Collect the real photographs this machine has offline into one folder of image files, for the
EfficientNet-Lite0 recipes (calibration, distillation and held-out evaluation).

    bash scripts/setup_system.sh --photos     # as root: Debian's mate-backgrounds,
                                              # plasma-workspace-wallpapers, lomiri-wallpapers-16.04
                                              # and -20.04, opencv-doc, palapeli-data, jigzo-data
    python scripts/make_photos.py             # -> .edgepack/photos/*.jpg|png + SOURCES.txt

The photos (99), chosen by looking at each (renders, drawings, paintings, synthetic test charts,
grayscale frames and the second of each stereo or near-duplicate pair left out):
- the 12 nature photographs of mate-backgrounds (backgrounds/mate/nature);
- 12 photographs among plasma-workspace-wallpapers' wallpapers;
- 14 photographs among lomiri-wallpapers-16.04's and -20.04's (CC-BY / CC-BY-SA 4.0, each
  author in the package's copyright file);
- 36 of opencv-doc's sample photographs (examples/data and three sample folders: fruit,
  animals, buildings, objects, street and landscape scenes, shop signs);
- the 5 photographs of palapeli-data's puzzle collection (castle, bridge, citrus fruit, honey
  bee, chameleon) and the 12 of jigzo-data's default puzzles (bicycle, kookaburra, blackberries,
  castle, clouds, gorilla, helicopter, horse, penguin, slide, locomotive, windmill), each cut
  out of its puzzle file's texture as it is (no resampling) and saved as PNG;
- scikit-learn's two sample photos (china.jpg, flower.jpg), scikit-image's five (astronaut,
  cat, coffee, motorcycle, rocket; `pip install -e '.[efficientnet]'` brings scikit-image) and
  matplotlib's grace_hopper.jpg.
The other files are copied unchanged: the build decodes, resizes and crops them as the runtimes do. No
labels: agreement with the fp32 model is what they measure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

MATE = Path("/usr/share/backgrounds/mate/nature")
MATE_PHOTOS = [
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
]
PLASMA = Path("/usr/share/wallpapers")
# Photographs (not renders): the size each is copied at (the largest is not needed: the
# preprocessing resizes the shorter side to 256).
PLASMA_PHOTOS = {
    "BytheWater": "1920x1080.jpg",
    "ColdRipple": "1920x1080.jpg",
    "ColorfulCups": "2560x1600.jpg",
    "DarkestHour": "1920x1080.jpg",
    "EveningGlow": "1920x1080.jpg",
    "FallenLeaf": "1920x1080.jpg",
    "Grey": "1920x1080.jpg",
    "Kite": "1920x1080.jpg",
    "OneStandsOut": "1920x1080.jpg",
    "Path": "1920x1080.jpg",
    "summer_1am": "1920x1080.jpg",
    "Volna": "5120x2880.jpg",
}
LOMIRI = Path("/usr/share/backgrounds")
LOMIRI_PHOTOS = {
    "lomiri-wallpapers-16.04": [
        "Bridge_by_Sander_Klootwijk.jpg",
        "Dragonfly_by_Bolly.jpg",
        "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg",
        "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg",
        "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg",
    ],
    "lomiri-wallpapers-20.04": ["Kleiber_by_Lukas_Baubkus.jpg"],
}
OPENCV = Path("/usr/share/doc/opencv-doc/examples")
OPENCV_PHOTOS = [
    *(
        f"data/{n}"
        for n in (
            "aero1.jpg",
            "aloeL.jpg",
            "apple.jpg",
            "baboon.jpg",
            "board.jpg",
            "building.jpg",
            "butterfly.jpg",
            "chicky_512.png",
            "fruits.jpg",
            "graf1.png",
            "home.jpg",
            "left.jpg",
            "ela_original.jpg",
            "leuvenA.jpg",
            "licenseplate_motion.jpg",
            "messi5.jpg",
            "orange.jpg",
            "rubberwhale1.png",
            "smarties.png",
            "squirrel_cls.jpg",
            "stuff.jpg",
        )
    ),
    "alphamat/input_images/plant.jpg",
    "hfs/data/000.jpg",
    "hfs/data/001.jpg",
    "hfs/data/002.jpg",
    # street scenes, shop signs and a projector: the scene-text samples' photographs
    *(f"text/scenetext0{i}.jpg" for i in range(1, 7)),
    *(f"text/scenetext_segmented_word0{i}.jpg" for i in range(1, 6)),
]
# The photographs of two jigsaw-puzzle games: palapeli-data's collection (JPEG files, copied as
# they are) and jigzo-data's default puzzles (a .pzl file holds the picture inside a 1024x1024
# texture atlas, at the rectangle its "image X Y W H" header line names: cut out and saved as PNG).
PALAPELI = Path("/usr/share/palapeli/collection")
PALAPELI_PHOTOS = [
    "castle-maintenon",
    "cincinnati-bridge",
    "citrus-fruits",
    "european-honey-bee",
    "panther-chameleon-female",
]
JIGZO = Path("/usr/share/games/jigzo/puzzles/00_default")
JIGZO_PHOTOS = [
    "bike-3x4",
    "bird-2x3",
    "blackberry-3x3",
    "castle-6x3",
    "clouds-4x4",
    "gorilla2-3x3",
    "heli-4x3",
    "horse-4x3",
    "penguin-3x2",
    "tobogan-4x3",
    "train-2x2",
    "windmill-4x4",
]
# scikit-image's sample photographs (skimage.data, inside the wheel) and matplotlib's one.
SKIMAGE_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"]
DEFAULT_OUT = Path(".edgepack/photos")


def sources() -> list[tuple[Path, str, str]]:
    """(file, name in the folder, where it comes from) of every photo."""
    out = [(MATE / f"{n}.jpg", f"mate-{n}.jpg", "Debian mate-backgrounds") for n in MATE_PHOTOS]
    for name, size in PLASMA_PHOTOS.items():
        file = PLASMA / name / "contents" / "images" / size
        out.append((file, f"plasma-{name}.jpg", "Debian plasma-workspace-wallpapers"))
    for package, names in LOMIRI_PHOTOS.items():
        for n in names:
            out.append((LOMIRI / n, f"lomiri-{n}", f"Debian {package}"))
    for n in PALAPELI_PHOTOS:
        out.append((PALAPELI / f"{n}.jpg", f"palapeli-{n}.jpg", "Debian palapeli-data"))
    for n in JIGZO_PHOTOS:
        out.append((JIGZO / f"{n}.pzl", f"jigzo-{n}.png", "Debian jigzo-data"))
    for n in OPENCV_PHOTOS:
        name = "opencv-" + n.replace("data/", "").replace("/", "-")
        out.append((OPENCV / n, name, "Debian opencv-doc"))
    import matplotlib
    import skimage.data  # the [efficientnet] extra: a missing package is an error, not fewer photos
    import sklearn

    images = Path(sklearn.__file__).parent / "datasets" / "images"
    for n in ("china", "flower"):
        out.append((images / f"{n}.jpg", f"sklearn-{n}.jpg", "scikit-learn sample images"))
    for n in SKIMAGE_PHOTOS:
        file = Path(skimage.data.__file__).parent / n
        out.append((file, f"skimage-{n}", "scikit-image sample data (skimage.data)"))
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out.append((hopper, "matplotlib-grace_hopper.jpg", "matplotlib sample data"))
    return out


def jigzo_picture(pzl: Path):
    """The photograph inside a jigzo puzzle file, as a Pillow image.

    A .pzl is four header lines (magic, version, the puzzle's id, a URL) and then named blobs,
    each "NAME\\nLENGTH\\n" and LENGTH bytes: ID.map (text; its line "image X Y W H ..." is
    where the picture lies in the texture), ID-t.jpg (a thumbnail), ID.png (the pieces' alpha)
    and ID.jpg (the 1024x1024 texture).
    """
    import io

    from PIL import Image

    data = pzl.read_bytes()
    head = data.split(b"\n", 4)
    if len(head) < 5 or head[0] != b"PzlF":
        raise ValueError(f"{pzl}: not a jigzo puzzle file")
    ident, rest, blobs = head[2].decode(errors="replace"), head[4], {}
    while rest:
        fields = rest.split(b"\n", 2)
        if len(fields) < 3 or not fields[1].isdigit():
            raise ValueError(f"{pzl}: a damaged puzzle file (a blob without its length)")
        name, length, rest = fields[0].decode(errors="replace"), int(fields[1]), fields[2]
        blobs[name], rest = rest[:length], rest[length:]
    lines = blobs.get(f"{ident}.map", b"").splitlines()
    rect = [ln.split()[1:5] for ln in lines if ln.startswith(b"image ")]
    if not rect or f"{ident}.jpg" not in blobs:
        raise ValueError(f"{pzl}: no picture rectangle or texture in the puzzle file")
    x, y, w, h = (int(v) for v in rect[0])
    texture = Image.open(io.BytesIO(blobs[f"{ident}.jpg"])).convert("RGB")
    if w < 1 or h < 1 or x + w > texture.width or y + h > texture.height:
        raise ValueError(f"{pzl}: the picture rectangle lies outside the {texture.size} texture")
    return texture.crop((x, y, x + w, y + h))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"[{DEFAULT_OUT}]")
    args = ap.parse_args(argv)
    try:
        every = sources()
    except ImportError as err:
        print(
            f"error: {err.name} is not installed: pip install -e '.[efficientnet]'", file=sys.stderr
        )
        return 1
    found = [(f, n, w) for f, n, w in every if f.is_file()]
    missing = [str(f) for f, _, _ in every if not f.is_file()]
    if missing:
        print(
            f"error: {len(missing)} photo(s) missing (first: {missing[0]}): run `bash "
            "scripts/setup_system.sh --photos` as root",
            file=sys.stderr,
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for file, name, where in found:
        if file.suffix == ".pzl":
            try:
                picture = jigzo_picture(file)
            except (ValueError, OSError) as err:  # a puzzle file of another format or version
                print(f"error: {err}", file=sys.stderr)
                return 1
            picture.save(args.out / name)
            where += " (cut out of the puzzle's texture)"
        else:
            shutil.copyfile(file, args.out / name)
        lines.append(f"{name}\t{where}\t{file}")
    (args.out / "SOURCES.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(found)} photos in {args.out} (see {args.out / 'SOURCES.txt'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
