"""Methods from outside the package: the ``hashkit.methods`` entry-point group and ``--plugin``.

A package adds a method without touching hashkit by declaring an entry point::

    # pyproject.toml of the package "mymethods"
    [project.entry-points."hashkit.methods"]
    mymethod = "mymethods.mine"              # a module whose import calls @register_method
    other = "mymethods.other:OtherMethod"    # or a Method subclass, registered under "other"

``hashkit train``, ``hashkit encode`` and ``hashkit list-methods`` load every such entry point
(installed code, trusted like hashkit itself), and ``--plugin MODULE`` imports a module by
name for one command (a file you are writing, on ``PYTHONPATH``). A broken entry point gives one
warning and hides nothing else; a broken ``--plugin`` is an error, since it was asked for.

Modules are imported only when named on the command line or declared by an installed
package: a run folder's ``config.json`` that names plugins is never a reason to import them
(``hashkit encode`` says which ``--plugin`` to pass instead).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Iterable

__all__ = ["ENTRY_POINT_GROUP", "load_plugins", "loaded_plugins"]

ENTRY_POINT_GROUP = "hashkit.methods"

_LOADED: list[str] = []
_ENTRY_POINTS_DONE = False


def _register(name: str, obj, origin: str) -> None:
    from . import _REGISTRY, register_method
    from .base import Method

    if isinstance(obj, type) and issubclass(obj, Method):
        if _REGISTRY.get(name) is not obj and obj not in _REGISTRY.values():
            register_method(name)(obj)
    elif not hasattr(obj, "__file__"):  # a module registers its methods by being imported
        raise TypeError(f"{origin}: expected a module or a Method subclass, got {obj!r}")


def _load_entry_points() -> None:
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return
    _ENTRY_POINTS_DONE = True
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            _register(ep.name, ep.load(), f"entry point {ep.name} = {ep.value}")
        except Exception as exc:
            warnings.warn(f"hashkit.methods entry point {ep.name!r} ({ep.value}) could not be loaded: {exc!r}",
                          RuntimeWarning, stacklevel=3)
            continue
        _LOADED.append(f"entry point {ep.name} = {ep.value}")


def load_plugins(modules: Iterable[str] = (), entry_points: bool = True) -> list[str]:
    """Import plugin ``modules`` (and, once, every ``hashkit.methods`` entry point).

    Parameters
    ----------
    modules : iterable of str
        Module names (``pkg.mod``), or ``pkg.mod:Class`` for a Method subclass to register
        under its class attribute ``name`` (or its lower-cased class name).
    entry_points : bool
        Also load the installed entry points (done once per process).

    Returns
    -------
    list of str
        What has been loaded so far in this process.

    Raises
    ------
    ValueError
        A module that cannot be imported, or ``:Class`` that is not in it.
    """
    if entry_points:
        _load_entry_points()
    for spec in modules or ():
        mod_name, _, attr = str(spec).partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except Exception as exc:
            raise ValueError(f"--plugin: cannot import {mod_name!r} ({type(exc).__name__}: {exc})") from None
        obj = mod
        if attr:
            if not hasattr(mod, attr):
                raise ValueError(f"--plugin: module {mod_name!r} has no {attr!r}")
            obj = getattr(mod, attr)
            _register(getattr(obj, "name", "") or attr.lower(), obj, f"--plugin {spec}")
        if f"--plugin {spec}" not in _LOADED:
            _LOADED.append(f"--plugin {spec}")
    return list(_LOADED)


def loaded_plugins() -> list[str]:
    """What :func:`load_plugins` has loaded in this process."""
    return list(_LOADED)
