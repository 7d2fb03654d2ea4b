#pragma once
// Linux kernel interfaces Swift's Glibc module does not expose: signalfd, netlink
// route notifications, prctl/capabilities. Header-only: nothing extra is linked.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/capability.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <syslog.h>

/// sigaddset et al. are macros on some libcs; wrap the set-up in one call.
static inline int clinux_block_and_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/// capset(2) has no glibc wrapper.
static inline int clinux_capset(unsigned long long keep) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    data[0].effective = data[0].permitted = (unsigned int)(keep & 0xffffffffu);
    data[1].effective = data[1].permitted = (unsigned int)(keep >> 32);
    data[0].inheritable = data[1].inheritable = 0;
    return (int)syscall(SYS_capset, &hdr, data);
}

static inline void clinux_syslog(int priority, const char *message) {
    syslog(priority, "%s", message);
}

/// prctl(2) is variadic; the two forms the sensor uses.
static inline int clinux_prctl(int option, unsigned long arg) {
    return prctl(option, arg, 0, 0, 0);
}

#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
