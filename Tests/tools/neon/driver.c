// Runs the classifier kernels of this architecture (built with aarch64-linux-gnu-gcc and
// run under qemu-aarch64-static: the NEON kernel on NEON instructions) on engines and
// keys dumped by the Swift tests, and compares with the oracle's answers stored with them.
// Usage: driver DUMP. Prints "ok N" (classifications checked) or the first mismatch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vclass.h"

static uint32_t *data;
static size_t at, size;

static uint32_t next(void) {
    if (at >= size) { fprintf(stderr, "dump truncated\n"); exit(2); }
    return data[at++];
}

static uint32_t *take(size_t n) {
    if (at + n > size) { fprintf(stderr, "dump truncated\n"); exit(2); }
    uint32_t *p = data + at;
    at += n;
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: driver DUMP\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)bytes);
    size = (size_t)bytes / 4;
    if (fread(data, 4, size, f) != size) { perror("read"); return 2; }
    fclose(f);

    const vc_kernel kernels[] = { VC_SCALAR, VC_NEON };
    const char *names[] = { "scalar", "neon" };
    if (!vc_kernel_available(VC_NEON)) { printf("no NEON kernel in this build\n"); return 1; }
    size_t checked = 0;
    for (uint32_t sections = next(); sections > 0; sections--) {
        vc_engine e;
        e.lanes = next();
        e.table_count = next();
        vc_table *tables = calloc(e.table_count + 1, sizeof(vc_table));
        for (uint32_t t = 0; t < e.table_count; t++) {
            tables[t].min_index = next();
            tables[t].slot_mask = next();
            tables[t].slot_base = next();
            tables[t].nlanes = next();
            for (int l = 0; l < 16; l++) tables[t].lane[l] = (uint8_t)next();
            for (int l = 0; l < 16; l++) tables[t].lane_mask[l] = next();
        }
        e.tables = tables;
        uint32_t n = next();
        e.slots = take(n);
        n = next();
        e.rules = take(n);
        uint32_t keys = next();
        const uint32_t *key = take((size_t)keys * e.lanes), *want = take(keys);
        uint32_t *got = malloc(sizeof(uint32_t) * (keys + 1));
        for (int k = 0; k < 2; k++) {
            vc_classify(&e, kernels[k], key, keys, got);
            for (uint32_t i = 0; i < keys; i++) {
                if (got[i] != want[i]) {
                    printf("mismatch: kernel %s, %u lanes, packet %u: got %d, oracle %d\n", names[k], e.lanes, i, (int)got[i], (int)want[i]);
                    return 1;
                }
            }
            checked += keys;
        }
        free(got);
        free(tables);
    }
    printf("ok %zu\n", checked);
    return 0;
}
