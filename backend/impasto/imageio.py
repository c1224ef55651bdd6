"""Reading and writing images as tensors, so that files open the way the artist sees them, with errors she can act on.

Tensors are (1, C, H, W) float32 in [0, 1], C = 3 (RGB) or 4 (RGBA), in sRGB.

Reading (``read_image``):

* the EXIF orientation is applied (a phone's portrait JPEG stands upright);
* an embedded ICC profile that is not sRGB is converted to sRGB (LittleCMS, relative colorimetric), 8 and 16 bit;
* 16-bit PNG (48/64-bit RGB/RGBA, which Pillow reads as 8 bit) and 8/16-bit TIFF keep their precision: they are
  decoded by ``imagecodecs`` (PNG) and ``tifffile`` (TIFF), both from the maintainer of the scientific imaging
  codecs, because Pillow has no 16-bit RGB mode.  Everything else goes through Pillow.

Writing (``save_image``): ``bits=16`` writes 16-bit PNG or TIFF (8 bit for formats that have no 16-bit form, e.g.
JPEG); every output carries an sRGB ICC profile, and PNG outputs may carry text chunks (the result's recipe).

Every error names the file and the problem (``ImageError``).
"""
from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, UnidentifiedImageError

from .errors import ImpastoError

log = logging.getLogger(__name__)

MIN_SIDE = 8
MAX_PIXELS = 268_435_456          # 16384²; the daemon has its own configurable limit
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
EXIF_ORIENTATION = 0x0112


class ImageError(ImpastoError, ValueError):
    """The file is missing, unreadable or of an unusable size."""


@dataclass
class Picture:
    """An image read from a file: the pixels in sRGB, and what was done to get them there.

    ``bits`` is the precision stored in the file (8 or 16; 32-bit float TIFFs report 16 since that is what they are
    written back as); ``converted_from`` names the ICC profile converted to sRGB (None: the file was sRGB or
    untagged); ``orientation`` is the EXIF orientation that was applied (1 = none).
    """

    tensor: torch.Tensor
    bits: int = 8
    converted_from: str | None = None
    orientation: int = 1
    text: dict[str, str] | None = None       # PNG text chunks (a result's recipe lives there)


def load_image(path: str | Path, *, keep_alpha: bool = False, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """The pixels of ``path`` as a (1, 3|4, H, W) sRGB tensor (see ``read_image``)."""
    return read_image(path, keep_alpha=keep_alpha, max_pixels=max_pixels).tensor


def read_image(path: str | Path, *, keep_alpha: bool = False, max_pixels: int = MAX_PIXELS) -> Picture:
    """Read ``path`` upright, in sRGB, at its own bit depth.  Raises ``ImageError`` naming the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image")
    Image.MAX_IMAGE_PIXELS = max(max_pixels, 1)
    try:
        with Image.open(p) as im:
            w, h = im.size
            check_size(w, h, max_pixels=max_pixels, what=str(p))
            icc = im.info.get("icc_profile") or None
            orientation = _orientation(im)
            text = {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)} if im.format == "PNG" else {}
            arr = _decode(p, im, keep_alpha)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as e:
        raise ImageError(f"{p}: not a readable image ({e.__class__.__name__}: {e})") from None
    bits = 16 if arr.dtype != np.uint8 else 8
    converted_from = None
    if icc is not None:
        try:
            arr, converted_from = _to_srgb(arr, icc)
        except Exception as e:  # a broken or unsupported profile: the file still opens, as if untagged
            log.warning("%s: its ICC profile could not be converted to sRGB (%s); reading it as sRGB", p, e)
    arr = _apply_orientation(arr, orientation)
    scale = 255.0 if arr.dtype == np.uint8 else 65535.0 if arr.dtype == np.uint16 else 1.0
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / np.float32(scale)).permute(2, 0, 1).unsqueeze(0)
    return Picture(t.clamp_(0, 1), bits=bits, converted_from=converted_from, orientation=orientation, text=text or None)


def check_size(w: int, h: int, *, max_pixels: int = MAX_PIXELS, what: str = "image") -> None:
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{what}: {w}×{h} is too small (each side must be at least {MIN_SIDE} px)")
    if w * h > max_pixels:
        raise ImageError(f"{what}: {w}×{h} = {w * h / 1e6:.0f} MP is larger than the limit of {max_pixels / 1e6:.0f} MP")


# ------------------------------------------------------------------------------------------------------ decoding

def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)


def _is_16bit_png(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(33)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[24] == 16


def _decode(p: Path, im: Image.Image, keep_alpha: bool) -> np.ndarray:
    """(H, W, 3|4) uint8, uint16 or float32 in [0, 1], before orientation and colour management."""
    arr: np.ndarray | None = None
    if im.format == "PNG" and _is_16bit_png(p):
        import imagecodecs
        arr = imagecodecs.png_decode(p.read_bytes())
    elif im.format == "TIFF":
        import tifffile
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            if page.dtype is not None and page.dtype.itemsize > 1 and page.photometric in (1, 2):  # 16/32-bit grey/RGB
                arr = page.asarray()
                if arr.dtype.kind == "f":
                    arr = np.clip(arr.astype(np.float32), 0, 1)
                elif arr.dtype != np.uint16:
                    arr = (arr.astype(np.float64) / np.iinfo(arr.dtype).max * 65535 + 0.5).astype(np.uint16)
    elif im.mode in ("I;16", "I;16B", "I;16L"):
        arr = np.asarray(im).astype(np.uint16)
    if arr is None:
        im = im.convert("RGBA" if (keep_alpha and _has_alpha(im)) else "RGB")
        return np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (1, 2):                        # grey (+ alpha)
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    arr = arr[..., :4]
    if not keep_alpha or arr.shape[2] != 4:
        arr = arr[..., :3]
    return arr


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block never stops the file from opening
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels upright, as EXIF orientation 1..8 says (the same as ``ImageOps.exif_transpose``)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.transpose(a, (1, 0, 2)),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](arr) if orientation in ops else arr


def profile_name(icc: bytes) -> str:
    """The ICC profile's description ("sRGB IEC61966-2.1", "Adobe RGB (1998)" ...), or "" if it has none."""
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:
        return ""


def _to_srgb(arr: np.ndarray, icc: bytes) -> tuple[np.ndarray, str | None]:
    """Convert RGB pixels tagged with ``icc`` to sRGB.  Returns (pixels, the profile's name) or (arr, None) when the
    profile is sRGB already.  LittleCMS through ``imagecodecs`` so 16-bit pixels keep 16 bits (Pillow's ImageCms
    transforms only 8-bit images); alpha is carried through."""
    name = profile_name(icc)
    if "srgb" in name.lower():
        return arr, None
    import imagecodecs
    rgb = np.ascontiguousarray(arr[..., :3])
    if rgb.dtype == np.float32:
        rgb = (rgb * 65535 + 0.5).astype(np.uint16)
    out = imagecodecs.cms_transform(rgb, icc, _srgb_icc(), colorspace="rgb", outcolorspace="rgb")
    if arr.dtype == np.float32:
        out = out.astype(np.float32) / 65535.0
    if arr.shape[2] == 4:
        out = np.concatenate([out, arr[..., 3:]], axis=2)
    log.info("converted from ICC profile %r to sRGB", name or "(unnamed)")
    return out, name or "unnamed ICC profile"


_SRGB_ICC: bytes | None = None


def _srgb_icc() -> bytes:
    """LittleCMS' sRGB profile (what every output is tagged with)."""
    global _SRGB_ICC
    if _SRGB_ICC is None:
        _SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _SRGB_ICC


def pil_to_tensor(im: Image.Image, *, keep_alpha: bool = False) -> torch.Tensor:
    has_alpha = _has_alpha(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0)
        arr = np.repeat(arr[..., None], 3, axis=2)
    else:
        im = im.convert("RGBA" if (keep_alpha and has_alpha) else "RGB")
        arr = np.asarray(im, dtype=np.float32) / 255.0
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    return t.clamp_(0, 1)


# ------------------------------------------------------------------------------------------------------ writing

def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    arr = to_uint8(t)
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1,C,H,W) float -> (H,W,C) uint8, rounding like ``save_image``."""
    if t.dim() == 4:
        t = t[0]
    return (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def to_uint16(t: torch.Tensor) -> np.ndarray:
    """(1,C,H,W) float -> (H,W,C) uint16, rounded."""
    if t.dim() == 4:
        t = t[0]
    return (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 65535.0 + 0.5).astype(np.uint16)


def output_bits(path: str | Path, bits: int) -> int:
    """The bit depth ``save_image`` will really write to ``path`` when asked for ``bits``."""
    return 16 if bits == 16 and Path(path).suffix.lower() in SIXTEEN_BIT_SUFFIXES else 8


def save_image(t: torch.Tensor, path: str | Path, *, bits: int = 8, text: dict[str, str] | None = None) -> Path:
    """Write ``t`` to ``path``, tagged sRGB, at ``bits`` (8, or 16 for PNG/TIFF), with PNG text chunks ``text``."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise ImageError(f"{p}: folder {p.parent} does not exist")
    suffix = p.suffix.lower()
    try:
        if output_bits(p, bits) == 16 and suffix == ".png":
            p.write_bytes(_png16(to_uint16(t), text or {}))
        elif output_bits(p, bits) == 16:
            import tifffile
            tifffile.imwrite(p, to_uint16(t), photometric="rgb", iccprofile=_srgb_icc(),
                             description=(text or {}).get("impasto:recipe"), metadata=None)
        else:
            im = tensor_to_pil(t)
            kw: dict = {"icc_profile": _srgb_icc()}
            if suffix == ".png" and text:
                from PIL.PngImagePlugin import PngInfo
                info = PngInfo()
                for k, v in text.items():
                    info.add_itxt(k, v)
                kw["pnginfo"] = info
            if suffix in (".jpg", ".jpeg"):
                kw["quality"] = 95
            im.save(p, **kw)
    except OSError as e:
        raise ImageError(f"{p}: could not be written ({e.__class__.__name__}: {e})") from None
    return p


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png16(arr: np.ndarray, text: dict[str, str]) -> bytes:
    """A 16-bit RGB(A) PNG with an sRGB ICC profile (iCCP) and iTXt chunks, encoded by imagecodecs."""
    import imagecodecs
    png = imagecodecs.png_encode(np.ascontiguousarray(arr))
    ihdr_end = 8 + 8 + 13 + 4                       # signature, IHDR header, IHDR data, CRC
    extra = _chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(_srgb_icc()))
    for k, v in text.items():
        extra += _chunk(b"iTXt", k.encode("latin-1") + b"\x00\x00\x00\x00\x00" + v.encode("utf-8"))
    return png[:ihdr_end] + extra + png[ihdr_end:]


def sample_image(name: str = "astronaut") -> torch.Tensor:
    """A public-domain sample photo shipped by scikit-image (used by the demo, tests and docs)."""
    try:
        from skimage import data
    except ImportError as e:  # pragma: no cover - test/bench extra
        raise ImageError("sample images need scikit-image: pip install scikit-image") from e
    arr = getattr(data, name)()
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
