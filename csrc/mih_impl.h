// Body of the MIH candidate check, compiled once per popcount path by mih.cpp (no include
// guard: it is included inside a namespace, once plainly and once under a popcnt target).

inline uint32_t mih_pc(uint64_t x) {
    return static_cast<uint32_t>(__builtin_popcountll(static_cast<unsigned long long>(x)));
}

// Candidates of one step (table j at substring distance s): writes (distance << 32 | id) of
// every candidate with distance <= bound whose first step this is, returns how many. `avail`
// (>= nc) candidates are readable from cand: the codes of those ahead are prefetched.
template <int W>
int64_t verify_w(const MihVerify& a, const uint32_t* cand, int64_t nc, int64_t avail, int64_t bound,
                 uint64_t* out) {
    const int64_t w = W > 0 ? W : a.w;
    const MihSub* subs = a.subs;
    const int64_t j = a.j, m = a.m;
    const uint32_t s = static_cast<uint32_t>(a.s);
    int64_t o = 0;
    const int64_t pre = std::min<int64_t>(avail, kCodeAhead);
    for (int64_t c = 0; c < pre; ++c) HK_PREFETCH(a.db + static_cast<int64_t>(cand[c]) * w);
    for (int64_t c = 0; c < nc; ++c) {
        if (c + kCodeAhead < avail) HK_PREFETCH(a.db + static_cast<int64_t>(cand[c + kCodeAhead]) * w);
        const uint32_t id = cand[c];
        const uint64_t* x = a.db + static_cast<int64_t>(id) * w;
        uint32_t d = 0;
        for (int64_t t = 0; t < w; ++t) d += mih_pc(a.q[t] ^ x[t]);
        if (static_cast<int64_t>(d) > bound) continue;
        // A hashed bucket also holds other keys: the item is taken for the probe that is its key.
        if (a.cand_v && mih_key(x, subs[j]) != a.cand_v[c]) continue;
        // First step of the item: no substring i < j within s, none i > j within s - 1.
        bool first = true;
        for (int64_t i = 0; i < m; ++i) {
            if (i == j) continue;
            const uint32_t di = mih_pc(mih_key(x, subs[i]) ^ a.qkeys[i]);
            if (i < j ? di <= s : di < s) {
                first = false;
                break;
            }
        }
        if (first) out[o++] = (static_cast<uint64_t>(d) << 32) | id;
    }
    return o;
}

int64_t verify(const MihVerify& a, const uint32_t* cand, int64_t nc, int64_t avail, int64_t bound,
               uint64_t* out) {
    switch (a.w) {
        case 1: return verify_w<1>(a, cand, nc, avail, bound, out);
        case 2: return verify_w<2>(a, cand, nc, avail, bound, out);
        default: return verify_w<0>(a, cand, nc, avail, bound, out);
    }
}
