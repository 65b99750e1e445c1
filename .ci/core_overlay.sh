# Sourced by .ci/sanitize.sh and .ci/emulated.sh: write_core_overlay DIR writes DIR/sitecustomize.py,
# which (DIR first on PYTHONPATH, so also in the tests' child processes) puts a finder first on
# sys.meta_path that answers `hashkit._core` with the file named by HASHKIT_CORE_FILE; everything
# else (the Python package, NumPy, Numba) is the installed one.
write_core_overlay() {
    mkdir -p "$1"
    cat >"$1/sitecustomize.py" <<'EOF'
# Written by .ci/core_overlay.sh: hashkit._core is the build named by HASHKIT_CORE_FILE.
import importlib.abc
import importlib.util
import os
import sys


class _CoreFile(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hashkit._core":
            return importlib.util.spec_from_file_location(name, os.environ["HASHKIT_CORE_FILE"])
        return None


sys.meta_path.insert(0, _CoreFile())
EOF
}
