"""Hashing methods and their registry (the CLI reads the registry, not a chain of ifs).

>>> from hashkit.methods import list_methods, get_method
>>> "dcmh" in list_methods()
True
>>> cls = get_method("dcmh")               # the Method subclass

To add a method: decorate a :class:`hashkit.methods.base.Method` subclass with
``@register_method("name")`` in its own file in this package; every module here is imported
automatically (see ``hashkit/methods/base.py`` for the full recipe).
"""

from __future__ import annotations

from .base import Method, TrainData

__all__ = ["Method", "TrainData", "register_method", "get_method", "list_methods"]

_REGISTRY: dict[str, type] = {}


def register_method(name: str):
    """Class decorator: register a :class:`Method` subclass under ``name``.

    Raises
    ------
    TypeError
        The class does not derive from :class:`Method`.
    ValueError
        ``name`` is already registered to another class.
    """
    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}): expected a Method subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"register_method: name {name!r} is already used by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_method(name: str) -> type:
    """The registered class called ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones).
    """
    from .._validate import check_choice

    check_choice(name, sorted(_REGISTRY), "method")
    return _REGISTRY[name]


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_REGISTRY)


# Importing a method module registers it. Every module in this package (except base,
# diagnostics and private ones) is imported, so a new method needs no edit here. Each import is guarded so
# that a method file still being written cannot hide the others.
def _import_methods() -> None:
    import importlib
    import pkgutil
    import warnings

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in ("base", "diagnostics") or info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:
            warnings.warn(f"hashkit.methods.{info.name} could not be imported: {exc!r}", RuntimeWarning, stacklevel=2)


_import_methods()
