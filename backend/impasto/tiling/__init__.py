"""Very large canvases: tile grids with blending, instance norm with whole-canvas statistics, memory policy, and
the tiled MT / optimization-engine paths (see docs/large_canvases.md).

Entry points: ``impasto.tiling.mt_tiled.stylize_tiled`` (MT at any size) and
``impasto.tiling.optim_tiled.refine_full_resolution`` (full-resolution pass after an optimization engine).
"""
