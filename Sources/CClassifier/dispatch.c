// Picks a kernel: compiled in for this architecture and supported by this CPU.
#include "common.h"

int vc_kernel_available(vc_kernel k) {
    switch (k) {
    case VC_SCALAR: return 1;
#if defined(__x86_64__)
    case VC_SSE42: return __builtin_cpu_supports("sse4.2");
    case VC_AVX2: return __builtin_cpu_supports("avx2");
#endif
#if defined(__aarch64__)
    case VC_NEON: return 1;
#endif
    default: return 0;
    }
}

void vc_classify(const vc_engine *e, vc_kernel k, const uint32_t *keys, size_t count, uint32_t *out) {
    switch (k) {
#if defined(__x86_64__)
    case VC_SSE42: vc_classify_sse42(e, keys, count, out); return;
    case VC_AVX2: vc_classify_avx2(e, keys, count, out); return;
#endif
#if defined(__aarch64__)
    case VC_NEON: vc_classify_neon(e, keys, count, out); return;
#endif
    default: vc_classify_scalar(e, keys, count, out); return;
    }
}
