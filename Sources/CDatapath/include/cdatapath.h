// What Swift cannot import or express for the AF_PACKET data path: the tpacket/virtio
// structures, sendmmsg (a _GNU_SOURCE declaration), and ordered access to ring status
// words the kernel writes concurrently.
#ifndef VCPE_CDATAPATH_H
#define VCPE_CDATAPATH_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/virtio_net.h>
#include <sys/vfs.h>
#include <sys/mount.h>
#include "flowcache.h"

// Same layout as glibc's struct mmsghdr, which needs _GNU_SOURCE.
struct vc_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

int vc_sendmmsg(int fd, struct vc_mmsghdr *messages, unsigned int count, int flags);
// Pins the calling thread to one CPU (CPU_SET is a macro).
int vc_pin_cpu(int cpu);
// The interface's index and MAC address, looked up in the namespace of socket fd (SIOCGIF*).
int vc_interface(int fd, const char *name, int *index, uint8_t mac[6]);

static inline uint32_t vc_load_acquire(const volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void vc_store_release(volatile uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

#endif
