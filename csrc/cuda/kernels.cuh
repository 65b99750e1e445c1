// hashkit CUDA kernels: host-side entry points (no pybind11 here; bindings.cpp wraps them).
//
// Every pointer is a device pointer that the caller allocated on the current device; every
// function enqueues work on `stream` and returns without synchronising, except radius_count,
// which must bring the result size back to the host. Errors are thrown as
//   std::invalid_argument  (bad arguments; pybind11 turns it into ValueError)
//   std::runtime_error     (a CUDA call or launch failed; RuntimeError naming the call)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

namespace hashkit_cuda {

// Throws std::runtime_error("<what> failed: <CUDA error> (<file>:<line>)") unless err == cudaSuccess.
void check(cudaError_t err, const char* what, const char* file, int line);
#define HK_CUDA(call) ::hashkit_cuda::check((call), #call, __FILE__, __LINE__)

// Number of devices, or -1 with *error set when the runtime/driver cannot be used.
int device_count(std::string* error);

// Checks that [ptr, ptr + bytes) is device (or managed) memory of `device`, 8-byte aligned;
// throws std::invalid_argument naming `name` otherwise.
void check_device_buffer(std::uintptr_t ptr, std::size_t bytes, int device, const char* name);

// Limits that depend on the device (shared memory per block): the largest nbits the histogram
// and rank kernels can hold in shared memory, for information and for error messages.
struct Limits {
    int max_nbits_hist;   // hist_stats / topk / radius first pass (no gain histogram)
    int max_nbits_rank;   // rank_stats second pass
};
Limits limits(int nlabels);

struct Problem {
    const std::uint64_t* q;
    const std::uint64_t* db;
    std::int64_t nq;
    std::int64_t n;
    int w;          // words per code
    int nbits;
    const std::uint64_t* ql = nullptr;   // packed labels (optional)
    const std::uint64_t* dbl = nullptr;
    int lw = 0;     // words per label row
    std::size_t scratch_bytes = std::size_t(1) << 30;   // budget for per-chunk histograms
    cudaStream_t stream = nullptr;
};

void hamming(const Problem& p, std::int32_t* out);
void topk(const Problem& p, std::int64_t k, std::int32_t* dist, std::int64_t* idx);
// Fills lims (device, nq+1) and returns lims[nq] (synchronises the stream).
std::int64_t radius_count(const Problem& p, std::int64_t r, std::int64_t* lims);
void radius_fill(const Problem& p, std::int64_t r, const std::int64_t* lims, std::int64_t* idx,
                 std::int32_t* dist);
void hist_stats(const Problem& p, std::int64_t* hist_all, std::int64_t* hist_rel);

struct RankOutputs {
    std::int64_t* hist_all;
    std::int64_t* hist_rel;
    double* ap_sum;
    std::int64_t* rel_at;
    double* ap_sum_at;
    double* ap_first;
    std::int64_t* gain_at = nullptr;     // graded only
    double* dcg_at = nullptr;
    std::int64_t* gain_hist = nullptr;
};
void rank_stats(const Problem& p, const std::vector<std::int64_t>& cutoffs, std::int64_t first_m,
                bool graded, int nlabels, const RankOutputs& out);

// Device ceilings for the benchmark (on a private stream, synchronous): device-to-device copy
// bandwidth (read + write bytes per second) and 64-bit XOR+popcount pairs per second.
struct Ceilings {
    double copy_gbps, popc64_pairs_per_s, copy_ms, popc_ms;
};
Ceilings measure_ceilings(std::size_t copy_bytes, int repeats);

}  // namespace hashkit_cuda
