// The heap for newlib on the emulated boards. rdimon's start-up asks QEMU (semihosting SYS_HEAPINFO) where heap
// and stack are; on the MPS3 AN547 (Cortex-M55) its answer does not fit the Cortex_DFP memory map and every malloc
// fails (fopen, printf of a float). This replaces rdimon's weak _sbrk with the heap the linker script reserves.
#include <errno.h>
#include <stddef.h>

extern char end[];          // start of .heap (board.ld)
extern char __HeapLimit[];  // its end

void* _sbrk(ptrdiff_t increment) {
  static char* brk = end;
  if (brk + increment > __HeapLimit || brk + increment < end) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* previous = brk;
  brk += increment;
  return previous;
}
