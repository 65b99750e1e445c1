// hashkit CUDA kernels. Design notes: docs/CUDA.md.
//
// Layout shared by the histogram / rank / select kernels: one thread per query, a block of B
// queries (B = 128, 64 or 32) walks one database chunk (<= 32768 items) in index order, tile
// by tile through shared memory. Each thread keeps its own per-distance counters in shared
// memory laid out [bin][thread], so every warp touches 32 consecutive words (no bank conflicts)
// and no atomics are needed. Because a thread sees its chunk in index order, "items with the
// same distance and a smaller index" is simply a running counter, seeded with the start of the
// distance bucket plus the counts of the earlier chunks (k_scan). That gives every item its
// stable (distance, index) position with no sort: the same positions as the CPU kernels.
#include "kernels.cuh"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include <cuda_runtime.h>

namespace hashkit_cuda {

using u64 = std::uint64_t;
using u32 = std::uint32_t;
using i64 = std::int64_t;

// ------------------------------------------------------------------------------------------
// errors

void check(cudaError_t err, const char* what, const char* file, int line) {
    if (err == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    std::string msg = std::string("hashkit._cuda: ") + what + " failed: " + cudaGetErrorName(err) +
                      ": " + cudaGetErrorString(err) + " (" + file + ":" + std::to_string(line) + ")";
    throw std::runtime_error(msg);
}

static bool sync_mode() {
    const char* v = std::getenv("HASHKIT_CUDA_SYNC");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
}

// A launch error (bad configuration) shows at once; a fault inside the kernel only at the next
// synchronising call. HASHKIT_CUDA_SYNC=1 synchronises after every launch so the failing kernel
// is named (used by the sanitizer runs).
static void after_launch(const char* kernel, cudaStream_t s) {
    std::string what = std::string("launch of ") + kernel;
    check(cudaGetLastError(), what.c_str(), __FILE__, __LINE__);
    if (sync_mode()) {
        what = std::string("kernel ") + kernel + " (cudaStreamSynchronize)";
        check(cudaStreamSynchronize(s), what.c_str(), __FILE__, __LINE__);
    }
}

int device_count(std::string* error) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (error) *error = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
        return -1;
    }
    return n;
}

// cuMemGetAddressRange through the runtime's driver entry point, so the module links only
// the CUDA runtime; best effort (skipped if the driver does not export it).
using GetAddressRange = int (*)(unsigned long long*, std::size_t*, unsigned long long);

static GetAddressRange address_range_fn() {
    static GetAddressRange fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult res{};
        if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &p, 12000, cudaEnableDefault,
                                             &res) != cudaSuccess ||
            res != cudaDriverEntryPointSuccess) {
            cudaGetLastError();
            p = nullptr;
        }
        return reinterpret_cast<GetAddressRange>(p);
    }();
    return fn;
}

void check_device_buffer(std::uintptr_t ptr, std::size_t bytes, int device, const char* name) {
    if (bytes == 0) return;
    auto hex = [](std::uintptr_t v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
        return std::string(buf);
    };
    if (ptr == 0) throw std::invalid_argument(std::string(name) + ": expected a device pointer, got NULL");
    if (ptr % 8 != 0)
        throw std::invalid_argument(std::string(name) + ": expected an 8-byte aligned device pointer, got " + hex(ptr));
    cudaPointerAttributes at{};
    cudaError_t e = cudaPointerGetAttributes(&at, reinterpret_cast<const void*>(ptr));
    if (e != cudaSuccess) {
        cudaGetLastError();
        throw std::invalid_argument(std::string(name) + ": " + hex(ptr) + " is not a CUDA pointer (" +
                                    cudaGetErrorString(e) + ")");
    }
    if (at.type != cudaMemoryTypeDevice && at.type != cudaMemoryTypeManaged)
        throw std::invalid_argument(std::string(name) + ": expected device memory, got a " +
                                    (at.type == cudaMemoryTypeHost ? "pinned host" : "host/unregistered") +
                                    " pointer " + hex(ptr));
    if (at.type == cudaMemoryTypeDevice && at.device != device)
        throw std::invalid_argument(std::string(name) + ": memory lives on device " + std::to_string(at.device) +
                                    ", the call runs on device " + std::to_string(device));
    if (GetAddressRange fn = address_range_fn()) {
        unsigned long long base = 0;
        std::size_t size = 0;
        if (fn(&base, &size, static_cast<unsigned long long>(ptr)) == 0) {
            const unsigned long long end = base + size;
            if (static_cast<unsigned long long>(ptr) + bytes > end)
                throw std::invalid_argument(std::string(name) + ": the shape needs " + std::to_string(bytes) +
                                            " bytes but the allocation holds " + std::to_string(end - ptr) +
                                            " bytes from " + hex(ptr));
        }
    }
}

// ------------------------------------------------------------------------------------------
// device helpers

// Dynamic shared memory layout, computed identically on host and device.
struct Layout {
    std::size_t db, dbl, q, ql, cnt_a, cnt_b, total;
};

__host__ __device__ inline std::size_t align16(std::size_t x) { return (x + 15) & ~std::size_t(15); }

// tile items of W (and LW) words, B threads; query codes/labels in shared memory when their
// width is not a template constant; na / nb u32 counters per thread.
__host__ __device__ inline Layout layout(int B, int tile, int W, int LW, bool q_in_smem, bool ql_in_smem,
                                         int na, int nb) {
    Layout L{};
    std::size_t o = 0;
    L.db = o;    o = align16(o + std::size_t(tile) * W * 8);
    L.dbl = o;   o = align16(o + std::size_t(tile) * LW * 8);
    L.q = o;     o = align16(o + (q_in_smem ? std::size_t(W) * B * 8 : 0));
    L.ql = o;    o = align16(o + (ql_in_smem ? std::size_t(LW) * B * 8 : 0));
    L.cnt_a = o; o = align16(o + std::size_t(na) * B * 4);
    L.cnt_b = o; o = align16(o + std::size_t(nb) * B * 4);
    L.total = o;
    return L;
}

struct KArgs {
    const u64* q;
    const u64* db;
    const u64* ql;
    const u64* dbl;
    int nq;          // queries in this batch (pointers already offset to the batch)
    i64 n;
    int w, lw, nbits, nb1;
    i64 chunk;
    int nchunks, tile;
};

// A query code: in registers when the width is a template constant, else in shared memory
// ([word][thread], conflict-free).
template <int KW>
struct QCode {
    u64 r[KW > 0 ? KW : 1];
    const u64* s;
    int stride;
    __device__ void load(const u64* g, int W, u64* s_q, int B, int tid, bool active) {
        if constexpr (KW > 0) {
#pragma unroll
            for (int w = 0; w < KW; ++w) r[w] = active ? g[w] : 0;
            s = nullptr;
            stride = 0;
        } else {
            for (int w = 0; w < W; ++w) s_q[w * B + tid] = active ? g[w] : 0;
            s = s_q + tid;
            stride = B;
        }
    }
    __device__ __forceinline__ int dist(const u64* item, int W) const {
        int d = 0;
        if constexpr (KW > 0) {
#pragma unroll
            for (int w = 0; w < KW; ++w) d += __popcll(r[w] ^ item[w]);
        } else {
            for (int w = 0; w < W; ++w) d += __popcll(s[w * stride] ^ item[w]);
        }
        return d;
    }
    // Relevance and gain reuse the same storage for packed labels.
    __device__ __forceinline__ bool any_and(const u64* item, int W) const {
        if constexpr (KW > 0) {
            u64 acc = 0;
#pragma unroll
            for (int w = 0; w < KW; ++w) acc |= r[w] & item[w];
            return acc != 0;
        } else {
            u64 acc = 0;
            for (int w = 0; w < W; ++w) acc |= s[w * stride] & item[w];
            return acc != 0;
        }
    }
    __device__ __forceinline__ int and_count(const u64* item, int W) const {
        int g = 0;
        if constexpr (KW > 0) {
#pragma unroll
            for (int w = 0; w < KW; ++w) g += __popcll(r[w] & item[w]);
        } else {
            for (int w = 0; w < W; ++w) g += __popcll(s[w * stride] & item[w]);
        }
        return g;
    }
};

// Copies items [t0, t0 + m) of a row-major (n, W) array into shared memory (contiguous, coalesced).
__device__ __forceinline__ void load_tile(u64* dst, const u64* __restrict__ src, i64 t0, int m, int W, int B,
                                          int tid) {
    const u64* s = src + t0 * W;
    const int words = m * W;
    for (int i = tid; i < words; i += B) dst[i] = __ldg(s + i);
}

// ------------------------------------------------------------------------------------------
// kernels

// Pass 1: per (query, chunk) histograms of distances; with labels the counter packs
// all (low 16 bits) and relevant (high 16 bits): a chunk has <= 32768 items so neither overflows.
// Writes c_all / c_rel [nq][nchunks][nb1]; with gain_hist (graded) also accumulates the
// per-query histogram of gains (atomic adds of per-chunk counts).
template <int KW, int KL>
__global__ void __launch_bounds__(128) k_hist(KArgs a, u32* __restrict__ c_all, u32* __restrict__ c_rel,
                                              unsigned long long* __restrict__ gain_hist, int ng1) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int B = blockDim.x, tid = threadIdx.x;
    const i64 qi = i64(blockIdx.y) * B + tid;
    const bool active = qi < a.nq;
    const int chunk_id = blockIdx.x;
    const i64 j0 = i64(chunk_id) * a.chunk;
    const i64 j1 = min(a.n, j0 + a.chunk);
    const bool labels = KL >= 0;
    const bool graded = labels && gain_hist != nullptr;
    const int W = KW > 0 ? KW : a.w;
    const int LW = KL > 0 ? KL : (labels ? a.lw : 0);
    const Layout L = layout(B, a.tile, a.w, LW, KW == 0, KL == 0, a.nb1, graded ? ng1 : 0);
    u64* s_db = reinterpret_cast<u64*>(smem + L.db);
    u64* s_dbl = reinterpret_cast<u64*>(smem + L.dbl);
    u32* cnt = reinterpret_cast<u32*>(smem + L.cnt_a) + tid;
    u32* gcnt = reinterpret_cast<u32*>(smem + L.cnt_b) + tid;

    QCode<KW> qc;
    qc.load(a.q + (active ? qi : 0) * a.w, a.w, reinterpret_cast<u64*>(smem + L.q), B, tid, active);
    QCode<(KL > 0 ? KL : 0)> qlab;
    if (labels)
        qlab.load(a.ql + (active ? qi : 0) * a.lw, a.lw, reinterpret_cast<u64*>(smem + L.ql), B, tid, active);
    for (int d = 0; d < a.nb1; ++d) cnt[d * B] = 0;
    if (graded)
        for (int g = 0; g < ng1; ++g) gcnt[g * B] = 0;

    for (i64 t0 = j0; t0 < j1; t0 += a.tile) {
        const int m = int(min(i64(a.tile), j1 - t0));
        __syncthreads();
        load_tile(s_db, a.db, t0, m, a.w, B, tid);
        if (labels) load_tile(s_dbl, a.dbl, t0, m, LW, B, tid);
        __syncthreads();
        if (!active) continue;
        if constexpr (KL < 0) {
#pragma unroll 4
            for (int j = 0; j < m; ++j) {
                const int d = min(qc.dist(s_db + j * W, a.w), a.nbits);
                cnt[d * B] += 1u;
            }
        } else if (!graded) {
#pragma unroll 4
            for (int j = 0; j < m; ++j) {
                const int d = min(qc.dist(s_db + j * W, a.w), a.nbits);
                const bool rel = qlab.any_and(s_dbl + j * LW, LW);
                cnt[d * B] += rel ? 65537u : 1u;
            }
        } else {
            for (int j = 0; j < m; ++j) {
                const int d = min(qc.dist(s_db + j * W, a.w), a.nbits);
                const int g = min(qlab.and_count(s_dbl + j * LW, LW), ng1 - 1);
                cnt[d * B] += g > 0 ? 65537u : 1u;
                gcnt[g * B] += 1u;
            }
        }
    }
    if (!active) return;
    const std::size_t slot = (std::size_t(qi) * a.nchunks + chunk_id) * a.nb1;
    for (int d = 0; d < a.nb1; ++d) {
        const u32 v = cnt[d * B];
        if (labels) {
            c_all[slot + d] = v & 0xffffu;
            c_rel[slot + d] = v >> 16;
        } else {
            c_all[slot + d] = v;
        }
    }
    if (graded)
        for (int g = 0; g < ng1; ++g) {
            const u32 v = gcnt[g * B];
            if (v) atomicAdd(gain_hist + std::size_t(qi) * ng1 + g, static_cast<unsigned long long>(v));
        }
}

// Per query (one block): totals per distance over the chunks (-> hist outputs), their exclusive
// scan (start of each distance bucket in the stable ranking), then, in place, the start offset
// of every (chunk, distance) cell = bucket start + counts of the earlier chunks. Selection
// modes: k > 0 -> thresh = smallest distance whose inclusive count reaches k (top-k);
// r >= 0 -> thresh = min(r, nbits) and count = items with distance <= r (radius).
__global__ void __launch_bounds__(128) k_scan(u32* __restrict__ c_all, u32* __restrict__ c_rel, int nchunks,
                                              int nb1, i64* __restrict__ h_all, i64* __restrict__ h_rel, i64 k,
                                              i64 r, int* __restrict__ thresh, i64* __restrict__ count) {
    extern __shared__ __align__(16) unsigned char smem[];
    i64* s_all = reinterpret_cast<i64*>(smem);
    i64* s_rel = s_all + nb1;
    const int q = blockIdx.x, tid = threadIdx.x, B = blockDim.x;
    const std::size_t base = std::size_t(q) * nchunks * nb1;
    for (int d = tid; d < nb1; d += B) {
        i64 sa = 0, sr = 0;
        for (int c = 0; c < nchunks; ++c) {
            sa += c_all[base + std::size_t(c) * nb1 + d];
            if (c_rel) sr += c_rel[base + std::size_t(c) * nb1 + d];
        }
        s_all[d] = sa;
        s_rel[d] = sr;
        if (h_all) h_all[std::size_t(q) * nb1 + d] = sa;
        if (h_rel) h_rel[std::size_t(q) * nb1 + d] = sr;
    }
    __syncthreads();
    if (tid == 0) {
        // nb1 is at most a few hundred: a serial scan costs less than a block-wide one here.
        i64 run = 0, run_rel = 0, within_r = 0;
        int t = -1;
        const int tr = r >= 0 ? int(min(r, i64(nb1 - 1))) : -1;
        for (int d = 0; d < nb1; ++d) {
            const i64 v = s_all[d];
            s_all[d] = run;
            run += v;
            if (k > 0 && t < 0 && run >= k) t = d;
            if (d == tr) within_r = run;
            const i64 vr = s_rel[d];
            s_rel[d] = run_rel;
            run_rel += vr;
        }
        if (r >= 0) t = tr;
        if (thresh) thresh[q] = t;
        if (count) count[q] = within_r;
    }
    __syncthreads();
    for (int d = tid; d < nb1; d += B) {
        i64 ra = s_all[d], rr = s_rel[d];
        for (int c = 0; c < nchunks; ++c) {
            const std::size_t i = base + std::size_t(c) * nb1 + d;
            const u32 va = c_all[i];
            c_all[i] = u32(ra);
            ra += va;
            if (c_rel) {
                const u32 vr = c_rel[i];
                c_rel[i] = u32(rr);
                rr += vr;
            }
        }
    }
}

struct RankArgs {
    const i64* cut;   // device copy of the cutoffs, strictly increasing
    int C;
    i64 cut_max;      // cut[C-1], 0 when C == 0
    i64 first_m;
    int graded;
    double* p_ap;     // [nq][nchunks]
    double* p_first;  // [nq][nchunks]
    // [nq][nchunks][C], zeroed: contributions of items whose position falls in (cut[b-1], cut[b]]
    i64* b_rel;
    double* b_ap;
    i64* b_gain;
    double* b_dcg;
};

// Pass 2 of rank_stats: each thread walks its chunk in index order with running counters
// seeded by k_scan, so pos / relrank are the stable positions; AP terms are summed in index
// order within the chunk.
template <int KW, int KL>
__global__ void __launch_bounds__(128) k_rank(KArgs a, const u32* __restrict__ off_all,
                                              const u32* __restrict__ off_rel, RankArgs ra) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int B = blockDim.x, tid = threadIdx.x;
    const i64 qi = i64(blockIdx.y) * B + tid;
    const bool active = qi < a.nq;
    const int chunk_id = blockIdx.x;
    const i64 j0 = i64(chunk_id) * a.chunk;
    const i64 j1 = min(a.n, j0 + a.chunk);
    const int W = KW > 0 ? KW : a.w;
    const int LW = KL > 0 ? KL : a.lw;
    const Layout L = layout(B, a.tile, a.w, a.lw, KW == 0, KL == 0, a.nb1, a.nb1);
    u64* s_db = reinterpret_cast<u64*>(smem + L.db);
    u64* s_dbl = reinterpret_cast<u64*>(smem + L.dbl);
    u32* c_all = reinterpret_cast<u32*>(smem + L.cnt_a) + tid;
    u32* c_rel = reinterpret_cast<u32*>(smem + L.cnt_b) + tid;

    QCode<KW> qc;
    qc.load(a.q + (active ? qi : 0) * a.w, a.w, reinterpret_cast<u64*>(smem + L.q), B, tid, active);
    QCode<KL> qlab;
    qlab.load(a.ql + (active ? qi : 0) * a.lw, a.lw, reinterpret_cast<u64*>(smem + L.ql), B, tid, active);
    const std::size_t cslot = std::size_t(active ? qi : 0) * a.nchunks + chunk_id;
    if (active)
        for (int d = 0; d < a.nb1; ++d) {
            c_all[d * B] = off_all[cslot * a.nb1 + d];
            c_rel[d * B] = off_rel[cslot * a.nb1 + d];
        }
    const std::size_t bslot = cslot * ra.C;
    double ap = 0.0, apf = 0.0;

    for (i64 t0 = j0; t0 < j1; t0 += a.tile) {
        const int m = int(min(i64(a.tile), j1 - t0));
        __syncthreads();
        load_tile(s_db, a.db, t0, m, a.w, B, tid);
        load_tile(s_dbl, a.dbl, t0, m, a.lw, B, tid);
        __syncthreads();
        if (!active) continue;
#pragma unroll 2
        for (int j = 0; j < m; ++j) {
            const int d = min(qc.dist(s_db + j * W, W), a.nbits);
            const u64* lab = s_dbl + j * LW;
            const u32 p = c_all[d * B];  // 0-based stable position
            c_all[d * B] = p + 1;
            if (!qlab.any_and(lab, LW)) continue;
            const u32 rr = c_rel[d * B];  // 0-based rank among relevant items
            c_rel[d * B] = rr + 1;
            const double pos = double(p) + 1.0;
            const double v = (double(rr) + 1.0) / pos;
            ap += v;
            if (i64(rr) < ra.first_m) apf += v;
            if (i64(p) < ra.cut_max) {
                // bucket b = first cutoff >= pos; cutoffs are few, a binary search is plenty
                int lo = 0, hi = ra.C - 1;
                while (lo < hi) {
                    const int mid = (lo + hi) >> 1;
                    if (__ldg(ra.cut + mid) >= i64(p) + 1) hi = mid; else lo = mid + 1;
                }
                ra.b_rel[bslot + lo] += 1;
                ra.b_ap[bslot + lo] += v;
                if (ra.graded) {
                    const int g = qlab.and_count(lab, LW);
                    ra.b_gain[bslot + lo] += g;
                    ra.b_dcg[bslot + lo] += double(g) / log2(pos + 1.0);
                }
            }
        }
    }
    if (!active) return;
    ra.p_ap[cslot] = ap;
    ra.p_first[cslot] = apf;
}

// One thread per query: chunk partials summed in chunk order, cutoff buckets prefix-summed.
__global__ void k_rank_final(int nq, int nchunks, RankArgs ra, double* __restrict__ ap_sum,
                             double* __restrict__ ap_first, i64* __restrict__ rel_at, double* __restrict__ ap_sum_at,
                             i64* __restrict__ gain_at, double* __restrict__ dcg_at) {
    const i64 q = i64(blockIdx.x) * blockDim.x + threadIdx.x;
    if (q >= nq) return;
    double s = 0.0, f = 0.0;
    for (int c = 0; c < nchunks; ++c) {
        s += ra.p_ap[q * nchunks + c];
        f += ra.p_first[q * nchunks + c];
    }
    ap_sum[q] = s;
    ap_first[q] = f;
    i64 cr = 0, cg = 0;
    double ca = 0.0, cd = 0.0;
    const int C = ra.C;
    for (int b = 0; b < C; ++b) {
        for (int c = 0; c < nchunks; ++c) {
            const std::size_t i = (std::size_t(q) * nchunks + c) * C + b;
            cr += ra.b_rel[i];
            ca += ra.b_ap[i];
            if (ra.graded) {
                cg += ra.b_gain[i];
                cd += ra.b_dcg[i];
            }
        }
        rel_at[q * C + b] = cr;
        ap_sum_at[q * C + b] = ca;
        if (ra.graded) {
            gain_at[q * C + b] = cg;
            dcg_at[q * C + b] = cd;
        }
    }
}

// Pass 2 of topk / radius: items with distance <= thresh take the next slot of their
// (chunk, distance) cell; the cell counters live in the scratch written by k_scan, each owned
// by one thread. Slots past the query's limit (ties beyond k) are dropped.
template <int KW>
__global__ void __launch_bounds__(128) k_select(KArgs a, u32* __restrict__ off, const int* __restrict__ thresh,
                                                i64 k, const i64* __restrict__ lims, int* __restrict__ out_d,
                                                i64* __restrict__ out_i) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int B = blockDim.x, tid = threadIdx.x;
    const i64 qi = i64(blockIdx.y) * B + tid;
    const bool active = qi < a.nq;
    const int chunk_id = blockIdx.x;
    const i64 j0 = i64(chunk_id) * a.chunk;
    const i64 j1 = min(a.n, j0 + a.chunk);
    const int W = KW > 0 ? KW : a.w;
    const Layout L = layout(B, a.tile, a.w, 0, KW == 0, false, 0, 0);
    u64* s_db = reinterpret_cast<u64*>(smem + L.db);
    QCode<KW> qc;
    qc.load(a.q + (active ? qi : 0) * a.w, a.w, reinterpret_cast<u64*>(smem + L.q), B, tid, active);
    int t = -1;
    i64 base = 0, limit = 0;
    u32* cnt = nullptr;
    if (active) {
        t = thresh[qi];
        if (lims) {
            base = lims[qi];
            limit = lims[qi + 1] - base;
        } else {
            base = qi * k;
            limit = k;
        }
        cnt = off + (std::size_t(qi) * a.nchunks + chunk_id) * a.nb1;
    }
    for (i64 t0 = j0; t0 < j1; t0 += a.tile) {
        const int m = int(min(i64(a.tile), j1 - t0));
        __syncthreads();
        load_tile(s_db, a.db, t0, m, a.w, B, tid);
        __syncthreads();
        if (!active) continue;
#pragma unroll 4
        for (int j = 0; j < m; ++j) {
            const int d = min(qc.dist(s_db + j * W, W), a.nbits);
            if (d <= t) {
                const u32 s = cnt[d];
                cnt[d] = s + 1;
                if (i64(s) < limit) {
                    out_d[base + s] = d;
                    out_i[base + s] = t0 + j;
                }
            }
        }
    }
}

// Full distance matrix: a thread per database item (coalesced stores along a row), HQ queries
// per block from shared memory (broadcast reads).
constexpr int HQ = 16;
constexpr int HB = 256;

template <int KW>
__global__ void __launch_bounds__(HB) k_hamming(const u64* __restrict__ q, const u64* __restrict__ db, i64 nq,
                                                i64 n, int Wr, int* __restrict__ out) {
    extern __shared__ __align__(16) unsigned char smem[];
    u64* s_q = reinterpret_cast<u64*>(smem);
    const int W = KW > 0 ? KW : Wr;
    const i64 q0 = i64(blockIdx.y) * HQ;
    const int nqb = int(min(i64(HQ), nq - q0));
    for (int i = threadIdx.x; i < HQ * W; i += blockDim.x) s_q[i] = i < nqb * W ? q[q0 * W + i] : 0;
    __syncthreads();
    const i64 j = i64(blockIdx.x) * HB + threadIdx.x;
    if (j >= n) return;
    int acc[HQ];
#pragma unroll
    for (int qq = 0; qq < HQ; ++qq) acc[qq] = 0;
    for (int w = 0; w < W; ++w) {
        const u64 x = __ldg(db + j * W + w);
#pragma unroll
        for (int qq = 0; qq < HQ; ++qq) acc[qq] += __popcll(x ^ s_q[qq * W + w]);
    }
#pragma unroll
    for (int qq = 0; qq < HQ; ++qq)
        if (qq < nqb) out[(q0 + qq) * n + j] = acc[qq];
}

// ------------------------------------------------------------------------------------------
// host side: planning, scratch, launches

namespace {

struct Device {
    int id = 0, sms = 1;
    std::size_t smem_optin = 48 * 1024;
};

Device current_device() {
    Device d;
    HK_CUDA(cudaGetDevice(&d.id));
    HK_CUDA(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, d.id));
    int v = 0;
    HK_CUDA(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, d.id));
    d.smem_optin = std::size_t(v);
    return d;
}

// One stream-ordered allocation per call, carved into aligned pieces; freed (stream-ordered)
// when the call returns, so no synchronisation and no leak on an exception.
class Scratch {
  public:
    Scratch(std::size_t bytes, cudaStream_t s) : stream_(s) {
        if (bytes) HK_CUDA(cudaMallocAsync(&base_, bytes, s));
        size_ = bytes;
    }
    ~Scratch() {
        if (base_) cudaFreeAsync(base_, stream_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <class T>
    T* take(std::size_t count) {
        T* p = reinterpret_cast<T*>(static_cast<char*>(base_) + used_);
        used_ += (count * sizeof(T) + 255) & ~std::size_t(255);
        if (used_ > size_) throw std::logic_error("hashkit._cuda: scratch plan too small");
        return p;
    }
    static std::size_t bytes_for(std::size_t count, std::size_t elem) { return (count * elem + 255) & ~std::size_t(255); }

  private:
    void* base_ = nullptr;
    std::size_t size_ = 0, used_ = 0;
    cudaStream_t stream_;
};

template <class F>
void with_w(int w, F&& f) {
    switch (w) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        default: f(std::integral_constant<int, 0>{}); break;
    }
}

template <class F>
void with_lw(int lw, F&& f) {
    if (lw == 1) f(std::integral_constant<int, 1>{});
    else f(std::integral_constant<int, 0>{});
}

template <class K>
void allow_smem(K kernel, std::size_t bytes) {
    if (bytes > 48 * 1024)
        HK_CUDA(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

int tile_items(int w, int lw) {
    const int widest = std::max(w, lw);
    if (widest <= 8) return 256;
    return std::max(32, (2048 / widest) / 32 * 32);
}

enum class Pass2 { none, rank, select };

struct Plan {
    int tile = 256;
    int b1 = 128, b2 = 128;          // threads per block, pass 1 / pass 2
    std::size_t smem1 = 0, smem2 = 0;
    i64 chunk = 0;
    int nchunks = 0;
    i64 qbatch = 0;
    int nb1 = 0, ng1 = 0, C = 0;
};

std::size_t hist_smem(int B, int tile, int w, int lw, bool labels, int nb1, int ng1) {
    return layout(B, tile, w, labels ? lw : 0, w != 1 && w != 2 && w != 4, labels && lw != 1, nb1, ng1).total;
}

std::size_t rank_smem(int B, int tile, int w, int lw, int nb1) {
    return layout(B, tile, w, lw, w != 1 && w != 2 && w != 4, lw != 1, nb1, nb1).total;
}

std::size_t select_smem(int B, int tile, int w) {
    return layout(B, tile, w, 0, w != 1 && w != 2 && w != 4, false, 0, 0).total;
}

template <class Need>
int pick_block(Need need, std::size_t optin, std::size_t* smem, const char* what, int nbits) {
    for (int B : {128, 64, 32}) {
        const std::size_t s = need(B);
        if (s <= optin) {
            *smem = s;
            return B;
        }
    }
    throw std::invalid_argument("nbits: " + std::to_string(nbits) + " bits need " + std::to_string(need(32)) +
                                " bytes of shared memory per block in the CUDA " + what + " kernel; this device allows " +
                                std::to_string(optin) + " (use the CPU backend for codes this long)");
}

Plan make_plan(const Problem& p, bool labels, int ng1, int C, Pass2 pass2, const Device& dev) {
    Plan pl;
    pl.nb1 = p.nbits + 1;
    pl.ng1 = ng1;
    pl.C = C;
    pl.tile = tile_items(p.w, labels ? p.lw : 0);
    pl.b1 = pick_block([&](int B) { return hist_smem(B, pl.tile, p.w, p.lw, labels, pl.nb1, ng1); },
                       dev.smem_optin, &pl.smem1, "histogram", p.nbits);
    if (pass2 == Pass2::rank)
        pl.b2 = pick_block([&](int B) { return rank_smem(B, pl.tile, p.w, p.lw, pl.nb1); }, dev.smem_optin, &pl.smem2,
                           "rank", p.nbits);
    else if (pass2 == Pass2::select)
        pl.b2 = pick_block([&](int B) { return select_smem(B, pl.tile, p.w); }, dev.smem_optin, &pl.smem2, "select",
                           p.nbits);

    // Enough (query block, chunk) pairs to fill the device several times over; chunks of at
    // most 32768 items (16-bit packed counters) and at least a few tiles (amortise the
    // per-block counter setup).
    const i64 qblocks = (p.nq + 127) / 128;
    const i64 want = std::max<i64>(1, (8 * i64(dev.sms) + qblocks - 1) / qblocks);
    const i64 cap = (32768 / pl.tile) * pl.tile;
    i64 chunk = (p.n + want - 1) / want;
    chunk = std::max<i64>(chunk, 4 * pl.tile);
    // Test/tuning knob: force the chunk size (rounded to tiles, capped), e.g. to exercise the
    // largest chunks, where the 16-bit packed counters are closest to overflowing, on small inputs.
    if (const char* forced = std::getenv("HASHKIT_CUDA_CHUNK")) {
        const long long v = std::atoll(forced);
        if (v > 0) chunk = v;
    }
    chunk = (chunk + pl.tile - 1) / pl.tile * pl.tile;
    pl.chunk = std::min(chunk, cap);
    pl.nchunks = int((p.n + pl.chunk - 1) / pl.chunk);

    std::size_t perq = std::size_t(pl.nchunks) * pl.nb1 * 4 * (labels ? 2 : 1) + 16;
    if (pass2 == Pass2::rank) perq += std::size_t(pl.nchunks) * (16 + std::size_t(C) * 32);
    i64 qb = i64(p.scratch_bytes / std::max<std::size_t>(perq, 1)) / 128 * 128;
    qb = std::max<i64>(qb, 128);
    qb = std::min<i64>(qb, 65535 * 32);  // grid.y limit with the smallest block
    pl.qbatch = std::min<i64>(qb, p.nq);
    return pl;
}

KArgs kargs(const Problem& p, const Plan& pl, i64 q0, int nq, bool labels) {
    KArgs a{};
    a.q = p.q + q0 * p.w;
    a.db = p.db;
    a.ql = labels ? p.ql + q0 * p.lw : nullptr;
    a.dbl = labels ? p.dbl : nullptr;
    a.nq = nq;
    a.n = p.n;
    a.w = p.w;
    a.lw = labels ? p.lw : 0;
    a.nbits = p.nbits;
    a.nb1 = pl.nb1;
    a.chunk = pl.chunk;
    a.nchunks = pl.nchunks;
    a.tile = pl.tile;
    return a;
}

void check_problem(const Problem& p, bool labels) {
    if (p.nq < 1) throw std::invalid_argument("q: expected at least one query, got " + std::to_string(p.nq));
    if (p.n < 1) throw std::invalid_argument("db: expected at least one code, got " + std::to_string(p.n));
    if (p.n >= i64(std::numeric_limits<u32>::max()))
        throw std::invalid_argument("db: the CUDA kernels hold positions in 32 bits; got " + std::to_string(p.n) +
                                    " codes (shard the database)");
    if (p.w < 1) throw std::invalid_argument("q: expected at least one 64-bit word per code, got " + std::to_string(p.w));
    if (p.nbits < 1 || p.nbits > 64 * p.w)
        throw std::invalid_argument("nbits: expected 1 <= nbits <= " + std::to_string(64 * p.w) + " for " +
                                    std::to_string(p.w) + " words, got " + std::to_string(p.nbits));
    if (!p.q || !p.db) throw std::invalid_argument("q/db: NULL device pointer");
    if (labels) {
        if (p.lw < 1) throw std::invalid_argument("ql: expected at least one label word, got " + std::to_string(p.lw));
        if (!p.ql || !p.dbl) throw std::invalid_argument("ql/dbl: NULL device pointer");
    }
}

// Pass 1 + scan for queries [q0, q0 + nq): leaves per-(query, chunk, distance) start offsets in
// c_all (and c_rel), and the requested per-query outputs.
void pass1_and_scan(const Problem& p, const Plan& pl, const KArgs& a, bool labels, u32* c_all, u32* c_rel,
                    unsigned long long* gain_hist, i64* h_all, i64* h_rel, i64 k, i64 r, int* thresh, i64* count) {
    const dim3 grid1(unsigned(pl.nchunks), unsigned((a.nq + pl.b1 - 1) / pl.b1));
    with_w(p.w, [&](auto kw) {
        constexpr int KW = decltype(kw)::value;
        if (!labels) {
            auto kern = k_hist<KW, -1>;
            allow_smem(kern, pl.smem1);
            kern<<<grid1, pl.b1, pl.smem1, p.stream>>>(a, c_all, nullptr, nullptr, 0);
            after_launch("k_hist", p.stream);
        } else {
            with_lw(p.lw, [&](auto kl) {
                constexpr int KL = decltype(kl)::value;
                auto kern = k_hist<KW, KL>;
                allow_smem(kern, pl.smem1);
                kern<<<grid1, pl.b1, pl.smem1, p.stream>>>(a, c_all, c_rel, gain_hist, pl.ng1);
                after_launch("k_hist", p.stream);
            });
        }
    });
    const std::size_t smem = std::size_t(2) * pl.nb1 * sizeof(i64);
    allow_smem(k_scan, smem);
    k_scan<<<unsigned(a.nq), 128, smem, p.stream>>>(c_all, c_rel, pl.nchunks, pl.nb1, h_all, h_rel, k, r, thresh,
                                                     count);
    after_launch("k_scan", p.stream);
}

void launch_select(const Problem& p, const Plan& pl, const KArgs& a, u32* c_all, const int* thresh, i64 k,
                   const i64* lims, int* out_d, i64* out_i) {
    const dim3 grid(unsigned(pl.nchunks), unsigned((a.nq + pl.b2 - 1) / pl.b2));
    with_w(p.w, [&](auto kw) {
        constexpr int KW = decltype(kw)::value;
        auto kern = k_select<KW>;
        allow_smem(kern, pl.smem2);
        kern<<<grid, pl.b2, pl.smem2, p.stream>>>(a, c_all, thresh, k, lims, out_d, out_i);
        after_launch("k_select", p.stream);
    });
}

}  // namespace

Limits limits(int nlabels) {
    const Device dev = current_device();
    Limits lim{0, 0};
    for (int nbits = 64; nbits <= 1 << 16; nbits += 64) {
        const int w = nbits / 64, lw = std::max(1, (nlabels + 63) / 64);
        const int tile = tile_items(w, lw);
        if (hist_smem(32, tile, w, lw, true, nbits + 1, nlabels + 1) <= dev.smem_optin) lim.max_nbits_hist = nbits;
        if (rank_smem(32, tile, w, lw, nbits + 1) <= dev.smem_optin) lim.max_nbits_rank = nbits;
    }
    return lim;
}

void hamming(const Problem& p, std::int32_t* out) {
    check_problem(p, false);
    const i64 max_rows = i64(65535) * HQ;
    const std::size_t smem = std::size_t(HQ) * p.w * 8;
    for (i64 q0 = 0; q0 < p.nq; q0 += max_rows) {
        const i64 nq = std::min(max_rows, p.nq - q0);
        const dim3 grid(unsigned((p.n + HB - 1) / HB), unsigned((nq + HQ - 1) / HQ));
        with_w(p.w, [&](auto kw) {
            constexpr int KW = decltype(kw)::value;
            auto kern = k_hamming<KW>;
            allow_smem(kern, smem);
            kern<<<grid, HB, smem, p.stream>>>(p.q + q0 * p.w, p.db, nq, p.n, p.w, out + q0 * p.n);
            after_launch("k_hamming", p.stream);
        });
    }
}

void topk(const Problem& p, std::int64_t k, std::int32_t* dist, std::int64_t* idx) {
    check_problem(p, false);
    if (k < 1 || k > p.n)
        throw std::invalid_argument("k: expected 1 <= k <= " + std::to_string(p.n) + ", got " + std::to_string(k));
    const Device dev = current_device();
    const Plan pl = make_plan(p, false, 0, 0, Pass2::select, dev);
    const std::size_t cells = std::size_t(pl.qbatch) * pl.nchunks * pl.nb1;
    Scratch s(Scratch::bytes_for(cells, 4) + Scratch::bytes_for(pl.qbatch, 4), p.stream);
    u32* c_all = s.take<u32>(cells);
    int* thresh = s.take<int>(pl.qbatch);
    for (i64 q0 = 0; q0 < p.nq; q0 += pl.qbatch) {
        const int nq = int(std::min(pl.qbatch, p.nq - q0));
        const KArgs a = kargs(p, pl, q0, nq, false);
        pass1_and_scan(p, pl, a, false, c_all, nullptr, nullptr, nullptr, nullptr, k, -1, thresh, nullptr);
        launch_select(p, pl, a, c_all, thresh, k, nullptr, dist + q0 * k, idx + q0 * k);
    }
}

std::int64_t radius_count(const Problem& p, std::int64_t r, std::int64_t* lims) {
    check_problem(p, false);
    if (r < 0) throw std::invalid_argument("r: expected r >= 0, got " + std::to_string(r));
    const Device dev = current_device();
    const Plan pl = make_plan(p, false, 0, 0, Pass2::none, dev);
    const std::size_t cells = std::size_t(pl.qbatch) * pl.nchunks * pl.nb1;
    Scratch s(Scratch::bytes_for(cells, 4) + Scratch::bytes_for(p.nq, 8), p.stream);
    u32* c_all = s.take<u32>(cells);
    i64* counts = s.take<i64>(p.nq);
    for (i64 q0 = 0; q0 < p.nq; q0 += pl.qbatch) {
        const int nq = int(std::min(pl.qbatch, p.nq - q0));
        const KArgs a = kargs(p, pl, q0, nq, false);
        pass1_and_scan(p, pl, a, false, c_all, nullptr, nullptr, nullptr, nullptr, 0, r, nullptr, counts + q0);
    }
    std::vector<i64> host(std::size_t(p.nq) + 1, 0);
    HK_CUDA(cudaMemcpyAsync(host.data() + 1, counts, std::size_t(p.nq) * 8, cudaMemcpyDeviceToHost, p.stream));
    HK_CUDA(cudaStreamSynchronize(p.stream));
    for (std::size_t i = 1; i < host.size(); ++i) host[i] += host[i - 1];
    HK_CUDA(cudaMemcpyAsync(lims, host.data(), host.size() * 8, cudaMemcpyHostToDevice, p.stream));
    HK_CUDA(cudaStreamSynchronize(p.stream));  // `host` is pageable and goes out of scope
    return host.back();
}

void radius_fill(const Problem& p, std::int64_t r, const std::int64_t* lims, std::int64_t* idx, std::int32_t* dist) {
    check_problem(p, false);
    if (r < 0) throw std::invalid_argument("r: expected r >= 0, got " + std::to_string(r));
    const Device dev = current_device();
    const Plan pl = make_plan(p, false, 0, 0, Pass2::select, dev);
    const std::size_t cells = std::size_t(pl.qbatch) * pl.nchunks * pl.nb1;
    Scratch s(Scratch::bytes_for(cells, 4) + Scratch::bytes_for(pl.qbatch, 4), p.stream);
    u32* c_all = s.take<u32>(cells);
    int* thresh = s.take<int>(pl.qbatch);
    for (i64 q0 = 0; q0 < p.nq; q0 += pl.qbatch) {
        const int nq = int(std::min(pl.qbatch, p.nq - q0));
        const KArgs a = kargs(p, pl, q0, nq, false);
        pass1_and_scan(p, pl, a, false, c_all, nullptr, nullptr, nullptr, nullptr, 0, r, thresh, nullptr);
        launch_select(p, pl, a, c_all, thresh, 0, lims + q0, dist, idx);
    }
}

void hist_stats(const Problem& p, std::int64_t* hist_all, std::int64_t* hist_rel) {
    check_problem(p, true);
    const Device dev = current_device();
    const Plan pl = make_plan(p, true, 0, 0, Pass2::none, dev);
    const std::size_t cells = std::size_t(pl.qbatch) * pl.nchunks * pl.nb1;
    Scratch s(2 * Scratch::bytes_for(cells, 4), p.stream);
    u32* c_all = s.take<u32>(cells);
    u32* c_rel = s.take<u32>(cells);
    for (i64 q0 = 0; q0 < p.nq; q0 += pl.qbatch) {
        const int nq = int(std::min(pl.qbatch, p.nq - q0));
        const KArgs a = kargs(p, pl, q0, nq, true);
        pass1_and_scan(p, pl, a, true, c_all, c_rel, nullptr, hist_all + q0 * pl.nb1, hist_rel + q0 * pl.nb1, 0, -1,
                       nullptr, nullptr);
    }
}

void rank_stats(const Problem& p, const std::vector<std::int64_t>& cutoffs, std::int64_t first_m, bool graded,
                int nlabels, const RankOutputs& out) {
    check_problem(p, true);
    const int C = int(cutoffs.size());
    for (int c = 0; c < C; ++c)
        if (cutoffs[c] < 1 || cutoffs[c] > p.n || (c > 0 && cutoffs[c] <= cutoffs[c - 1]))
            throw std::invalid_argument("cutoffs: expected strictly increasing values in [1, " + std::to_string(p.n) +
                                        "], got " + std::to_string(cutoffs[c]) + " at position " + std::to_string(c));
    if (first_m < 0) throw std::invalid_argument("first_m: expected >= 0, got " + std::to_string(first_m));
    if (graded && (nlabels < 1 || nlabels > 64 * p.lw))
        throw std::invalid_argument("nlabels: expected 1 <= nlabels <= " + std::to_string(64 * p.lw) + ", got " +
                                    std::to_string(nlabels));
    const int ng1 = graded ? nlabels + 1 : 0;
    const Device dev = current_device();
    const Plan pl = make_plan(p, true, ng1, C, Pass2::rank, dev);
    const std::size_t cells = std::size_t(pl.qbatch) * pl.nchunks * pl.nb1;
    const std::size_t parts = std::size_t(pl.qbatch) * pl.nchunks;
    const std::size_t buckets = parts * std::size_t(C);
    Scratch s(2 * Scratch::bytes_for(cells, 4) + 2 * Scratch::bytes_for(parts, 8) + Scratch::bytes_for(C, 8) +
                  4 * Scratch::bytes_for(buckets, 8),
              p.stream);
    u32* c_all = s.take<u32>(cells);
    u32* c_rel = s.take<u32>(cells);
    RankArgs ra{};
    i64* d_cut = s.take<i64>(C);
    ra.cut = d_cut;
    ra.C = C;
    ra.cut_max = C ? cutoffs.back() : 0;
    ra.first_m = first_m;
    ra.graded = graded ? 1 : 0;
    ra.p_ap = s.take<double>(parts);
    ra.p_first = s.take<double>(parts);
    ra.b_rel = s.take<i64>(buckets);
    ra.b_ap = s.take<double>(buckets);
    ra.b_gain = s.take<i64>(buckets);
    ra.b_dcg = s.take<double>(buckets);
    if (C) {
        HK_CUDA(cudaMemcpyAsync(d_cut, cutoffs.data(), std::size_t(C) * 8, cudaMemcpyHostToDevice, p.stream));
        // the pageable source must stay valid until the copy is done; cutoffs are tiny
        HK_CUDA(cudaStreamSynchronize(p.stream));
    }
    if (graded)
        HK_CUDA(cudaMemsetAsync(out.gain_hist, 0, std::size_t(p.nq) * ng1 * 8, p.stream));
    for (i64 q0 = 0; q0 < p.nq; q0 += pl.qbatch) {
        const int nq = int(std::min(pl.qbatch, p.nq - q0));
        const KArgs a = kargs(p, pl, q0, nq, true);
        auto* gh = graded ? reinterpret_cast<unsigned long long*>(out.gain_hist + q0 * ng1) : nullptr;
        pass1_and_scan(p, pl, a, true, c_all, c_rel, gh, out.hist_all + q0 * pl.nb1, out.hist_rel + q0 * pl.nb1, 0,
                       -1, nullptr, nullptr);
        if (C) {
            const std::size_t nb = std::size_t(nq) * pl.nchunks * C * 8;
            HK_CUDA(cudaMemsetAsync(ra.b_rel, 0, nb, p.stream));
            HK_CUDA(cudaMemsetAsync(ra.b_ap, 0, nb, p.stream));
            if (graded) {
                HK_CUDA(cudaMemsetAsync(ra.b_gain, 0, nb, p.stream));
                HK_CUDA(cudaMemsetAsync(ra.b_dcg, 0, nb, p.stream));
            }
        }
        const dim3 grid(unsigned(pl.nchunks), unsigned((nq + pl.b2 - 1) / pl.b2));
        with_w(p.w, [&](auto kw) {
            constexpr int KW = decltype(kw)::value;
            with_lw(p.lw, [&](auto kl) {
                constexpr int KL = decltype(kl)::value;
                auto kern = k_rank<KW, KL>;
                allow_smem(kern, pl.smem2);
                kern<<<grid, pl.b2, pl.smem2, p.stream>>>(a, c_all, c_rel, ra);
                after_launch("k_rank", p.stream);
            });
        });
        k_rank_final<<<unsigned((nq + 127) / 128), 128, 0, p.stream>>>(
            nq, pl.nchunks, ra, out.ap_sum + q0, out.ap_first + q0, out.rel_at + q0 * C, out.ap_sum_at + q0 * C,
            graded ? out.gain_at + q0 * C : nullptr, graded ? out.dcg_at + q0 * C : nullptr);
        after_launch("k_rank_final", p.stream);
    }
}


// ------------------------------------------------------------------------------------------
// ceilings for benchmarks/gpu_bench.py: what the device can do at best, measured the same way

// Popcount-bound microkernel: 8 query words in registers against items broadcast from shared
// memory, as in the real kernels but with nothing else to do: one 64-bit XOR + popcount pair per
// (query word, item). The sum is stored so the work cannot be optimised away.
__global__ void __launch_bounds__(256) k_popc_ceiling(const u64* __restrict__ src, int iters, u32* __restrict__ sink) {
    __shared__ u64 s[256];
    const int tid = threadIdx.x;
    s[tid] = src[tid] ^ u64(blockIdx.x);
    u64 q[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = src[(tid + 37 * i) & 255] + u64(i);
    __syncthreads();
    u32 acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int it = 0; it < iters; ++it) {
#pragma unroll 4
        for (int j = 0; j < 256; ++j) {
            const u64 x = s[j] + u64(it);
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] += __popcll(q[i] ^ x);
        }
    }
    u32 t = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) t += acc[i];
    sink[blockIdx.x * 256 + tid] = t;
}

Ceilings measure_ceilings(std::size_t copy_bytes, int repeats) {
    const Device dev = current_device();
    Ceilings c{};
    cudaStream_t s = nullptr;
    HK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    void *a = nullptr, *b = nullptr;
    u32* sink = nullptr;
    auto cleanup = [&] {
        if (a) cudaFree(a);
        if (b) cudaFree(b);
        if (sink) cudaFree(sink);
        if (e0) cudaEventDestroy(e0);
        if (e1) cudaEventDestroy(e1);
        cudaStreamDestroy(s);
    };
    try {
        HK_CUDA(cudaEventCreate(&e0));
        HK_CUDA(cudaEventCreate(&e1));
        HK_CUDA(cudaMalloc(&a, copy_bytes));
        HK_CUDA(cudaMalloc(&b, copy_bytes));
        HK_CUDA(cudaMemsetAsync(a, 1, copy_bytes, s));
        auto best = [&](auto&& body) {
            float bestms = 1e30f;
            for (int r = 0; r < repeats + 1; ++r) {  // first run is a warm-up
                HK_CUDA(cudaEventRecord(e0, s));
                body();
                HK_CUDA(cudaEventRecord(e1, s));
                HK_CUDA(cudaEventSynchronize(e1));
                float ms = 0;
                HK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
                if (r > 0) bestms = std::min(bestms, ms);
            }
            return double(bestms);
        };
        const double copy_ms = best([&] { HK_CUDA(cudaMemcpyAsync(b, a, copy_bytes, cudaMemcpyDeviceToDevice, s)); });
        // a copy reads and writes every byte
        c.copy_gbps = 2.0 * double(copy_bytes) / (copy_ms * 1e-3) / 1e9;

        const int blocks = dev.sms * 8, iters = 64;
        HK_CUDA(cudaMalloc(&sink, std::size_t(blocks) * 256 * 4));
        const double popc_ms = best([&] {
            k_popc_ceiling<<<blocks, 256, 0, s>>>(static_cast<const u64*>(a), iters, sink);
            after_launch("k_popc_ceiling", s);
        });
        const double pairs = double(blocks) * 256 * iters * 256 * 8;
        c.popc64_pairs_per_s = pairs / (popc_ms * 1e-3);
        c.copy_ms = copy_ms;
        c.popc_ms = popc_ms;
    } catch (...) {
        cleanup();
        throw;
    }
    cleanup();
    return c;
}

}  // namespace hashkit_cuda
