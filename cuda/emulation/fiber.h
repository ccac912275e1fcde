// The stacks the emulator runs CUDA threads on (emulator.h), and the switch between a thread and
// the scheduler. On x86-64 a switch is a few instructions (emulator.cpp): callee-saved registers,
// MXCSR and the x87 control word are pushed on the stack being left, and its stack pointer is
// kept. Elsewhere it is ucontext's swapcontext, which also saves the signal mask with a system
// call and is much slower (benchmarks/RESULTS.md, "Figures moved out of code comments").
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(F3D_EMU_UCONTEXT)  // F3D_EMU_UCONTEXT: test the portable path
#define F3D_EMU_FAST_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace f3d_emu {

constexpr size_t kStackBytes = size_t(256) << 10;

#if F3D_EMU_FAST_SWITCH
extern "C" void f3d_emu_switch(void** save_sp, void* load_sp);  // emulator.cpp
#endif

// Where a context's stack lies (AddressSanitizer builds are told at every switch) and how to resume
// it: the saved stack pointer on x86-64, a ucontext elsewhere.
struct Context {
  const void* bottom = nullptr;
  size_t size = 0;
  void* asan_fake_stack = nullptr;
#if F3D_EMU_FAST_SWITCH
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

// The calling thread's own stack, for the scheduler's context. Only AddressSanitizer reads it, so
// other builds skip it, and it is looked up once per thread: on the main thread glibc parses
// /proc/self/maps for it, which every launch paid before.
inline void this_thread_stack([[maybe_unused]] Context& c) {
#if defined(__SANITIZE_ADDRESS__)
  struct Span {
    void* bottom = nullptr;
    size_t size = 0;
  };
  static thread_local const Span span = [] {
    Span s;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstack(&attr, &s.bottom, &s.size);
      pthread_attr_destroy(&attr);
    }
    return s;
  }();
  c.bottom = span.bottom;
  c.size = span.size;
#endif
}

// A context starting on a fresh stack calls this first (AddressSanitizer's side of the switch).
inline void arrived_on_new_stack() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

// Leaves `from` (resumed where it left off when switched to) for `to`.
inline void jump(Context& from, const Context& to) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&from.asan_fake_stack, to.bottom, to.size);
#endif
#if F3D_EMU_FAST_SWITCH
  f3d_emu_switch(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}

// A stack and the context that runs on it. reset() makes the context start `entry`, which must
// never return, discarding whatever the stack held.
struct Stack {
  std::unique_ptr<char[]> memory{new char[kStackBytes]};
  Context context;

  void reset(void (*entry)()) {
    context.bottom = memory.get();
    context.size = kStackBytes;
#if defined(__SANITIZE_ADDRESS__)
    // frames abandoned mid-kernel (a failed launch) left their redzones poisoned
    ASAN_UNPOISON_MEMORY_REGION(memory.get(), kStackBytes);
#endif
#if F3D_EMU_FAST_SWITCH
    // What f3d_emu_switch pops, from the lowest address: MXCSR and the x87 control word, six
    // registers, then the address `ret` jumps to. Above that a null return address for `entry`,
    // which then starts with the stack pointer 8 past a 16-byte boundary, as after a call.
    auto top = reinterpret_cast<uintptr_t>(memory.get() + kStackBytes) & ~uintptr_t(15);
    auto* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;
    *--sp = reinterpret_cast<uint64_t>(entry);
    for (int r = 0; r < 6; ++r) *--sp = 0;
    uint32_t mxcsr;
    uint16_t fpu_control;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpu_control));
    *--sp = 0;
    std::memcpy(sp, &mxcsr, sizeof mxcsr);
    std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpu_control, sizeof fpu_control);
    context.sp = sp;
#else
    getcontext(&context.uc);
    context.uc.uc_stack.ss_sp = memory.get();
    context.uc.uc_stack.ss_size = kStackBytes;
    context.uc.uc_link = nullptr;
    makecontext(&context.uc, entry, 0);
#endif
  }
};

}  // namespace f3d_emu
