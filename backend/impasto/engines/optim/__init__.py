"""Optimization-based engines: Gatys (L-BFGS or Adam on the pixels) and STROTSS (coarse-to-fine over scales on a
Laplacian-pyramid parameterization with RMSprop).  ``common`` holds what both share (resizing, previews, seeds)."""
