#define _GNU_SOURCE
#include <spawn.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>
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
