#define _GNU_SOURCE
#include "cdatapath.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sched.h>

_Static_assert(sizeof(struct vc_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");

int vc_sendmmsg(int fd, struct vc_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}


int vc_interface(int fd, const char *name, int *index, uint8_t mac[6]) {
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strncpy(req.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(fd, SIOCGIFINDEX, &req);
    if (rc == 0) {
        *index = req.ifr_ifindex;
        rc = ioctl(fd, SIOCGIFHWADDR, &req);
        if (rc == 0) memcpy(mac, req.ifr_hwaddr.sa_data, 6);
    }
    return rc;
}

int vc_pin_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}
