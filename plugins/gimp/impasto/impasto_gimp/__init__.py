"""Impasto for GIMP 3: the plug-in's logic, in plain Python (no GIMP imports outside ``gimp_api``).

``impasto.py`` (the executable GIMP loads) registers the procedures and hands over to ``stylize`` / ``keypoints``;
every call into GIMP goes through ``gimp_api``, so the rest is tested without GIMP (tests/test_gimp_*.py).
"""
