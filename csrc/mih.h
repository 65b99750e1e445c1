// Multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014): exact k-NN and radius
// search in Hamming space through m hash tables over disjoint substrings. Plain C++, no Python.
//
// Tables (built by mih_build, or memory-mapped from a file and checked by the binding):
//   desc    int64 (m, 4): per substring j its first bit, its length L_j (1..64), the log2 of its
//           bucket count B_j and whether it is hashed. The substrings tile [0, nbits) in order.
//           Direct tables have B_j = L_j (bucket = the substring's value); hashed ones (long
//           substrings) use bucket = mix(value) >> (64 - B_j) and keep colliding keys together.
//   offsets uint32: table j's CSR offsets (2^B_j + 1 entries) at base_j = sum_{i<j} (2^B_i + 1).
//   ids     uint32 (m, n): table j's item ids grouped by bucket, ascending within a bucket.
//
// Search walks "steps" r = 0, 1, 2, ...: step r probes table j = r mod m at substring distance
// exactly s = r div m. After steps 0..r every item within Hamming distance r has been seen
// (pigeonhole: an item at distance <= r = a m + b has some substring among the first b + 1 within
// a, or among the rest within a - 1), which is the substring radius rule of the paper. An item
// is taken only at its first step, min_j (d_j m + j), so it is verified once without any
// per-query visited set. k-NN stops after step r once k items at distance <= r are held.
// A query whose candidates would exceed `limit` is answered by the linear scan instead.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels.h"

namespace hk {

struct MihSub {
    int64_t first;   // first bit
    int len;         // bits (1..64)
    int tbits;       // log2 of the bucket count
    bool hashed;
    int64_t base;    // start of this table's offsets in the shared array
    int64_t w0;      // word holding the first bit
    int sh;          // its bit in that word
    bool two;        // the substring continues in word w0 + 1
    uint64_t mask;   // len low bits set
};

// The value of substring s of the code x (words).
inline uint64_t mih_key(const uint64_t* x, const MihSub& s) {
    uint64_t v = x[s.w0] >> s.sh;
    if (s.two) v |= x[s.w0 + 1] << (64 - s.sh);
    return v & s.mask;
}

// splitmix64's finaliser: the bucket of a hashed table is its top bits.
inline uint64_t mih_mix(uint64_t z) {
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z;
}

inline uint64_t mih_bucket(uint64_t key, const MihSub& s) {
    return s.hashed ? mih_mix(key) >> (64 - s.tbits) : key;
}

// Parses and checks a descriptor (throws std::invalid_argument naming what is wrong).
std::vector<MihSub> mih_subs(const int64_t* desc, int64_t m, int64_t nbits, int64_t w);
// Number of uint32 offsets the tables of `subs` need.
int64_t mih_offsets_size(const std::vector<MihSub>& subs);

void mih_build(Codes db, const std::vector<MihSub>& subs, int nthreads, uint32_t* offsets,
               uint32_t* ids);

struct MihTables {
    std::vector<MihSub> subs;
    const uint32_t* offsets;
    const uint32_t* ids;  // (m, n)
};

// dist (Q, k) int32, idx (Q, k) int64, work (Q,) int64: bucket probes plus candidates read per
// query, or -1 where the query fell back to the linear scan. limit <= 0: never fall back.
// Returns false if the tables were found inconsistent (an offset or id out of range).
bool mih_topk(Codes q, Codes db, int64_t nbits, const MihTables& t, int64_t k, int64_t limit,
              int nthreads, int32_t* dist, int64_t* idx, int64_t* work);
bool mih_radius(Codes q, Codes db, int64_t nbits, const MihTables& t, int64_t r, int64_t limit,
                int nthreads, int64_t* work, RadiusResult& out);

}  // namespace hk
