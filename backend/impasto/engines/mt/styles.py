"""Where MT style models live, and how a style name finds its file.

* Shipped styles: ``weights/styles/*.safetensors`` in the source tree (an editable install or a checkout); a
  wheel installs the same files as data files into ``<prefix>/share/impasto/styles`` (pyproject's
  ``tool.setuptools.data-files``).  ``IMPASTO_STYLES_DIR`` overrides both.
* User-trained styles: ``<user data dir>/styles/*.safetensors`` where the user data dir is
  ``platformdirs.user_data_dir("impasto")`` or ``$IMPASTO_DATA_DIR``.  ``impasto train`` writes there.

A style's name is its file's stem.  A user style with the same name as a shipped one takes precedence (it is what
the user trained last).  Files that cannot be read are listed with their error instead of hiding them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .model_file import ModelFileError, StyleMetadata, read_metadata

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"


SOURCE_TREE_STYLES = Path(__file__).resolve().parents[4] / "weights" / "styles"


def _installed_styles_dirs() -> list[Path]:
    """Where a wheel's data files land: the prefix of the environment the package was installed into (found
    from this file's site-packages, so it works for venvs, --prefix and --user installs alike), then sys.prefix."""
    import site
    import sys
    import sysconfig
    candidates = []
    here = Path(__file__).resolve()
    for parent in here.parents:
        if parent.name == "site-packages":
            # <prefix>/lib/pythonX.Y/site-packages (posix) or <prefix>/Lib/site-packages (Windows)
            prefix = parent.parent.parent if parent.parent.name.startswith("python") else parent.parent
            candidates.append(prefix / "share" / "impasto" / "styles")
            break
    candidates.append(Path(sysconfig.get_path("data")) / "share" / "impasto" / "styles")
    candidates.append(Path(sys.prefix) / "share" / "impasto" / "styles")
    if site.ENABLE_USER_SITE and site.USER_BASE:
        candidates.append(Path(site.USER_BASE) / "share" / "impasto" / "styles")
    return candidates


def shipped_styles_dir() -> Path:
    env = os.environ.get("IMPASTO_STYLES_DIR")
    if env:
        return Path(env)
    if SOURCE_TREE_STYLES.is_dir():
        return SOURCE_TREE_STYLES
    for d in _installed_styles_dirs():
        if d.is_dir():
            return d
    return SOURCE_TREE_STYLES          # nothing installed: report the source-tree location in messages


def user_data_dir() -> Path:
    env = os.environ.get("IMPASTO_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_data_dir("impasto"))


def user_styles_dir() -> Path:
    return user_data_dir() / "styles"


@dataclass
class StyleInfo:
    name: str
    path: Path
    source: str                                # "shipped" | "user"
    metadata: Optional[StyleMetadata] = None   # None when the file is unreadable
    error: str = ""                            # why it is unreadable

    @property
    def ok(self) -> bool:
        return self.metadata is not None

    def describe(self) -> str:
        if not self.ok:
            return f"unreadable: {self.error}"
        return self.metadata.describe()


def _scan(directory: Path, source: str) -> list[StyleInfo]:
    if not directory.is_dir():
        return []
    infos = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            infos.append(StyleInfo(path.stem, path, source, read_metadata(path)))
        except ModelFileError as e:
            log.warning("skipping unreadable style model %s: %s", path, e)
            infos.append(StyleInfo(path.stem, path, source, None, str(e)))
    return infos


def list_styles() -> list[StyleInfo]:
    """Shipped and user styles, sorted by name; a user style shadows a shipped one of the same name."""
    by_name: dict[str, StyleInfo] = {}
    for info in _scan(shipped_styles_dir(), "shipped") + _scan(user_styles_dir(), "user"):
        by_name[info.name] = info
    return sorted(by_name.values(), key=lambda i: i.name)


def find_style(name: str) -> StyleInfo | None:
    """The style called ``name`` (user first, then shipped), or None.  A path to a .safetensors file also works."""
    if name.endswith(SUFFIX) and Path(name).is_file():
        path = Path(name)
        try:
            return StyleInfo(path.stem, path, "file", read_metadata(path))
        except ModelFileError as e:
            return StyleInfo(path.stem, path, "file", None, str(e))
    for directory, source in ((user_styles_dir(), "user"), (shipped_styles_dir(), "shipped")):
        path = directory / f"{name}{SUFFIX}"
        if path.is_file():
            try:
                return StyleInfo(name, path, source, read_metadata(path))
            except ModelFileError as e:
                return StyleInfo(name, path, source, None, str(e))
    return None


def style_names() -> list[str]:
    return [i.name for i in list_styles() if i.ok]
