"""Migration packages for tests: an app's real migrations plus one more, selected with MIGRATION_MODULES.

A package's ``__path__`` lists its own folder and the app's real migrations folder, so the loader finds the
real migrations (whatever later ones another change adds) and the extra one, which depends on the real leaf.
"""

from __future__ import annotations

import importlib
import pkgutil


def with_real(own_path: list[str], real_package: str) -> list[str]:
    real = importlib.import_module(real_package)
    return [*own_path, *[entry for entry in real.__path__ if entry not in own_path]]


def latest_real(real_package: str) -> str:
    real = importlib.import_module(real_package)
    names = [
        name for _, name, is_pkg in pkgutil.iter_modules(real.__path__) if not is_pkg and name[0] not in "_~"
    ]
    return max(names)
