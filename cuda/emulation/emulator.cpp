// The x86-64 context switch of fiber.h: f3d_emu_switch(save_sp, load_sp) pushes the callee-saved
// registers, MXCSR and the x87 control word, stores the stack pointer in *save_sp, loads load_sp
// and pops the same from there (System V ABI: everything else is caller-saved).
#include "fiber.h"

#if F3D_EMU_FAST_SWITCH
asm(R"(
  .pushsection .text
  .globl f3d_emu_switch
  .hidden f3d_emu_switch
  .type f3d_emu_switch, @function
f3d_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size f3d_emu_switch, .-f3d_emu_switch
  .popsection
)");
#endif
