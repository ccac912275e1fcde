#include "common/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace f3d {
namespace {

int threads_from_env() {
  if (const char* s = std::getenv("FIELDS3D_NUM_THREADS")) {
    const int v = std::atoi(s);
    if (v >= 1) return v;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> g_threads{0};
thread_local bool t_inside_pool = false;

// One job at a time; workers sleep on a condition variable between jobs.
class Pool {
 public:
  explicit Pool(int n_workers) : pid_(getpid()) {
    for (int i = 0; i < n_workers; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  pid_t pid() const { return pid_; }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int64_t n, int64_t chunk, const RangeBody& body) {
    std::lock_guard<std::mutex> job_lock(job_mu_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      body_ = &body;
      n_ = n;
      chunk_ = chunk;
      next_.store(0);
      error_ = nullptr;
      busy_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return busy_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk_);
      if (begin >= n_) break;
      try {
        (*body_)(begin, std::min(n_, begin + chunk_));
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    t_inside_pool = was_inside;
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
      std::lock_guard<std::mutex> lk(mu_);
      if (--busy_ == 0) done_cv_.notify_one();
    }
  }

  pid_t pid_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const RangeBody* body_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  int busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

std::mutex g_pool_mu;
std::unique_ptr<Pool> g_pool;

Pool& pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  const int want = num_threads();
  if (g_pool && g_pool->pid() != getpid()) {
    // Forked child: the parent's workers do not exist here; abandon the old pool's state.
    (void)g_pool.release();
  }
  if (!g_pool || g_pool->size() != want) {
    g_pool.reset();
    g_pool = std::make_unique<Pool>(want - 1);
  }
  return *g_pool;
}

}  // namespace

int num_threads() {
  int n = g_threads.load();
  if (n <= 0) {
    n = threads_from_env();
    g_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(std::max(1, n)); }

void parallel_for(int64_t n, int64_t grain, const RangeBody& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = num_threads();
  if (threads == 1 || n <= grain || t_inside_pool) {
    body(0, n);
    return;
  }
  // About four chunks per thread balances uneven work without much scheduling overhead.
  const int64_t chunk = std::max(grain, (n + 4 * threads - 1) / (4 * threads));
  pool().run(n, chunk, body);
}

}  // namespace f3d
