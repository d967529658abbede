#ifndef VCPE_CSYSTEM_H
#define VCPE_CSYSTEM_H
#include <sys/types.h>

// Wrappers for calls that Swift's Glibc module hides (it is built without _GNU_SOURCE).
// Each returns what the libc call returns; errno is left as the call set it.
int vcpe_setns(int fd, int nstype);
int vcpe_unshare(int flags);
pid_t vcpe_gettid(void);
int vcpe_clone_newnet(void);
int vcpe_clone_newns(void);
int vcpe_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data);
int vcpe_umount2(const char *target, int flags);
unsigned long vcpe_ms_bind(void);
unsigned long vcpe_ms_shared(void);
unsigned long vcpe_ms_rec(void);
int vcpe_mnt_detach(void);
int vcpe_errno(void);
short vcpe_posix_spawn_setsid(void);
#include <spawn.h>
int vcpe_spawn_closefrom(posix_spawn_file_actions_t *actions, int from);
// 1 if path is on nsfs (a mounted namespace), 0 if not, -1 with errno on failure.
int vcpe_is_nsfs(const char *path);
// sendmsg/recvmsg with descriptors passed as SCM_RIGHTS (at most VCPE_MAX_PASSED_FDS).
#define VCPE_MAX_PASSED_FDS 64
ssize_t vcpe_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
ssize_t vcpe_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds);
// The connected peer's process, user and group (SO_PEERCRED; struct ucred needs _GNU_SOURCE).
int vcpe_peer_credentials(int sock, pid_t *pid, uid_t *uid, gid_t *gid);
// A gratuitous ARP (who-has IP tell IP, from mac) broadcast on the interface, in the calling
// thread's network namespace. 0, or -1 with errno.
int vcpe_send_gratuitous_arp(int ifindex, const unsigned char mac[6], const unsigned char ip[4]);
#endif
