"""Losses on VGG19 features: content, Gram style, STROTSS (REMD, moments, palette, self-similarity), TV."""
