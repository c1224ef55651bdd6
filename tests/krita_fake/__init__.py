"""Fake Krita for the plugin's logic tests (see krita.py)."""
