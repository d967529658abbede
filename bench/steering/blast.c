// A UDP packet generator for the steering benchmark: 64-byte datagrams (18 bytes of
// payload) sent in batches of 64 with sendmmsg, as fast as the kernel takes them or at
// RATE packets per second, for SECONDS. Prints the number sent. iperf3 sends one datagram
// per syscall and cannot offer more than about 150 kpps here, less than a forwarder takes.
// Usage: blast HOST PORT SECONDS [RATE]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: blast HOST PORT SECONDS [RATE]\n"); return 2; }
    double seconds = atof(argv[3]), rate = argc > 4 ? atof(argv[4]) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (fd < 0 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 || connect(fd, (void *)&to, sizeof to) != 0) { perror("blast"); return 1; }
    enum { BATCH = 64 };
    static char payload[18];
    struct iovec iov = { payload, sizeof payload };
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) { msgs[i].msg_hdr.msg_iov = &iov; msgs[i].msg_hdr.msg_iovlen = 1; }
    unsigned long long sent = 0;
    double start = now(), end = start + seconds;
    for (double t = start; t < end; t = now()) {
        // Ahead of the rate: sleep a little rather than spin (its CPU is counted too).
        if (rate > 0 && sent >= (t - start) * rate) { usleep(50); continue; }
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0) sent += n;
    }
    printf("%llu\n", sent);
    return 0;
}
