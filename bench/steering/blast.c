// A UDP packet generator for the steering benchmark: 64-byte datagrams (18 bytes of
// payload) sent in batches of 64 with sendmmsg, as fast as the kernel takes them or at
// RATE packets per second, for SECONDS. Prints the number sent. iperf3 sends one datagram
// per syscall and cannot offer more than about 150 kpps here, less than a forwarder takes.
// With NEW=1 every datagram is a new flow: destination ports PORT..PORT+32767 in turn, from
// 32 sockets (source ports) in turn after each pass: about a million distinct flows.
// BLAST_SPORT in the environment fixes the source port (one flow across runs).
// Usage: blast HOST PORT SECONDS [RATE [NEW]]
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
    if (argc < 4) { fprintf(stderr, "usage: blast HOST PORT SECONDS [RATE [NEW]]\n"); return 2; }
    double seconds = atof(argv[3]), rate = argc > 4 ? atof(argv[4]) : 0;
    int fresh = argc > 5 && atoi(argv[5]) != 0;
    enum { BATCH = 64, SOCKETS = 32, PORTS = 32768 };
    int base = atoi(argv[2]);
    int fds[SOCKETS];
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(base) };
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) { fprintf(stderr, "blast: bad address\n"); return 1; }
    for (int s = 0; s < (fresh ? SOCKETS : 1); s++) {
        fds[s] = socket(AF_INET, SOCK_DGRAM, 0);
        if (fds[s] < 0) { perror("blast"); return 1; }
        const char *sport = getenv("BLAST_SPORT");
        if (sport && !fresh) {
            int one = 1;
            struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(atoi(sport)) };
            setsockopt(fds[s], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fds[s], (void *)&from, sizeof from) != 0) { perror("blast: bind"); return 1; }
        }
        if (!fresh && connect(fds[s], (void *)&to, sizeof to) != 0) { perror("blast"); return 1; }
    }
    static char payload[18];
    struct iovec iov = { payload, sizeof payload };
    static struct sockaddr_in names[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
        if (fresh) { names[i] = to; msgs[i].msg_hdr.msg_name = &names[i]; msgs[i].msg_hdr.msg_namelen = sizeof to; }
    }
    unsigned long long sent = 0, flow = 0;
    double start = now(), end = start + seconds;
    for (double t = start; t < end; t = now()) {
        // Ahead of the rate: sleep a little rather than spin (its CPU is counted too).
        if (rate > 0 && sent >= (t - start) * rate) { usleep(50); continue; }
        int fd = fds[0];
        if (fresh) {
            // A batch never wraps a pass, so all of it leaves from one socket.
            unsigned long long port = flow % PORTS, n = PORTS - port < BATCH ? PORTS - port : BATCH;
            fd = fds[(flow / PORTS) % SOCKETS];
            for (unsigned i = 0; i < n; i++) names[i].sin_port = htons(base + port + i);
            int k = sendmmsg(fd, msgs, n, 0);
            if (k > 0) { sent += k; flow += k; }
            continue;
        }
        int k = sendmmsg(fd, msgs, BATCH, 0);
        if (k > 0) sent += k;
    }
    printf("%llu\n", sent);
    return 0;
}
