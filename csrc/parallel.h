// The thread pool every C++ kernel runs on (csrc/kernels.cpp, csrc/mih.cpp): one piece of code
// for "n work items over up to `nthreads` threads, each thread with its own worker".
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hk {

// Runs make()() on up to `nthreads` threads; each thread builds its own worker (its buffers)
// once and then takes block numbers from a shared counter. The first exception is rethrown.
template <class Make>
inline void run_blocks(int64_t nblocks, int nthreads, Make make) {
    if (nblocks <= 0) return;
    const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(nthreads, nblocks));
    std::atomic<int64_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr err;
    std::mutex mu;
    auto loop = [&]() {
        try {
            auto worker = make();
            for (;;) {
                if (failed.load(std::memory_order_relaxed)) break;
                const int64_t b = next.fetch_add(1, std::memory_order_relaxed);
                if (b >= nblocks) break;
                worker(b);
            }
        } catch (...) {
            std::lock_guard<std::mutex> g(mu);
            if (!err) err = std::current_exception();
            failed = true;
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(nt - 1));
    for (int64_t t = 1; t < nt; ++t) {
        try {
            pool.emplace_back(loop);
        } catch (...) {
            break;  // fewer threads than asked: the remaining ones take the blocks
        }
    }
    loop();
    for (auto& th : pool) th.join();
    if (err) std::rethrow_exception(err);
}

}  // namespace hk
