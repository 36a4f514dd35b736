"""Flag renditions: where each package keeps a country's flag, and rendering to N×N RGB PNGs.

Four renditions go into training and the memory; Twemoji is held out as the dev query image.
No other flag artwork is used (world-countries' data/*.svg are map outlines and are not read).

  iso-flags   Debian iso-flags-png-320x240   /usr/share/iso-flags-png-320x240/<iso2>.png
  flag-icons  npm flag-icons                 flags/4x3/<iso2>.svg, rendered by rsvg-convert
  noto-emoji  npm emoji-datasource-google    img/google/64/<regional indicators>.png
  kgeography  Debian kgeography-data         /usr/share/kgeography/flags/*.png, named in the
                                             "Countries" maps (*.kgm)
  twemoji     npm emoji-datasource-twitter   img/twitter/64/<regional indicators>.png (dev only)

Rendering: composite over white, crop to the opaque part (emoji flags float on a transparent
square), then resize to N×N without keeping the aspect ratio, so every rendition fills the
whole image the model sees. Output is a plain RGB PNG written by Pillow: identical bytes on
every run.
"""

import glob
import io
import os
import subprocess
import xml.etree.ElementTree as ET

from PIL import Image

from flagutil import BuildError, write_if_changed

TRAIN_RENDITIONS = ("iso-flags", "flag-icons", "noto-emoji", "kgeography")
DEV_RENDITION = "twemoji"
ISO_FLAGS_DIR = "/usr/share/iso-flags-png-320x240"
KGEOGRAPHY_DIR = "/usr/share/kgeography"
SVG_RENDER_WIDTH = 320  # flag-icons' 4x3 SVGs are rasterised at 320×240 before the resize


def _emoji_name(iso2):
    """An emoji flag is a pair of regional indicator symbols: NP -> 1f1f3-1f1f5.png."""
    return "-".join(f"{0x1F1E6 + ord(ch) - ord('A'):x}" for ch in iso2) + ".png"


def _kgeography_flags(registry):
    """iso2 -> flag file, from every kgeography map whose divisions are countries."""
    found = {}
    for kgm in sorted(glob.glob(os.path.join(KGEOGRAPHY_DIR, "*.kgm"))):
        try:
            root = ET.parse(kgm).getroot()
        except ET.ParseError as e:
            raise BuildError(f"{kgm}: not valid XML: {e}") from e
        if (root.findtext("divisionsName") or "").strip() != "Countries":
            continue
        for division in root.iter("division"):
            name, flag = division.findtext("name"), division.findtext("flag")
            iso2 = registry.resolve(name or "")
            path = os.path.join(KGEOGRAPHY_DIR, "flags", (flag or "").strip())
            if iso2 and flag and os.path.isfile(path):
                found.setdefault(iso2, path)
    return found


def find_renditions(npm, registry):
    """{iso2: {rendition: source file}} for every country that has at least one rendition."""
    kgeography = _kgeography_flags(registry)
    out = {}
    for iso2 in sorted(registry.countries):
        low = iso2.lower()
        candidates = {
            "iso-flags": os.path.join(ISO_FLAGS_DIR, low + ".png"),
            "flag-icons": os.path.join(npm, "flag-icons", "flags", "4x3", low + ".svg"),
            "noto-emoji": os.path.join(npm, "emoji-datasource-google", "img", "google", "64", _emoji_name(iso2)),
            "kgeography": kgeography.get(iso2, ""),
            "twemoji": os.path.join(npm, "emoji-datasource-twitter", "img", "twitter", "64", _emoji_name(iso2)),
        }
        present = {k: v for k, v in candidates.items() if v and os.path.isfile(v)}
        if present:
            out[iso2] = present
    return out


def _load(source):
    if source.endswith(".svg"):
        try:
            png = subprocess.run(["rsvg-convert", "--width", str(SVG_RENDER_WIDTH), source],
                                 check=True, capture_output=True).stdout
        except FileNotFoundError as e:
            raise BuildError("rsvg-convert not found (install the Debian package librsvg2-bin)") from e
        except subprocess.CalledProcessError as e:
            raise BuildError(f"{source}: rsvg-convert failed: {e.stderr.decode(errors='replace').strip()}") from e
        return Image.open(io.BytesIO(png))
    return Image.open(source)


def render(source, out_path, size):
    """Renders one flag file to an N×N RGB PNG at out_path (written atomically)."""
    try:
        image = _load(source)
        image.load()
    except (OSError, ValueError) as e:
        raise BuildError(f"{source}: cannot read image: {e}") from e
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox()
    if box is None:
        raise BuildError(f"{source}: image is fully transparent")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB").crop(box)
    flat = flat.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    flat.save(buf, format="PNG", optimize=False, compress_level=9)
    write_if_changed(out_path, buf.getvalue())
