#!/usr/bin/env bash
# Run the GPU tests under compute-sanitizer: memcheck (out-of-bounds / misaligned accesses,
# leaks), racecheck (shared-memory hazards), initcheck (reads of uninitialised device memory),
# synccheck (illegal __syncthreads use). HASHKIT_CUDA_SYNC=1 makes every launch synchronise, so
# a fault is reported by the kernel that caused it.
#
#   csrc/cuda/sanitize.sh                     # all four tools over tests/test_cuda.py
#   csrc/cuda/sanitize.sh memcheck -k topk    # one tool, extra pytest arguments
#
# CuPy inputs are preferred (-k "not torch" is added when CuPy imports): PyTorch's caching
# allocator makes initcheck report its own uninitialised pools.
set -euo pipefail
cd "$(dirname "$0")/../.."
SAN="${COMPUTE_SANITIZER:-compute-sanitizer}"
command -v "$SAN" >/dev/null || SAN=/usr/local/cuda/bin/compute-sanitizer
tools=(memcheck racecheck initcheck synccheck)
if [[ $# -gt 0 && "$1" != -* ]]; then tools=("$1"); shift; fi
select=()
if python -c "import cupy" 2>/dev/null; then select=(-k "not torch"); fi
status=0
for tool in "${tools[@]}"; do
  echo "== compute-sanitizer --tool $tool"
  extra=()
  [[ "$tool" == memcheck ]] && extra=(--leak-check full)
  HASHKIT_CUDA_SYNC=1 "$SAN" --tool "$tool" "${extra[@]}" --error-exitcode 86 --target-processes all \
    python -m pytest tests/test_cuda.py -q -x -p no:cacheprovider "${select[@]}" "$@" || status=$?
done
exit $status
