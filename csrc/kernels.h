// Hamming kernels (docs/INTERNALS.md, "The kernel contract"). Plain C++: no Python here.
// Callers (csrc/bindings.cpp) have validated shapes, ranges and padding bits; the kernels still
// clamp every histogram index so that inconsistent input can give wrong numbers but never an
// out-of-bounds access.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace hk {

struct Codes {
    const uint64_t* data;
    int64_t n;  // rows
    int64_t w;  // 64-bit words per row
};

int resolve_threads(int64_t nthreads);

// out: (Q, N) int32, row-major.
void hamming(Codes q, Codes db, int nthreads, int32_t* out);

// dist: (Q, k) int32, idx: (Q, k) int64; 1 <= k <= N.
void topk(Codes q, Codes db, int64_t nbits, int64_t k, int nthreads, int32_t* dist, int64_t* idx);

struct RadiusResult {
    std::vector<int64_t> lims;  // Q + 1
    int64_t m = 0;              // lims[Q]: number of hits
    std::unique_ptr<int64_t[]> idx;  // m (at least one element allocated)
    std::unique_ptr<int32_t[]> dist;
};
RadiusResult radius(Codes q, Codes db, int64_t nbits, int64_t r, int nthreads);

// hist_all, hist_rel: (Q, nbits + 1) int64.
void hist_stats(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, int nthreads,
                int64_t* hist_all, int64_t* hist_rel);

struct RankStatsOut {
    int64_t* hist_all;   // (Q, nbits + 1)
    int64_t* hist_rel;   // (Q, nbits + 1)
    double* ap_sum;      // (Q,)
    int64_t* rel_at;     // (Q, C)
    double* ap_sum_at;   // (Q, C)
    double* ap_first;    // (Q,)
    int64_t* gain_at;    // (Q, C), graded only (else nullptr)
    double* dcg_at;      // (Q, C), graded only
    int64_t* gain_hist;  // (Q, nlabels + 1), graded only
};
void rank_stats(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, const int64_t* cutoffs,
                int64_t ncut, int64_t first_m, bool graded, int64_t nlabels, int nthreads,
                const RankStatsOut& out);

const char* simd_path();

}  // namespace hk
