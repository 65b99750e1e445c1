// Body of the primitives declared in simd.h. Deliberately without an include guard: simd.cpp
// includes it once per instruction-set path, each time inside its own namespace and under a
// target pragma, so the same source is compiled for scalar / popcnt / avx2 / avx512.
// HK_IMPL_AVX2 and HK_IMPL_AVX512 switch on the hand-written intrinsic loops; with
// HK_IMPL_AVX512, HK_IMPL_VPOPCNT says whether the CPU has AVX-512 VPOPCNTDQ (the avx512 path)
// or only AVX-512 F/BW/DQ/VL (the avx512bw path: Skylake-SP, Cascade Lake and Cooper Lake
// servers), where every 512-bit popcount is two nibble lookups and a byte sum (popcnt_epi64).

template <class T>
inline uint32_t pc64(T x) {
    return static_cast<uint32_t>(__builtin_popcountll(static_cast<unsigned long long>(x)));
}

// The compiler vectorises this for W = 1 with AVX-512 VPOPCNTDQ; other widths use the
// explicit loops below where they exist.
template <int W, class OutT>
void dist_w(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, OutT* out) {
    const int64_t ww = W > 0 ? W : w;
    if (W > 0) {
        for (int64_t j = 0; j < n; ++j) {
            const uint64_t* x = db + j * W;
            uint32_t c = 0;
            for (int t = 0; t < W; ++t) c += pc64(q[t] ^ x[t]);
            out[j] = static_cast<OutT>(c);
        }
        return;
    }
    for (int64_t j = 0; j < n; ++j) {
        const uint64_t* x = db + j * ww;
        uint32_t c = 0;
        for (int64_t t = 0; t < ww; ++t) c += pc64(q[t] ^ x[t]);
        out[j] = static_cast<OutT>(c);
    }
}

#if HK_IMPL_AVX512
// Popcount of each 64-bit lane. Without VPOPCNTDQ: per-byte counts by two nibble lookups
// (vpshufb, AVX-512BW) summed per lane by vpsadbw, the AVX2 path's method on 512-bit registers.
inline __m512i popcnt_epi64(__m512i v) {
#if HK_IMPL_VPOPCNT
    return _mm512_popcnt_epi64(v);
#else
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const __m512i c =
        _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_and_si512(v, low4)),
                        _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4)));
    return _mm512_sad_epu8(c, _mm512_setzero_si512());
#endif
}

template <class OutT>
inline void store8(OutT* out, __m512i c) {
    if constexpr (sizeof(OutT) == 2) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi64_epi16(c));
    } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi64_epi32(c));
    }
}

// One word per code. With VPOPCNTDQ the compiler vectorises dist_w<1> itself; without it the
// scalar popcount stays scalar (one per cycle on Skylake-SP), so the avx512bw path counts eight
// codes per register here.
template <class OutT>
void dist1_avx512(const uint64_t* q, const uint64_t* db, int64_t n, int64_t, OutT* out) {
    const __m512i qv = _mm512_set1_epi64(static_cast<long long>(q[0]));
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        store8(out + j, popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(db + j), qv)));
    for (; j < n; ++j) out[j] = static_cast<OutT>(pc64(q[0] ^ db[j]));
}

// The one-word distance primitive of the AVX-512 paths (see dist1_avx512).
template <class OutT>
constexpr DistFn<OutT> dist1_avx512_fn() {
#if HK_IMPL_VPOPCNT
    return &dist_w<1, OutT>;
#else
    return &dist1_avx512<OutT>;
#endif
}

// Two words per code: popcount four codes per register, then add even and odd lanes.
template <class OutT>
void dist2_avx512(const uint64_t* q, const uint64_t* db, int64_t n, int64_t, OutT* out) {
    const __m512i qv = _mm512_set_epi64(q[1], q[0], q[1], q[0], q[1], q[0], q[1], q[0]);
    const __m512i ev = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const uint64_t* x = db + j * 2;
        __m512i a = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x), qv));
        __m512i b = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x + 8), qv));
        __m512i s = _mm512_add_epi64(_mm512_permutex2var_epi64(a, ev, b),
                                     _mm512_permutex2var_epi64(a, od, b));
        store8(out + j, s);
    }
    for (; j < n; ++j) out[j] = static_cast<OutT>(pc64(q[0] ^ db[2 * j]) + pc64(q[1] ^ db[2 * j + 1]));
}

// Four words per code: two codes per register, two rounds of even/odd lane sums.
template <class OutT>
void dist4_avx512(const uint64_t* q, const uint64_t* db, int64_t n, int64_t, OutT* out) {
    const __m512i qv = _mm512_set_epi64(q[3], q[2], q[1], q[0], q[3], q[2], q[1], q[0]);
    const __m512i ev = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const uint64_t* x = db + j * 4;
        __m512i p0 = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x), qv));
        __m512i p1 = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x + 8), qv));
        __m512i p2 = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x + 16), qv));
        __m512i p3 = popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x + 24), qv));
        __m512i s01 = _mm512_add_epi64(_mm512_permutex2var_epi64(p0, ev, p1),
                                       _mm512_permutex2var_epi64(p0, od, p1));
        __m512i s23 = _mm512_add_epi64(_mm512_permutex2var_epi64(p2, ev, p3),
                                       _mm512_permutex2var_epi64(p2, od, p3));
        __m512i s = _mm512_add_epi64(_mm512_permutex2var_epi64(s01, ev, s23),
                                     _mm512_permutex2var_epi64(s01, od, s23));
        store8(out + j, s);
    }
    for (; j < n; ++j) {
        const uint64_t* x = db + j * 4;
        out[j] = static_cast<OutT>(pc64(q[0] ^ x[0]) + pc64(q[1] ^ x[1]) + pc64(q[2] ^ x[2]) +
                                   pc64(q[3] ^ x[3]));
    }
}

// Any other width: one code at a time, eight words per register, masked tail.
template <class OutT>
void distn_avx512(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, OutT* out) {
    const int64_t full = w / 8 * 8;
    const __mmask8 tail = static_cast<__mmask8>((1u << (w - full)) - 1u);
    for (int64_t j = 0; j < n; ++j) {
        const uint64_t* x = db + j * w;
        __m512i acc = _mm512_setzero_si512();
        for (int64_t t = 0; t < full; t += 8) {
            acc = _mm512_add_epi64(acc, popcnt_epi64(_mm512_xor_si512(
                                            _mm512_loadu_si512(x + t), _mm512_loadu_si512(q + t))));
        }
        if (tail) {
            acc = _mm512_add_epi64(acc, popcnt_epi64(_mm512_xor_si512(
                                            _mm512_maskz_loadu_epi64(tail, x + full),
                                            _mm512_maskz_loadu_epi64(tail, q + full))));
        }
        out[j] = static_cast<OutT>(_mm512_reduce_add_epi64(acc));
    }
}

// Branch-free: the indices of the hits are compressed out of an index vector and stored whole
// (pos needs 16 elements of slack), so a hit rate near 50% costs no mispredictions.
int64_t collect16(const uint16_t* d, int64_t n, uint16_t lim, uint32_t* pos) {
    const __m512i lv = _mm512_set1_epi16(static_cast<short>(lim));
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i sixteen = _mm512_set1_epi32(16);
    int64_t m = 0, j = 0;
    for (; j + 64 <= n; j += 64) {
        const uint64_t mask =
            static_cast<uint64_t>(_mm512_cmple_epu16_mask(_mm512_loadu_si512(d + j), lv)) |
            (static_cast<uint64_t>(_mm512_cmple_epu16_mask(_mm512_loadu_si512(d + j + 32), lv))
             << 32);
        if (!mask) continue;  // the common case for small radii and top-k: skip 64 at once
        __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(j)));
        for (int part = 0; part < 4; ++part) {
            const __mmask16 mk = static_cast<__mmask16>(mask >> (16 * part));
            _mm512_storeu_si512(pos + m, _mm512_maskz_compress_epi32(mk, idx));
            m += __builtin_popcount(mk);
            idx = _mm512_add_epi32(idx, sixteen);
        }
    }
    for (; j < n; ++j)
        if (d[j] <= lim) pos[m++] = static_cast<uint32_t>(j);
    return m;
}

int64_t collect32(const int32_t* d, int64_t n, int32_t lim, uint32_t* pos) {
    const __m512i lv = _mm512_set1_epi32(lim);
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    int64_t m = 0, j = 0;
    for (; j + 16 <= n; j += 16) {
        const __mmask16 mask = _mm512_cmple_epi32_mask(_mm512_loadu_si512(d + j), lv);
        const __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(j)));
        _mm512_storeu_si512(pos + m, _mm512_maskz_compress_epi32(mask, idx));
        m += __builtin_popcount(mask);
    }
    for (; j < n; ++j)
        if (d[j] <= lim) pos[m++] = static_cast<uint32_t>(j);
    return m;
}
#elif HK_IMPL_AVX2
int64_t collect16(const uint16_t* d, int64_t n, uint16_t lim, uint32_t* pos) {
    const __m256i lv = _mm256_set1_epi16(static_cast<short>(lim));
    int64_t m = 0, j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + j));
        // unsigned d <= lim  <=>  min(d, lim) == d; two mask bits per 16-bit lane
        uint32_t mask = static_cast<uint32_t>(
            _mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_min_epu16(v, lv), v)));
        mask &= 0x55555555u;
        while (mask) {
            pos[m++] = static_cast<uint32_t>(j + (__builtin_ctz(mask) >> 1));
            mask &= mask - 1;
        }
    }
    for (; j < n; ++j)
        if (d[j] <= lim) pos[m++] = static_cast<uint32_t>(j);
    return m;
}

int64_t collect32(const int32_t* d, int64_t n, int32_t lim, uint32_t* pos) {
    const __m256i lv = _mm256_set1_epi32(lim);
    int64_t m = 0, j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + j));
        uint32_t mask = static_cast<uint32_t>(
                            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v, lv)))) ^
                        0xffu;
        while (mask) {
            pos[m++] = static_cast<uint32_t>(j + __builtin_ctz(mask));
            mask &= mask - 1;
        }
    }
    for (; j < n; ++j)
        if (d[j] <= lim) pos[m++] = static_cast<uint32_t>(j);
    return m;
}
#else
template <class DistT>
int64_t collect_plain(const DistT* d, int64_t n, DistT lim, uint32_t* pos) {
    int64_t m = 0;
    for (int64_t j = 0; j < n; ++j) {
        pos[m] = static_cast<uint32_t>(j);
        m += d[j] <= lim;  // branch-free: most items are rejected
    }
    return m;
}
int64_t collect16(const uint16_t* d, int64_t n, uint16_t lim, uint32_t* pos) {
    return collect_plain(d, n, lim, pos);
}
int64_t collect32(const int32_t* d, int64_t n, int32_t lim, uint32_t* pos) {
    return collect_plain(d, n, lim, pos);
}
#endif

// ---- filter: distance and selection in one (FilterFn) ----

inline int64_t collect_any(const uint16_t* d, int64_t n, uint16_t lim, uint32_t* pos) {
    return collect16(d, n, lim, pos);
}
inline int64_t collect_any(const int32_t* d, int64_t n, int32_t lim, uint32_t* pos) {
    return collect32(d, n, lim, pos);
}

// Distances first, then the selection: the AVX-512 path, whose vector popcount makes the
// distance pass cheap (the composition the drivers used before FilterFn existed).
template <class DistT, DistFn<DistT> Dist>
int64_t filter_dc(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, DistT lim,
                  DistT* buf, uint32_t* pos, DistT* dist) {
    Dist(q, db, n, w, buf);
    const int64_t m = collect_any(buf, n, lim, pos);
    for (int64_t c = 0; c < m; ++c) dist[c] = buf[pos[c]];
    return m;
}

template <int W>
inline uint32_t dist_one(const uint64_t* q, const uint64_t* x, int64_t w) {
    uint32_t c = 0;
    if (W > 0) {
        for (int t = 0; t < W; ++t) c += pc64(q[t] ^ x[t]);
    } else {
        for (int64_t t = 0; t < w; ++t) c += pc64(q[t] ^ x[t]);
    }
    return c;
}

// Scalar popcount: eight distances kept in registers with their minimum, one test per eight;
// only a block with a hit is written out (branch-free, in order).
template <int W, class DistT>
int64_t filter_scalar(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, DistT lim,
                      DistT*, uint32_t* pos, DistT* dist) {
    const int64_t ww = W > 0 ? W : w;
    const uint32_t l = static_cast<uint32_t>(lim);
    int64_t m = 0, j = 0;
    for (; j + 8 <= n; j += 8) {
        uint32_t d[8];
        uint32_t mn = ~0u;
        for (int t = 0; t < 8; ++t) {
            d[t] = dist_one<W>(q, db + (j + t) * ww, ww);
            mn = d[t] < mn ? d[t] : mn;
        }
        if (mn > l) continue;
        for (int t = 0; t < 8; ++t) {
            pos[m] = static_cast<uint32_t>(j + t);
            dist[m] = static_cast<DistT>(d[t]);
            m += d[t] <= l;
        }
    }
    for (; j < n; ++j) {
        const uint32_t d = dist_one<W>(q, db + j * ww, ww);
        pos[m] = static_cast<uint32_t>(j);
        dist[m] = static_cast<DistT>(d);
        m += d <= l;
    }
    return m;
}

#if HK_IMPL_AVX2
// AVX2 has no vector popcount: per-byte counts by two nibble lookups (vpshufb), summed per
// 64-bit lane by vpsadbw. Sixteen codes are counted, packed into sixteen 16-bit words and
// compared with the limit at once; only a block with a hit leaves the registers. Measured on
// Zen 3 (one thread, 1M 64-bit codes): 0.24 ns per code, against 0.76 for scalar popcount into
// a buffer followed by a vector compare (the former dist + collect), 0.42 for scalar popcount
// with a register-resident minimum (filter_scalar).
inline __m256i pop_bytes(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)));
}

// Four registers of four 64-bit sums (each < 2^16) as sixteen words, a's four first: two
// saturating packs interleave them in 128-bit lanes, one dword permute restores the order.
inline __m256i words16(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i abcd = _mm256_packus_epi32(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Compaction of a block's hits by table: for each 8-bit hit mask, the indices of its set bits
// (u8, in order). Eight positions are formed and stored whole (pos and dist have 16 elements of
// slack) and the count advanced by the mask's popcount: no per-hit branch, which matters for
// dense hits (wide radii: on Zen 3 a bit loop or a branch-free 16-step loop made the emission
// cost more than the distances).
struct CompressLut {
    uint64_t idx[256];
    constexpr CompressLut() : idx() {
        for (int m = 0; m < 256; ++m) {
            uint64_t v = 0;
            int k = 0;
            for (int b = 0; b < 8; ++b)
                if (m >> b & 1) v |= static_cast<uint64_t>(b) << (8 * k++);
            idx[m] = v;
        }
    }
};
constexpr CompressLut kCompress{};

// The hits of one block of sixteen codes j .. j + 15: bit t of mask set for a hit, dd[t] the
// distance of code j + t. (The vector compares' movemasks have two bits per word: pext keeps
// one.)
inline int64_t emit16(const uint16_t* dd, uint32_t mask, int64_t j, int64_t m, uint32_t* pos,
                      uint16_t* dist) {
    for (int h = 0; h < 2; ++h) {
        const uint32_t mk = (mask >> (8 * h)) & 0xffu;
        const __m128i idx = _mm_cvtsi64_si128(static_cast<long long>(kCompress.idx[mk]));
        const __m256i p = _mm256_add_epi32(_mm256_cvtepu8_epi32(idx),
                                           _mm256_set1_epi32(static_cast<int>(j + 8 * h)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pos + m), p);
        // the words' byte pairs (2i, 2i + 1) as the shuffle control
        const __m128i i2 = _mm_add_epi8(idx, idx);
        const __m128i ctl = _mm_unpacklo_epi8(i2, _mm_add_epi8(i2, _mm_set1_epi8(1)));
        const __m128i dv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(dd + 8 * h));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dist + m), _mm_shuffle_epi8(dv, ctl));
        m += __builtin_popcount(mk);
    }
    return m;
}

// One bit per word of a 16-bit compare result (bit t for word t). A saturating pack to bytes and
// one movemask, not _pext_u32 on the byte mask: PEXT is microcoded on Zen 1 and Zen 2 (tens of
// cycles for a 16-bit mask; AVX2 CPUs users have). On Zen 3, which executes PEXT in hardware,
// both take the same time (wide radii, 16-128 bits, A/B in one process).
inline uint32_t word_mask(__m256i cmp) {
    const uint32_t b = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_packs_epi16(cmp, _mm256_setzero_si256())));
    return (b & 0xffu) | ((b >> 8) & 0xff00u);  // packs works per 128-bit lane
}

// In each block of sixteen the last four codes are counted by scalar popcount: the integer
// units are otherwise idle in these loops, and moving a quarter of the codes to them took
// about 10% off (Zen 3: 0.36 -> 0.32 ns per code for the two-word pre-test, 0.54 -> 0.49 for
// the full two-word distance). The vector part fills their words with a value no limit reaches.
constexpr int kVecCodes = 12;

int64_t filter1_avx2(const uint64_t* q, const uint64_t* db, int64_t n, int64_t, uint16_t lim,
                     uint16_t*, uint32_t* pos, uint16_t* dist) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i qv = _mm256_set1_epi64x(static_cast<long long>(q[0]));
    // hit: d < lim + 1 (a signed 16-bit compare: d <= 64, the limit clamped to 65)
    const uint32_t l = lim < 64 ? lim : 64;
    const __m256i l1 = _mm256_set1_epi16(static_cast<short>(l + 1));
    auto four = [&](const uint64_t* x) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
        return _mm256_sad_epu8(pop_bytes(_mm256_xor_si256(v, qv)), zero);
    };
    const __m256i none = _mm256_set1_epi64x(0x7fff);
    const uint64_t q0 = q[0];
    int64_t m = 0, j = 0;
    // A block is first tested by the byte minimum of its sums (as in filter2_avx2's pre-test);
    // only a block with a hit packs them to words.
    const __m256i l1b = _mm256_set1_epi8(static_cast<char>(l + 1));
    const __m256i pad7f = _mm256_set1_epi64x(0x7f7f7f7f7f7f7f00LL);
    for (; j + 16 <= n; j += 16) {
        const uint64_t* x = db + j;
        const __m256i a = four(x), b = four(x + 4), c = four(x + 8);
        const __m256i mb = _mm256_or_si256(_mm256_min_epu8(_mm256_min_epu8(a, b), c), pad7f);
        uint32_t d[16 - kVecCodes], mn = ~0u;
        for (int t = 0; t < 16 - kVecCodes; ++t) {
            d[t] = pc64(q0 ^ x[kVecCodes + t]);
            mn = d[t] < mn ? d[t] : mn;
        }
        if (!_mm256_movemask_epi8(_mm256_cmpgt_epi8(l1b, mb)) && mn > l) continue;
        const __m256i s = words16(a, b, c, none);
        alignas(32) uint16_t dd[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(dd), s);
        uint32_t mask = word_mask(_mm256_cmpgt_epi16(l1, s));
        for (int t = 0; t < 16 - kVecCodes; ++t) {
            dd[kVecCodes + t] = static_cast<uint16_t>(d[t]);
            mask |= static_cast<uint32_t>(d[t] <= l) << (kVecCodes + t);
        }
        m = emit16(dd, mask, j, m, pos, dist);
    }
    for (; j < n; ++j) {
        const uint32_t d = pc64(q[0] ^ db[j]);
        pos[m] = static_cast<uint32_t>(j);
        dist[m] = static_cast<uint16_t>(d);
        m += d <= l;
    }
    return m;
}

// Below this limit the two-word filter first tests one word of each code alone (a lower bound
// of the distance), which rejects nearly every block of sixteen at about half the cost: a
// random 64-bit word is within 20 bits of the query's with probability 1.1e-3. Above it (wide
// radii, the first tiles of a top-k) the full distance is cheaper than testing twice.
constexpr uint32_t kFirstWordMax = 20;

int64_t filter2_avx2(const uint64_t* q, const uint64_t* db, int64_t n, int64_t, uint16_t lim,
                     uint16_t*, uint32_t* pos, uint16_t* dist) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i q01 = _mm256_setr_epi64x(static_cast<long long>(q[0]), static_cast<long long>(q[1]),
                                           static_cast<long long>(q[0]), static_cast<long long>(q[1]));
    const uint32_t l = lim < 128 ? lim : 128;
    const __m256i l1 = _mm256_set1_epi16(static_cast<short>(l + 1));
    // Codes 4g..4g+3 come out of the unpacks as 4g, 4g+2, 4g+1, 4g+3: swap the middle words
    // of every four (an in-lane byte shuffle) to put code j + t at word t.
    const __m256i fix = _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15,
                                         0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
    // codes x[0..1] and x[2..3] (two words each): their full distances / first-word distances
    auto full = [&](const uint64_t* x) {
        const __m256i p0 = pop_bytes(_mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), q01));
        const __m256i p1 = pop_bytes(_mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)), q01));
        return _mm256_sad_epu8(_mm256_add_epi8(_mm256_unpacklo_epi64(p0, p1), _mm256_unpackhi_epi64(p0, p1)), zero);
    };
    // A lower bound of the four distances from one word of each code: the first word of codes
    // 0 and 1, the second of codes 2 and 3, taken by a blend (any pipe; an unpack would use
    // the shuffle unit that the nibble lookups already keep busy). Same lane order as full().
    auto first = [&](const uint64_t* x) {
        const __m256i w = _mm256_blend_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)), 0xcc);
        return _mm256_sad_epu8(pop_bytes(_mm256_xor_si256(w, q01)), zero);
    };
    auto block_full = [&](const uint64_t* x) {
        return _mm256_shuffle_epi8(words16(full(x), full(x + 8), full(x + 16), full(x + 24)), fix);
    };
    const __m256i none = _mm256_set1_epi64x(0x7fff);
    const uint64_t q0 = q[0], q1 = q[1];
    int64_t m = 0, j = 0;
    if (l <= kFirstWordMax) {
        const __m256i l1b = _mm256_set1_epi8(static_cast<char>(l + 1));
        const __m256i pad7f = _mm256_set1_epi64x(0x7f7f7f7f7f7f7f00LL);
        for (; j + 16 <= n; j += 16) {
            const uint64_t* x = db + 2 * j;
            // Only "is any code within l" is asked here: the byte minimum of the three sums
            // (each < 128, in byte 0 of its 64-bit lane), the other bytes set to 127, one byte
            // compare. No pack to words: those would compete with the nibble lookups for the
            // shuffle pipes.
            const __m256i mb = _mm256_or_si256(
                _mm256_min_epu8(_mm256_min_epu8(first(x), first(x + 8)), first(x + 16)), pad7f);
            uint32_t mn = ~0u;
            for (int t = kVecCodes; t < 16; ++t) {
                const uint32_t d = pc64(q0 ^ x[2 * t]);
                mn = d < mn ? d : mn;
            }
            if (!_mm256_movemask_epi8(_mm256_cmpgt_epi8(l1b, mb)) && mn > l) continue;
            const __m256i s = block_full(x);
            const uint32_t mask = word_mask(_mm256_cmpgt_epi16(l1, s));
            if (!mask) continue;
            alignas(32) uint16_t dd[16];
            _mm256_store_si256(reinterpret_cast<__m256i*>(dd), s);
            m = emit16(dd, mask, j, m, pos, dist);
        }
    } else {
        for (; j + 16 <= n; j += 16) {
            const uint64_t* x = db + 2 * j;
            const __m256i s = _mm256_shuffle_epi8(words16(full(x), full(x + 8), full(x + 16), none), fix);
            uint32_t d[16 - kVecCodes], mn = ~0u;
            for (int t = 0; t < 16 - kVecCodes; ++t) {
                const uint64_t* c = x + 2 * (kVecCodes + t);
                d[t] = pc64(q0 ^ c[0]) + pc64(q1 ^ c[1]);
                mn = d[t] < mn ? d[t] : mn;
            }
            const __m256i hit = _mm256_cmpgt_epi16(l1, s);
            if (!_mm256_movemask_epi8(hit) && mn > l) continue;
            alignas(32) uint16_t dd[16];
            _mm256_store_si256(reinterpret_cast<__m256i*>(dd), s);
            uint32_t mask = word_mask(hit);
            for (int t = 0; t < 16 - kVecCodes; ++t) {
                dd[kVecCodes + t] = static_cast<uint16_t>(d[t]);
                mask |= static_cast<uint32_t>(d[t] <= l) << (kVecCodes + t);
            }
            m = emit16(dd, mask, j, m, pos, dist);
        }
    }
    for (; j < n; ++j) {
        const uint32_t d = pc64(q[0] ^ db[2 * j]) + pc64(q[1] ^ db[2 * j + 1]);
        pos[m] = static_cast<uint32_t>(j);
        dist[m] = static_cast<uint16_t>(d);
        m += d <= l;
    }
    return m;
}
#endif

template <class DistT>
FilterFn<DistT> pick_filter(int64_t w) {
#if HK_IMPL_AVX512
    if (w == 1) return &filter_dc<DistT, dist1_avx512_fn<DistT>()>;
    if (w == 2) return &filter_dc<DistT, &dist2_avx512<DistT>>;
    if (w == 4) return &filter_dc<DistT, &dist4_avx512<DistT>>;
    return &filter_dc<DistT, &distn_avx512<DistT>>;
#else
#if HK_IMPL_AVX2
    if constexpr (std::is_same<DistT, uint16_t>::value) {
        if (w == 1) return &filter1_avx2;
        if (w == 2) return &filter2_avx2;
    }
#endif
    if (w == 1) return &filter_scalar<1, DistT>;
    if (w == 2) return &filter_scalar<2, DistT>;
    if (w == 4) return &filter_scalar<4, DistT>;
    return &filter_scalar<0, DistT>;
#endif
}

template <int LW>
void rel_w(const uint64_t* ql, const uint64_t* dbl, int64_t n, int64_t lw, uint8_t* out) {
    const int64_t ll = LW > 0 ? LW : lw;
    if (LW == 1) {
        const uint64_t a = ql[0];
        for (int64_t j = 0; j < n; ++j) out[j] = (a & dbl[j]) != 0;
        return;
    }
    for (int64_t j = 0; j < n; ++j) {
        const uint64_t* x = dbl + j * ll;
        uint64_t acc = 0;
        for (int64_t t = 0; t < ll; ++t) acc |= ql[t] & x[t];
        out[j] = acc != 0;
    }
}

template <int LW>
void gain_w(const uint64_t* ql, const uint64_t* dbl, int64_t n, int64_t lw, uint32_t* out) {
    const int64_t ll = LW > 0 ? LW : lw;
    if (LW == 1) {
        const uint64_t a = ql[0];
        int64_t j = 0;
#if HK_IMPL_AVX512 && !HK_IMPL_VPOPCNT
        const __m512i av = _mm512_set1_epi64(static_cast<long long>(a));
        for (; j + 8 <= n; j += 8)
            store8(out + j, popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(dbl + j), av)));
#endif
        for (; j < n; ++j) out[j] = pc64(a & dbl[j]);
        return;
    }
    for (int64_t j = 0; j < n; ++j) {
        const uint64_t* x = dbl + j * ll;
        uint32_t c = 0;
        for (int64_t t = 0; t < ll; ++t) c += pc64(ql[t] & x[t]);
        out[j] = c;
    }
}


#if HK_IMPL_AVX512
// The offsets come from registers: the 32 table entries from wlo on by two two-register
// permutes and a blend (distances cluster, so nearly every item falls in that window); the
// rare item outside it takes a scalar lookup. No gather (slow on current x86).
void ap_lanes_tab(const uint64_t* v, int64_t m, int64_t k0, const uint64_t* tab, int64_t ntab,
                  int64_t wlo, uint64_t keep, uint64_t first_m, double* lanes) {
    __m512d a = _mm512_loadu_pd(lanes), f = _mm512_loadu_pd(lanes + kLanes);
    const __m512i keepv = _mm512_set1_epi64(static_cast<long long>(keep));
    const __m512i fm = _mm512_set1_epi64(static_cast<long long>(first_m));
    const __m512i lo = _mm512_set1_epi64(0xffffffffLL);
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i w0 = _mm512_set1_epi64(wlo);
    const __m512i w32 = _mm512_set1_epi64(32);
    const __m512i b16 = _mm512_set1_epi64(16);
    // the window's entries (entries past ntab read as 0: never used, no item has them)
    alignas(64) uint64_t win[32];
    for (int e = 0; e < 32; ++e) win[e] = wlo + e < ntab ? tab[wlo + e] : 0;
    const __m512i t0 = _mm512_load_si512(win), t1 = _mm512_load_si512(win + 8);
    const __m512i t2 = _mm512_load_si512(win + 16), t3 = _mm512_load_si512(win + 24);
    const int r = static_cast<int>(k0 & (kLanes - 1));
    // Lane l of each vector holds item c + l; a head that starts mid-vector (c = -r) takes
    // the first items into lanes r..7.
    for (int64_t c = -r; c < m; c += kLanes) {
        __mmask8 k;
        __m512i x;
        if (c < 0) {
            const int64_t n = m < c + kLanes ? m : c + kLanes;
            k = static_cast<__mmask8>(((1u << n) - 1u) << r);
            x = _mm512_maskz_expandloadu_epi64(k, v);
        } else {
            k = m - c >= kLanes ? __mmask8(0xff) : static_cast<__mmask8>((1u << (m - c)) - 1u);
            x = _mm512_maskz_loadu_epi64(k, v + c);
        }
        const __m512i di = _mm512_srli_epi64(x, 56);
        const __m512i wi = _mm512_sub_epi64(di, w0);  // below the window: wraps, so "outside"
        const __mmask8 out = _mm512_mask_cmpge_epu64_mask(k, wi, w32);
        __m512i b = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(wi, b16),
                                            _mm512_permutex2var_epi64(t0, wi, t1),
                                            _mm512_permutex2var_epi64(t2, wi, t3));
        if (out) {
            alignas(64) uint64_t xs[kLanes], bs[kLanes];
            _mm512_store_si512(xs, x);
            _mm512_store_si512(bs, b);
            for (int l = 0; l < kLanes; ++l)
                if (out >> l & 1) bs[l] = tab[xs[l] >> 56];
            b = _mm512_load_si512(bs);
        }
        const __m512i u = _mm512_add_epi64(_mm512_and_si512(x, keepv), b);
        const __m512i rr = _mm512_srli_epi64(u, 32);
        const __m512i ps = _mm512_mask_mov_epi64(one, k, _mm512_and_si512(u, lo));
        const __m512d t = _mm512_div_pd(_mm512_cvtepu64_pd(rr), _mm512_cvtepu64_pd(ps));
        a = _mm512_mask_add_pd(a, k, a, t);
        f = _mm512_mask_add_pd(f, k & _mm512_cmple_epu64_mask(rr, fm), f, t);
    }
    _mm512_storeu_pd(lanes, a);
    _mm512_storeu_pd(lanes + kLanes, f);
}
#else
// One item into its lane (the scalar form of the vector loops).
inline void ap_lane_item(uint64_t u, int64_t l, uint64_t first_m, double* lanes) {
    const double t = static_cast<double>(static_cast<uint32_t>(u >> 32)) /
                     static_cast<double>(static_cast<uint32_t>(u));
    lanes[l] += t;
    lanes[kLanes + l] += (u >> 32) <= first_m ? t : 0.0;
}

void ap_lanes_tab(const uint64_t* v, int64_t m, int64_t k0, const uint64_t* tab, int64_t,
                  int64_t, uint64_t keep, uint64_t first_m, double* lanes) {
    int64_t c = 0;
#if HK_IMPL_AVX2
    // Scalar up to the first item of lane 0, then eight items (two vectors of four lanes) per
    // step: u32 -> double by the 2^52 trick (exact), the same division. The offsets are added
    // by a scalar pass over a chunk first: a gather (vpgatherqq) per four items made this loop
    // take 1.5 ns per item on Zen 3, the chunked scalar adds plus the vector loop 0.8-0.9.
    for (; c < m && ((k0 + c) & (kLanes - 1)) != 0; ++c)
        ap_lane_item((v[c] & keep) + tab[v[c] >> 56], (k0 + c) & (kLanes - 1), first_m, lanes);
    if (m - c >= kLanes) {
        __m256d a0 = _mm256_loadu_pd(lanes), a1 = _mm256_loadu_pd(lanes + 4);
        __m256d f0 = _mm256_loadu_pd(lanes + kLanes), f1 = _mm256_loadu_pd(lanes + kLanes + 4);
        const __m256i lo = _mm256_set1_epi64x(0xffffffffLL);
        const __m256i magic = _mm256_set1_epi64x(0x4330000000000000LL);
        const __m256d magicd = _mm256_set1_pd(4503599627370496.0);  // 2^52
        const __m256i fm = _mm256_set1_epi64x(static_cast<long long>(
            first_m < (uint64_t{1} << 62) ? first_m : (uint64_t{1} << 62)));
        // first_m == 0 adds only +0.0 to the second lanes (t is 0 when rr is): skipping that
        // leaves them bitwise the same.
        const bool firsts = first_m != 0;
        auto term = [&](const uint64_t* x, __m256d& a, __m256d& f) {
            const __m256i u = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
            const __m256i rr = _mm256_srli_epi64(u, 32);
            const __m256d rd = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(rr, magic)), magicd);
            const __m256d pd = _mm256_sub_pd(
                _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(u, lo), magic)), magicd);
            const __m256d t = _mm256_div_pd(rd, pd);
            a = _mm256_add_pd(a, t);
            if (firsts) {
                // rr <= first_m: add t, else +0.0 (a non-negative sum stays bitwise the same)
                const __m256d keep = _mm256_castsi256_pd(_mm256_cmpgt_epi64(rr, fm));
                f = _mm256_add_pd(f, _mm256_andnot_pd(keep, t));
            }
        };
        constexpr int64_t kStage = 256;
        alignas(32) uint64_t st[kStage];
        while (m - c >= kLanes) {
            const int64_t mm = std::min<int64_t>(kStage, (m - c) / kLanes * kLanes);
            for (int64_t e = 0; e < mm; ++e) st[e] = (v[c + e] & keep) + tab[v[c + e] >> 56];
            for (int64_t e = 0; e < mm; e += kLanes) {
                term(st + e, a0, f0);
                term(st + e + 4, a1, f1);
            }
            c += mm;
        }
        _mm256_storeu_pd(lanes, a0);
        _mm256_storeu_pd(lanes + 4, a1);
        _mm256_storeu_pd(lanes + kLanes, f0);
        _mm256_storeu_pd(lanes + kLanes + 4, f1);
    }
#endif
    for (; c < m; ++c)
        ap_lane_item((v[c] & keep) + tab[v[c] >> 56], (k0 + c) & (kLanes - 1), first_m, lanes);
}

#endif

// Plain loops: the compiler vectorises them for the path's instruction set.
template <class DistT>
void prep(DistT* d, const uint8_t* rel, int64_t n, DistT lim, uint64_t* inc) {
    for (int64_t j = 0; j < n; ++j) {
        d[j] = d[j] < lim ? d[j] : lim;
        inc[j] = 1 + (static_cast<uint64_t>(rel[j]) << 32);
    }
}

// 1 if x != 0 else 0, by arithmetic: written as a comparison, GCC turned the relevance test
// of tile11 into a branch on the scalar/AVX2 paths (mispredicted for ~30% of items: 4x slower).
inline uint64_t nonzero(uint64_t x) { return (x | (0 - x)) >> 63; }

#if HK_IMPL_AVX512 && !HK_IMPL_VPOPCNT
// The avx512bw tiles' eight-code step: clamped distances of db[0, 8) to q, and the counter
// increments 1 + (relevant << 32) from a relevance mask.
struct Tile8 {
    __m512i qv, lv, limv, one, both;
    Tile8(uint64_t q, uint64_t ql, uint64_t lim)
        : qv(_mm512_set1_epi64(static_cast<long long>(q))),
          lv(_mm512_set1_epi64(static_cast<long long>(ql))),
          limv(_mm512_set1_epi64(static_cast<long long>(lim))),
          one(_mm512_set1_epi64(1)),
          both(_mm512_set1_epi64(static_cast<long long>(0x100000001ULL))) {}
    __m512i counts(const uint64_t* db) const {
        return _mm512_min_epu64(popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(db), qv)), limv);
    }
    __m512i incs(__mmask8 rel) const { return _mm512_mask_blend_epi64(rel, one, both); }
};
#endif

template <class DistT>
void tile11(uint64_t q, const uint64_t* db, uint64_t ql, const uint64_t* dbl, int64_t n, DistT lim,
            DistT* d, uint64_t* inc) {
    int64_t j = 0;
#if HK_IMPL_AVX512 && !HK_IMPL_VPOPCNT
    // avx512bw: eight codes per register (with VPOPCNTDQ the compiler vectorises the loop below).
    {
        const Tile8 t(q, ql, lim);
        for (; j + 8 <= n; j += 8) {
            store8(d + j, t.counts(db + j));
            const __mmask8 rel = _mm512_test_epi64_mask(_mm512_loadu_si512(dbl + j), t.lv);
            _mm512_storeu_si512(inc + j, t.incs(rel));
        }
    }
#endif
#if HK_IMPL_AVX2
    // AVX2 has no vector popcount: nibble lookups (vpshufb) summed per 64-bit lane (vpsadbw),
    // eight codes per step, the counts packed to DistT; relevance by a compare with zero.
    const __m256i qv = _mm256_set1_epi64x(static_cast<long long>(q));
    const __m256i lv = _mm256_set1_epi64x(static_cast<long long>(ql));
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i both = _mm256_set1_epi64x(static_cast<long long>(0x100000001ULL));
    const __m256i limv = _mm256_set1_epi32(static_cast<int>(lim));
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    auto counts = [&](const uint64_t* x) {
        const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), qv);
        const __m256i c = _mm256_add_epi8(
            _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4)),
            _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)));
        return _mm256_sad_epu8(c, zero);  // four 64-bit counts
    };
    auto incs = [&](const uint64_t* x) {
        const __m256i l = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), lv);
        return _mm256_blendv_epi8(both, one, _mm256_cmpeq_epi64(l, zero));
    };
    if constexpr (sizeof(DistT) == 2) {
        // Sixteen codes per step, their counts packed to words in order (words16): fewer
        // shuffles per code than packing eight at a time.
        const __m256i lim16 = _mm256_set1_epi16(static_cast<short>(lim));
        for (; j + 16 <= n; j += 16) {
            const __m256i s = words16(counts(db + j), counts(db + j + 4), counts(db + j + 8),
                                      counts(db + j + 12));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j), _mm256_min_epu16(s, lim16));
            for (int t = 0; t < 16; t += 4)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(inc + j + t), incs(dbl + j + t));
        }
    }
    for (; j + 8 <= n; j += 8) {
        // eight counts as dwords in order: low halves of both vectors, then lane-sorted
        const __m256i c = _mm256_permutevar8x32_epi32(
            _mm256_blend_epi32(counts(db + j), _mm256_slli_epi64(counts(db + j + 4), 32), 0xaa),
            even);
        // c = [a0 a1 a2 a3 b0 b1 b2 b3] after the blend [a0 b0 a1 b1 ...] and the permute
        const __m256i m = _mm256_min_epu32(c, limv);
        if constexpr (sizeof(DistT) == 2) {
            const __m256i pk = _mm256_packus_epi32(m, m);  // [m0..3 m0..3 | m4..7 m4..7]
            const __m128i lo = _mm256_castsi256_si128(_mm256_permute4x64_epi64(pk, 0x08));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + j), lo);
        } else {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j), m);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(inc + j), incs(dbl + j));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(inc + j + 4), incs(dbl + j + 4));
    }
#endif
    for (; j < n; ++j) {
        const uint32_t c = pc64(q ^ db[j]);
        const uint32_t l = static_cast<uint32_t>(lim);
        d[j] = static_cast<DistT>(c < l ? c : l);
        inc[j] = 1 + (nonzero(ql & dbl[j]) << 32);
    }
}

// Plain loop: vectorised by the compiler where the path has a vector popcount (AVX-512
// VPOPCNTDQ); the avx512bw path counts eight codes per register first.
template <class DistT>
void tile11g(uint64_t q, const uint64_t* db, uint64_t ql, const uint64_t* dbl, int64_t n,
             DistT lim, DistT* d, uint64_t* inc, uint32_t* gain) {
    const uint32_t l = static_cast<uint32_t>(lim);
    int64_t j = 0;
#if HK_IMPL_AVX512 && !HK_IMPL_VPOPCNT
    {
        const Tile8 t(q, ql, lim);
        for (; j + 8 <= n; j += 8) {
            store8(d + j, t.counts(db + j));
            const __m512i x = _mm512_and_si512(_mm512_loadu_si512(dbl + j), t.lv);
            store8(gain + j, popcnt_epi64(x));
            _mm512_storeu_si512(inc + j, t.incs(_mm512_test_epi64_mask(x, x)));
        }
    }
#endif
    for (; j < n; ++j) {
        const uint32_t c = pc64(q ^ db[j]);
        const uint64_t x = ql & dbl[j];
        d[j] = static_cast<DistT>(c < l ? c : l);
        gain[j] = pc64(x);
        inc[j] = 1 + (nonzero(x) << 32);
    }
}

template <class OutT>
DistFn<OutT> pick_dist(int64_t w) {
#if HK_IMPL_AVX512
    if (w == 1) return dist1_avx512_fn<OutT>();
    if (w == 2) return &dist2_avx512<OutT>;
    if (w == 4) return &dist4_avx512<OutT>;
    return &distn_avx512<OutT>;
#else
    if (w == 1) return &dist_w<1, OutT>;
    if (w == 2) return &dist_w<2, OutT>;
    if (w == 4) return &dist_w<4, OutT>;
    return &dist_w<0, OutT>;
#endif
}

Prims fill(Isa isa, int64_t w, int64_t lw) {
    Prims p;
    p.isa = isa;
    p.dist16 = pick_dist<uint16_t>(w);
    p.dist32 = pick_dist<int32_t>(w);
    p.collect16 = &collect16;
    p.collect32 = &collect32;
    p.filter16 = pick_filter<uint16_t>(w);
    p.filter32 = pick_filter<int32_t>(w);
#if HK_IMPL_AVX2
    p.filter_fast_lim = w == 2 ? static_cast<int64_t>(kFirstWordMax) : -1;
#else
    p.filter_fast_lim = -1;
#endif
    p.rel = lw == 1 ? &rel_w<1> : &rel_w<0>;
    p.gain = lw == 1 ? &gain_w<1> : &gain_w<0>;
    p.ap_lanes_tab = &ap_lanes_tab;
    p.prep16 = &prep<uint16_t>;
    p.prep32 = &prep<int32_t>;
    p.tile11_16 = &tile11<uint16_t>;
    p.tile11_32 = &tile11<int32_t>;
    p.tile11g_16 = &tile11g<uint16_t>;
    p.tile11g_32 = &tile11g<int32_t>;
    return p;
}
