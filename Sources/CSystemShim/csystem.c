#define _GNU_SOURCE
#include <spawn.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/socket.h>
#include "csystem.h"

int vcpe_setns(int fd, int nstype) { return setns(fd, nstype); }
int vcpe_unshare(int flags) { return unshare(flags); }
pid_t vcpe_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int vcpe_clone_newnet(void) { return CLONE_NEWNET; }
int vcpe_clone_newns(void) { return CLONE_NEWNS; }
int vcpe_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data) {
    return mount(source, target, fstype, flags, data);
}
int vcpe_umount2(const char *target, int flags) { return umount2(target, flags); }
unsigned long vcpe_ms_bind(void) { return MS_BIND; }
unsigned long vcpe_ms_shared(void) { return MS_SHARED; }
unsigned long vcpe_ms_rec(void) { return MS_REC; }
int vcpe_mnt_detach(void) { return MNT_DETACH; }
int vcpe_errno(void) { return errno; }
short vcpe_posix_spawn_setsid(void) { return POSIX_SPAWN_SETSID; }
int vcpe_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
int vcpe_is_nsfs(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -1;
    return fs.f_type == NSFS_MAGIC;
}

// SCM_RIGHTS needs the CMSG_* macros, which Swift cannot import.
ssize_t vcpe_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > VCPE_MAX_PASSED_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char bytes[CMSG_SPACE(sizeof(int) * VCPE_MAX_PASSED_FDS)]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

ssize_t vcpe_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char bytes[CMSG_SPACE(sizeof(int) * VCPE_MAX_PASSED_FDS)]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes };
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    *nfds = 0;
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *got = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = got[i]; else close(got[i]);
        }
    }
    return n;
}

int vcpe_peer_credentials(int sock, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
int vcpe_send_gratuitous_arp(int ifindex, const unsigned char mac[6], const unsigned char ip[4]) {
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd < 0) return -1;
    // An ARP request for its own address from itself: who-has IP tell IP.
    unsigned char arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1 };
    memcpy(arp + 8, mac, 6);
    memcpy(arp + 14, ip, 4);
    memcpy(arp + 24, ip, 4);
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP), .sll_ifindex = ifindex, .sll_halen = 6 };
    memset(to.sll_addr, 0xff, 6);
    ssize_t n = sendto(fd, arp, sizeof arp, 0, (struct sockaddr *)&to, sizeof to);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)sizeof arp ? 0 : -1;
}
