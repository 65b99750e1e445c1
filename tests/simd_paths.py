"""The SIMD paths a test can force with ``HASHKIT_SIMD`` in this process's CPU.

The C++ module lists the paths it was compiled with lowest first (``build_info()``), the
order in which the start-up self-test falls back; the running path is the highest this CPU
has that passed its self-test. One list here, so that a new path (``avx512bw``) is tested
everywhere the others are.
"""


def compiled(core):
    return list(core.build_info()["simd_paths_compiled"])


def up_to_running(core, *, include_running=True):
    """Every compiled path up to the running one (the ones this CPU can run), lowest first."""
    order = compiled(core)
    i = order.index(core.simd_path())
    return order[: i + 1] if include_running else order[:i]


def lower(core, path):
    """The path the self-test falls back to when ``path`` fails."""
    order = compiled(core)
    return order[order.index(path) - 1]
