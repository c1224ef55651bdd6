"""Differentiable thin-plate-spline (TPS) warp driven by keypoint displacements, as in DST (Kim et al. 2020).

Formulation (papers.md B.5)
---------------------------
* Control points are the *destinations* d_i = p_i + θ_i of the moved keypoints, plus fixed anchors on the image
  border (corners and evenly spaced points on each side) whose displacement is zero.
* The displacement field f is the 2-D thin-plate spline (polyharmonic spline with kernel φ(r) = r² log r and a
  degree-1 polynomial) that interpolates f(d_i) = θ_i exactly (no smoothing)::

      f(q) = Σ_i w_i φ(|q − d_i|) + [q, 1] v,    [[Φ, P], [Pᵀ, 0]] [w; v] = [θ; 0]

  solved by a symmetric LDLᵀ factorisation (``symmetric_solve``), so the field is differentiable in θ (and in
  the points).
* Backward sampling: output(q) = input(q − f(q)).  A keypoint p_i therefore appears at d_i in the output.
* Resolution independence: the spline lives in a frame normalised by the long side of the image the points were
  given in (``frame_size`` = (W, H) in pixels → [0, W/L] × [0, H/L], L = max(W, H)).  Normalising both axes by the
  same length keeps distances isotropic, so the field is the same whatever resolution it is evaluated at.
  Pixel centres of an (h, w) image sit at ((j + ½)/w · W/L, (i + ½)/h · H/L).

Why not kornia's TPS: ``kornia.geometry.transform`` has the same kernel, but works in grid_sample's [−1, 1] frame
per axis (distances are anisotropic for non-square images, so the field changes with the aspect ratio) and builds
the whole (H·W) × N kernel matrix at once; here the dense field is evaluated in chunks under activation
checkpointing, so a 512² warp with a few hundred control points stays within a few hundred MB.

Checked against ``scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline")`` in ``tests/test_dst_tps.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

BORDER_PER_SIDE = 20          # anchors per image side besides the corners (DST's code uses 80)
CHUNK_ELEMENTS = 1 << 21      # points × centres per chunk of dense evaluation


def tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    """φ as a function of the squared distance: ½ r² log r² (= r² log r), 0 at r = 0 (with a finite gradient)."""
    safe = torch.where(r2 > 0, r2, torch.ones_like(r2))
    return 0.5 * r2 * torch.log(safe)


class _SymmetricSolve(torch.autograd.Function):
    """x = A⁻¹ b for a symmetric (indefinite) A by LDLᵀ (Bunch-Kaufman), differentiable in A and b.

    ``torch.linalg.solve`` goes through MKL's threaded LU, which on a busy 2-core machine took 0.1–0.3 s for a
    170² system (vs 0.2 ms for this), an order of magnitude more than a whole DST step at 128 px."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ld, piv = torch.linalg.ldl_factor(a)
        x = torch.linalg.ldl_solve(ld, piv, b)
        ctx.save_for_backward(ld, piv, x)
        return x

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        ld, piv, x = ctx.saved_tensors
        gb = torch.linalg.ldl_solve(ld, piv, g)          # A⁻ᵀ g = A⁻¹ g
        return -gb @ x.transpose(-1, -2), gb


def symmetric_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _SymmetricSolve.apply(a, b)


def _pairwise_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances (P, N) from the coordinate differences (exact also for nearby points)."""
    dx = a[:, :1] - b[:, 0]
    dy = a[:, 1:] - b[:, 1]
    return dx * dx + dy * dy


@dataclass
class ThinPlateSpline:
    """A fitted 2-D → D thin-plate spline: ``tps(points)`` evaluates it at (P, 2) points."""

    centres: torch.Tensor   # (N, 2)
    weights: torch.Tensor   # (N, D)
    affine: torch.Tensor    # (3, D): rows for x, y, 1

    @classmethod
    def fit(cls, centres: torch.Tensor, values: torch.Tensor) -> "ThinPlateSpline":
        """Exact interpolation of ``values`` (N, D) at ``centres`` (N, 2); needs 3 non-collinear centres.

        The system is solved in float64 whatever the input dtype (in float32 the flow is off by ~0.04 px with 80
        keypoints); the coefficients come back in the input dtype."""
        n = centres.shape[0]
        if n < 3:
            raise ValueError(f"a thin-plate spline needs at least 3 centres, got {n}")
        c64, v64 = centres.double(), values.double()
        k = tps_kernel(_pairwise_sq(c64, c64))
        p = torch.cat([c64, c64.new_ones(n, 1)], dim=1)
        top = torch.cat([k, p], dim=1)
        bottom = torch.cat([p.t(), c64.new_zeros(3, 3)], dim=1)
        system = torch.cat([top, bottom], dim=0)
        rhs = torch.cat([v64, v64.new_zeros(3, values.shape[1])], dim=0)
        sol = symmetric_solve(system, rhs).to(values.dtype)
        return cls(centres, sol[:n], sol[n:])

    def _eval(self, q: torch.Tensor, centres: torch.Tensor, weights: torch.Tensor,
              affine: torch.Tensor) -> torch.Tensor:
        return tps_kernel(_pairwise_sq(q, centres)) @ weights + q @ affine[:2] + affine[2]

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        n = self.centres.shape[0]
        chunk = max(1024, CHUNK_ELEMENTS // max(n, 1))
        if points.shape[0] <= chunk:
            return self._eval(points, self.centres, self.weights, self.affine)
        needs_grad = torch.is_grad_enabled() and any(
            t.requires_grad for t in (points, self.centres, self.weights, self.affine))
        out = []
        for q in points.split(chunk):
            if needs_grad:   # keep only the chunk's inputs; the kernel block is recomputed in backward
                out.append(checkpoint(self._eval, q, self.centres, self.weights, self.affine, use_reentrant=False))
            else:
                out.append(self._eval(q, self.centres, self.weights, self.affine))
        return torch.cat(out)


# ------------------------------------------------------------------------------------------------------ frame

def frame_extent(frame_size: tuple[float, float]) -> tuple[float, float]:
    """(W/L, H/L) for a frame of (W, H) pixels."""
    w, h = float(frame_size[0]), float(frame_size[1])
    long_side = max(w, h)
    return w / long_side, h / long_side


def border_anchors(frame_size: tuple[float, float], per_side: int = BORDER_PER_SIDE,
                   dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> torch.Tensor:
    """(4 + 4·per_side, 2) normalised points on the frame border: the 4 corners and ``per_side`` per side."""
    ew, eh = frame_extent(frame_size)
    t = torch.linspace(0, 1, per_side + 2, dtype=torch.float64)[1:-1]
    pts = [torch.tensor([[0, 0], [ew, 0], [0, eh], [ew, eh]], dtype=torch.float64),
           torch.stack([t * ew, torch.zeros_like(t)], 1), torch.stack([t * ew, torch.full_like(t, eh)], 1),
           torch.stack([torch.zeros_like(t), t * eh], 1), torch.stack([torch.full_like(t, ew), t * eh], 1)]
    return torch.cat(pts).to(dtype=dtype, device=device)


def pixel_centres(size: tuple[int, int], frame_size: tuple[float, float], dtype: torch.dtype = torch.float32,
                  device: torch.device | None = None) -> torch.Tensor:
    """(h·w, 2) normalised coordinates of the pixel centres of an image of ``size`` = (h, w), row-major."""
    h, w = size
    ew, eh = frame_extent(frame_size)
    ys = (torch.arange(h, dtype=dtype, device=device) + 0.5) * (eh / h)
    xs = (torch.arange(w, dtype=dtype, device=device) + 0.5) * (ew / w)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def fit_displacement(src: torch.Tensor, dst: torch.Tensor, frame_size: tuple[float, float],
                     border_per_side: int = BORDER_PER_SIDE) -> ThinPlateSpline:
    """The TPS displacement field (normalised units) with f(dst_i) = dst_i − src_i and f = 0 on the border anchors.

    ``src``, ``dst``: (K, 2) pixel coordinates (x, y) in the frame of ``frame_size`` = (W, H)."""
    long_side = float(max(frame_size))
    s, d = src / long_side, dst / long_side
    anchors = border_anchors(frame_size, border_per_side, dtype=d.dtype, device=d.device)
    centres = torch.cat([d, anchors])
    values = torch.cat([d - s, torch.zeros_like(anchors)])
    return ThinPlateSpline.fit(centres, values)


def dense_flow(tps: ThinPlateSpline, size: tuple[int, int], frame_size: tuple[float, float]) -> torch.Tensor:
    """(1, 2, h, w) displacement at the pixel centres of an (h, w) image, in that image's pixels (x, y)."""
    h, w = size
    ew, eh = frame_extent(frame_size)
    q = pixel_centres(size, frame_size, dtype=tps.weights.dtype, device=tps.weights.device)
    f = tps(q)
    scale = torch.tensor([w / ew, h / eh], dtype=f.dtype, device=f.device)
    return (f * scale).t().reshape(1, 2, h, w)


def smooth_flow(tps: ThinPlateSpline, size: tuple[int, int], frame_size: tuple[float, float],
                max_side: int = 128) -> torch.Tensor:
    """``dense_flow`` evaluated on a lattice of at most ``max_side`` + 1 points a side that spans the frame edge to
    edge, bilinearly interpolated at the pixel centres of ``size``.  The spline is smooth, so at 4x the error is
    a few hundredths of a pixel for a fraction of the cost; used inside the optimisation loop (the final warp
    uses the exact field)."""
    h, w = size
    if max(h, w) <= max_side:
        return dense_flow(tps, size, frame_size)
    ew, eh = frame_extent(frame_size)
    nw = max(2, round(max_side * w / max(h, w)) + 1)
    nh = max(2, round(max_side * h / max(h, w)) + 1)
    dt = tps.weights.dtype
    dev = tps.weights.device
    gy, gx = torch.meshgrid(torch.linspace(0, eh, nh, dtype=dt, device=dev),
                            torch.linspace(0, ew, nw, dtype=dt, device=dev), indexing="ij")
    coarse = tps(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
    coarse = (coarse * torch.tensor([w / ew, h / eh], dtype=dt, device=dev)).t().reshape(1, 2, nh, nw)
    ys = (torch.arange(h, dtype=dt, device=dev) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=dt, device=dev) + 0.5) / w * 2 - 1
    my, mx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([mx, my], -1).unsqueeze(0)
    return F.grid_sample(coarse, grid, mode="bilinear", align_corners=True)


def sample_backward(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """output(q) = image(q − flow(q)) with clamp-to-edge; ``flow`` (1, 2, h, w) in pixels of ``image``."""
    n, _, h, w = image.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device) + 0.5
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    sx = (gx - flow[0, 0]) * (2.0 / w) - 1.0
    sy = (gy - flow[0, 1]) * (2.0 / h) - 1.0
    grid = torch.stack([sx, sy], dim=-1).unsqueeze(0).expand(n, h, w, 2).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=False)


def tps_warp(image: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, *,
             frame_size: tuple[float, float] | None = None, border_per_side: int = BORDER_PER_SIDE,
             mode: str = "bilinear", return_flow: bool = False):
    """Warp ``image`` (N, C, h, w) so that the content at ``src`` moves to ``dst`` ((K, 2) pixel points (x, y)).

    The points are in pixels of ``frame_size`` = (W, H) (default: the image's own (w, h)); the image may have any
    resolution of the same aspect ratio.  Differentiable in ``image``, ``src`` and ``dst``.  ``mode``: grid_sample's
    "bilinear" (smooth gradients, used while optimising), "bicubic" (final output) or "nearest".
    Returns the warped image, and with ``return_flow`` also the (1, 2, h, w) displacement in image pixels."""
    h, w = image.shape[2:]
    frame_size = (w, h) if frame_size is None else frame_size
    dtype = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float32
    src, dst = src.to(image.device, dtype), dst.to(image.device, dtype)
    tps = fit_displacement(src, dst, frame_size, border_per_side)
    flow = dense_flow(tps, (h, w), frame_size)
    out = sample_backward(image, flow, mode)
    return (out, flow) if return_flow else out


class WarpedImage:
    """W(image, tps) at any output size, evaluated one box at a time (memory ∝ the box, not the canvas).

    ``read((y0, y1, x0, x1))`` returns (1, C, y1 − y0, x1 − x0): at each output pixel centre q, ``image`` sampled
    at q − f(q).  ``image`` is the small (working-size) picture, spanning the same frame as the output; it is
    sampled with grid_sample's bicubic (= bicubic upsampling evaluated at the warped point), so no full-size copy
    of it exists.  f is the spline evaluated once on a lattice of at most ``lattice_side`` + 1 points a side (as
    ``smooth_flow``), bilinearly interpolated per box: < 0.1 px off at 4096.  Used by DST for outputs larger than
    its working size, and as the ``read`` of the tiled full-resolution pass."""

    def __init__(self, image: torch.Tensor, tps: ThinPlateSpline, frame_size: tuple[float, float],
                 out_size: tuple[int, int], lattice_side: int = 1024):
        self.image = image.float()
        self.out_size = out_size
        h, w = out_size
        ew, eh = frame_extent(frame_size)
        nw = max(2, round(lattice_side * w / max(h, w)) + 1)
        nh = max(2, round(lattice_side * h / max(h, w)) + 1)
        dt, dev = tps.weights.dtype, tps.weights.device
        gy, gx = torch.meshgrid(torch.linspace(0, eh, nh, dtype=dt, device=dev),
                                torch.linspace(0, ew, nw, dtype=dt, device=dev), indexing="ij")
        with torch.no_grad():
            coarse = tps(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
        # the lattice's flow in output pixels, as a (1, 2, nh, nw) image spanning the frame edge to edge
        self.lattice = (coarse * torch.tensor([w / ew, h / eh], dtype=dt, device=dev)).t().reshape(1, 2, nh, nw)
        self.lattice = self.lattice.float().to(self.image.device)

    def flow(self, box: tuple[int, int, int, int]) -> torch.Tensor:
        """(1, 2, y1 − y0, x1 − x0) displacement in output pixels at the box's pixel centres."""
        y0, y1, x0, x1 = box
        h, w = self.out_size
        dev = self.lattice.device
        ys = (torch.arange(y0, y1, dtype=torch.float32, device=dev) + 0.5) / h * 2 - 1
        xs = (torch.arange(x0, x1, dtype=torch.float32, device=dev) + 0.5) / w * 2 - 1
        my, mx = torch.meshgrid(ys, xs, indexing="ij")
        return F.grid_sample(self.lattice, torch.stack([mx, my], -1)[None], mode="bilinear", align_corners=True)

    def read(self, box: tuple[int, int, int, int]) -> torch.Tensor:
        y0, y1, x0, x1 = box
        h, w = self.out_size
        f = self.flow(box)[0]
        dev = f.device
        ys = torch.arange(y0, y1, dtype=torch.float32, device=dev) + 0.5
        xs = torch.arange(x0, x1, dtype=torch.float32, device=dev) + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([(gx - f[0]) * (2.0 / w) - 1.0, (gy - f[1]) * (2.0 / h) - 1.0], dim=-1)[None]
        out = F.grid_sample(self.image, grid, mode="bicubic", padding_mode="border", align_corners=False)
        return out.clamp(0, 1)

    __call__ = read

    def render(self, band_rows: int = 256) -> torch.Tensor:
        """The whole output, assembled from row bands: (1, C, H, W) float32."""
        h, w = self.out_size
        out = torch.empty(1, self.image.shape[1], h, w, dtype=torch.float32, device=self.image.device)
        for r0 in range(0, h, band_rows):
            r1 = min(h, r0 + band_rows)
            out[:, :, r0:r1] = self.read((r0, r1, 0, w))
        return out
