"""Installers for the editor plugins, one module per editor (``krita``, ``gimp``); ``common`` holds what they share.

Each target module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``install(args) -> int``;
``impasto.commands.install_plugin`` discovers them, so adding an editor is adding a module here.
"""
