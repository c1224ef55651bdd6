"""Impasto backend: engines (MT, DST, Gatys, STROTSS), losses, VGG19 loss network, tiling and the ZeroMQ daemon."""
__version__ = "0.1.0"
