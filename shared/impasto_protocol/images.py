"""Images on the wire: raw pixel buffers described by a small JSON object, never pickled.

An ``ImageBuffer`` is row-major, interleaved (``channels`` values per pixel), native little-endian for the 16/32-bit
types.  Rows may be padded (``stride`` bytes per row, at least ``width * channels * itemsize``); the buffer holds
exactly ``stride * height`` bytes.  Colour channels are R, G, B (or B, G, R when ``bgr`` is true -- Krita's integer
layout), alpha (straight, not premultiplied) last.  ``colorspace`` is ``"srgb"`` (gamma-encoded, the default) or
``"linear"``.

Stdlib only: the editor plugins import this module inside Krita and GIMP.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from .quoting import quote

DTYPES: dict[str, int] = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}   # name -> bytes per value
COLORSPACES = ("srgb", "linear")
DEFAULT_MAX_PIXELS = 268_435_456       # 16384², the daemon's default per-image limit
DESCRIPTION_FIELDS = ("width", "height", "channels", "dtype", "stride", "colorspace", "bgr", "buffer")

BufferLike = Union[bytes, bytearray, memoryview]


class ImageBufferError(ValueError):
    """An image description or its buffer is unusable.  ``code`` is the protocol error code
    (``"bad_image"`` or ``"too_large"``)."""

    def __init__(self, message: str, code: str = "bad_image"):
        super().__init__(message)
        self.code = code



def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def byte_length(data: Any) -> int:
    """Length in bytes of any buffer-protocol object (a memoryview of floats has len() != nbytes)."""
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    return memoryview(data).nbytes


def as_bytes_view(data: Any) -> memoryview:
    """A flat unsigned-byte memoryview of ``data`` without copying (C-contiguous buffers only)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        if not mv.c_contiguous:
            raise ImageBufferError("image data must be a C-contiguous buffer")
        mv = mv.cast("B")
    return mv


@dataclass
class ImageBuffer:
    """Pixels plus what is needed to read them.  ``data`` is any bytes-like object (kept as given: no copy)."""

    width: int
    height: int
    channels: int
    dtype: str = "u8"
    data: Any = field(default=b"", repr=False)
    stride: int | None = None            # bytes per row; None = width * channels * itemsize (tight)
    colorspace: str = "srgb"
    bgr: bool = False                    # colour channels stored B, G, R (alpha still last)

    def __post_init__(self) -> None:
        if self.stride is None and _is_int(self.width) and _is_int(self.channels) and isinstance(self.dtype, str) \
                and self.dtype in DTYPES:
            self.stride = self.width * self.channels * DTYPES[self.dtype]

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def row_bytes(self) -> int:
        """Bytes of pixel data in one row (without padding)."""
        return self.width * self.channels * self.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes the buffer must hold: ``stride * height``."""
        return int(self.stride or 0) * self.height

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    def validate(self, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> "ImageBuffer":
        """Check the description, then the buffer length.  Raises ``ImageBufferError``.  Allocates nothing."""
        self.validate_description(max_pixels)
        n = byte_length(self.data)
        if n != self.nbytes:
            raise ImageBufferError(
                f"image buffer holds {n} bytes but {self.width}×{self.height}×{self.channels} {self.dtype} "
                f"with a row stride of {self.stride} needs {self.nbytes}")
        return self

    def validate_description(self, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> "ImageBuffer":
        for name in ("width", "height", "channels"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ImageBufferError(f"image {name} must be a positive integer, got {quote(v)}")
        if self.channels > 4:
            raise ImageBufferError(f"image channels must be 1..4, got {self.channels}")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:      # {} or [] are not names either
            raise ImageBufferError(f"unknown image dtype {quote(self.dtype)}; choose one of {', '.join(DTYPES)}")
        if not isinstance(self.colorspace, str) or self.colorspace not in COLORSPACES:
            raise ImageBufferError(f"unknown colour space {quote(self.colorspace)}; choose one of "
                                   f"{', '.join(COLORSPACES)}")
        if not isinstance(self.bgr, bool):
            raise ImageBufferError("image 'bgr' must be true or false")
        if max_pixels is not None and self.width * self.height > max_pixels:
            raise ImageBufferError(
                f"image {self.width}×{self.height} = {self.width * self.height / 1e6:.1f} MP is larger than the "
                f"daemon's limit of {max_pixels / 1e6:.1f} MP", code="too_large")
        if self.stride is None or not _is_int(self.stride):
            raise ImageBufferError(f"image stride must be an integer, got {quote(self.stride)}")
        if self.stride < self.row_bytes:
            raise ImageBufferError(f"image stride {self.stride} is smaller than a row ({self.row_bytes} bytes)")
        if self.stride > self.row_bytes + 4096:
            raise ImageBufferError(f"image stride {self.stride} pads rows of {self.row_bytes} bytes by more than 4096")
        return self

    def describe(self, buffer_index: int) -> dict[str, Any]:
        """The JSON description of this image, pointing at buffer frame ``buffer_index``."""
        return {"width": self.width, "height": self.height, "channels": self.channels, "dtype": self.dtype,
                "stride": self.stride, "colorspace": self.colorspace, "bgr": self.bgr, "buffer": buffer_index}

    @classmethod
    def from_description(cls, desc: Any, buffers: Sequence[Any], *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                         what: str = "image", allow_chunks: bool = False) -> "ImageBuffer":
        """Build from a JSON description and the message's buffer frames, validating everything (no copies).

        With ``allow_chunks`` a description whose ``buffer`` is ``"chunks"`` (a streamed image) is validated
        and returned with ``data=None``; the caller fills it from the chunk messages."""
        if not isinstance(desc, dict):
            raise ImageBufferError(f"{what} must be a JSON object describing the image")
        unknown = sorted(set(desc) - set(DESCRIPTION_FIELDS))
        if unknown:
            raise ImageBufferError(f"{what}: unknown field(s) {', '.join(quote(k, 40) for k in unknown[:10])}")
        missing = [k for k in ("width", "height", "channels", "dtype", "buffer") if k not in desc]
        if missing:
            raise ImageBufferError(f"{what}: missing field(s) {', '.join(missing)}")
        idx = desc["buffer"]
        img = cls(width=desc["width"], height=desc["height"], channels=desc["channels"], dtype=desc["dtype"],
                  stride=desc.get("stride"), colorspace=desc.get("colorspace", "srgb"), bgr=desc.get("bgr", False))
        try:
            img.validate_description(max_pixels)
        except ImageBufferError as e:
            raise ImageBufferError(f"{what}: {e}", e.code) from None
        if allow_chunks and idx == "chunks":
            img.data = None
            return img
        if not _is_int(idx) or not 0 <= idx < len(buffers):
            raise ImageBufferError(f"{what}: buffer index {quote(idx)} does not name one of the {len(buffers)} "
                                   f"buffer frame(s) sent")
        img.data = buffers[idx]
        try:
            return img.validate(max_pixels)
        except ImageBufferError as e:
            raise ImageBufferError(f"{what}: {e}", e.code) from None

    def tight_bytes(self) -> BufferLike:
        """The pixel rows without padding (the buffer itself when the stride is already tight)."""
        mv = as_bytes_view(self.data)
        if self.stride == self.row_bytes:
            return mv
        out = bytearray(self.row_bytes * self.height)
        rb = self.row_bytes
        for y in range(self.height):
            out[y * rb:(y + 1) * rb] = mv[y * self.stride:y * self.stride + rb]
        return out
