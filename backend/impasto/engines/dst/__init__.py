"""Deformable Style Transfer (Kim, Kolkin, Salavon, Shakhnarovich, ECCV 2020).

``keypoints`` (pair I/O and validation), ``nbb`` (automatic correspondences: Neural Best Buddies on VGG19),
``cleaning`` (DST's point selection and the Umeyama similarity), ``tps`` (the differentiable thin-plate-spline warp),
``engine`` (the joint optimisation of the stylised image and the warp), ``debug`` (overlays for artists).
"""
