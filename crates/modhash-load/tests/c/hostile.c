/*
 * A hostile modhash module in C, for the isolation tests: method 0 runs the
 * attack its input names, "<attack> <host pid> [<address>]"; any other
 * method echoes its input, so a test can show the worker served calls.
 *
 * Every attack aims at the host: make the kernel signal it, signal it
 * directly, write into its memory, trace it, or drown its stderr. The
 * sandbox must stop each one (the worker dies with SIGSYS, or is killed for
 * flooding) and the host must survive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "modhash_plugin.h"

/* The worker's end of the socket to the host, and the pipe to its stderr. */
#define SOCKET_FD 0
#define STDERR_FD 2

static void say(modhash_sink *sink, const char *message)
{
    sink->write(sink->ctx, (const uint8_t *)message, strlen(message));
}

static int32_t hostile_create(const uint8_t *config, size_t config_len,
                              void **instance, modhash_sink *err)
{
    (void)config;
    (void)config_len;
    (void)err;
    /* Stateless, but the ABI wants an instance that is not NULL. */
    static int state;
    *instance = &state;
    return MODHASH_STATUS_OK;
}

/* Ask the kernel to send `sig` to `host` whenever `fd` sees I/O. */
static void signal_on_io(int fd, pid_t host, int sig)
{
    fcntl(fd, F_SETOWN, host);
    fcntl(fd, F_SETSIG, sig);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* 2 GB on stderr, never a newline. */
static void flood(void)
{
    static char chunk[1 << 20];
    memset(chunk, 'A', sizeof chunk);
    for (int i = 0; i < 2048; i++)
        write_all(STDERR_FD, chunk, sizeof chunk);
}

static int attack(const char *name, pid_t host, unsigned long address)
{
    siginfo_t info;
    struct f_owner_ex owner = { .type = F_OWNER_PID, .pid = host };
    int flag = 1;
    uint64_t value = 0x6666666666666666ULL;
    struct iovec local = { .iov_base = &value, .iov_len = sizeof value };
    struct iovec remote = { .iov_base = (void *)address, .iov_len = sizeof value };

    memset(&info, 0, sizeof info);
    info.si_signo = SIGKILL;
    info.si_code = SI_QUEUE;

    if (strcmp(name, "sigio") == 0) {
        /* The whole chain: the host's next frame, or its next read of the
         * stderr pipe, would deliver SIGKILL to it. */
        signal_on_io(SOCKET_FD, host, SIGKILL);
        signal_on_io(STDERR_FD, host, SIGKILL);
        write_all(STDERR_FD, "armed\n", 6);
    } else if (strcmp(name, "F_SETOWN") == 0) {
        fcntl(SOCKET_FD, F_SETOWN, host);
    } else if (strcmp(name, "F_SETOWN_EX") == 0) {
        fcntl(SOCKET_FD, F_SETOWN_EX, &owner);
    } else if (strcmp(name, "F_SETSIG") == 0) {
        fcntl(SOCKET_FD, F_SETSIG, SIGKILL);
    } else if (strcmp(name, "O_ASYNC") == 0) {
        fcntl(STDERR_FD, F_SETFL, fcntl(STDERR_FD, F_GETFL) | O_ASYNC);
    } else if (strcmp(name, "F_SETLEASE") == 0) {
        fcntl(STDERR_FD, F_SETLEASE, F_RDLCK);
    } else if (strcmp(name, "F_NOTIFY") == 0) {
        fcntl(STDERR_FD, F_NOTIFY, DN_MODIFY | DN_MULTISHOT);
    } else if (strcmp(name, "FIOASYNC") == 0) {
        ioctl(SOCKET_FD, FIOASYNC, &flag);
    } else if (strcmp(name, "FIOSETOWN") == 0) {
        ioctl(SOCKET_FD, FIOSETOWN, &host);
    } else if (strcmp(name, "SIOCSPGRP") == 0) {
        ioctl(SOCKET_FD, SIOCSPGRP, &host);
    } else if (strcmp(name, "TIOCSPGRP") == 0) {
        ioctl(STDERR_FD, TIOCSPGRP, &host);
    } else if (strcmp(name, "kill") == 0) {
        kill(host, SIGKILL);
    } else if (strcmp(name, "kill-group") == 0) {
        kill(0, SIGKILL);
    } else if (strcmp(name, "tgkill") == 0) {
        syscall(SYS_tgkill, host, host, SIGKILL);
    } else if (strcmp(name, "tkill") == 0) {
        syscall(SYS_tkill, host, SIGKILL);
    } else if (strcmp(name, "rt_sigqueueinfo") == 0) {
        syscall(SYS_rt_sigqueueinfo, host, SIGKILL, &info);
    } else if (strcmp(name, "rt_tgsigqueueinfo") == 0) {
        syscall(SYS_rt_tgsigqueueinfo, host, host, SIGKILL, &info);
    } else if (strcmp(name, "pidfd_open") == 0) {
        int pidfd = (int)syscall(SYS_pidfd_open, host, 0);
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    } else if (strcmp(name, "pidfd_send_signal") == 0) {
        /* Any fd: the call itself must be refused, whatever it names. */
        syscall(SYS_pidfd_send_signal, SOCKET_FD, SIGKILL, NULL, 0);
    } else if (strcmp(name, "process_vm_writev") == 0) {
        syscall(SYS_process_vm_writev, host, &local, 1, &remote, 1, 0);
    } else if (strcmp(name, "ptrace") == 0) {
        ptrace(PTRACE_ATTACH, host, NULL, NULL);
    } else if (strcmp(name, "ptrace-seize") == 0) {
        ptrace(PTRACE_SEIZE, host, NULL, NULL);
    } else if (strcmp(name, "read-file") == 0) {
        /* Readable by the host's user, outside the library directories. */
        if (open("/etc/passwd", O_RDONLY | O_CLOEXEC) < 0)
            return -2;
    } else if (strcmp(name, "read-host-memory") == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/mem", (long)host);
        if (open(path, O_RDONLY | O_CLOEXEC) < 0)
            return -2;
    } else if (strcmp(name, "ansi-error") == 0) {
        return -3;
    } else if (strcmp(name, "flood") == 0) {
        flood();
    } else if (strcmp(name, "ansi") == 0) {
        static const char forged[] =
            "\033[2K\rmodhash: forged host line\n"
            "\033]0;title\007\xe2\x80\xae" "desrever\n";
        write_all(STDERR_FD, forged, sizeof forged - 1);
    } else {
        return -1;
    }
    return 0;
}

static int32_t hostile_call(void *instance, uint32_t method,
                            const uint8_t *input, size_t input_len,
                            modhash_sink *out)
{
    char line[256], name[64];
    long host = 0;
    unsigned long address = 0;

    (void)instance;
    if (method != 0) {
        out->write(out->ctx, input, input_len);
        return MODHASH_STATUS_OK;
    }
    if (input_len >= sizeof line) {
        say(out, "input too long");
        return MODHASH_STATUS_ERROR;
    }
    memcpy(line, input, input_len);
    line[input_len] = '\0';
    if (sscanf(line, "%63s %ld %lx", name, &host, &address) < 2) {
        say(out, "input: <attack> <host pid> [<hex address>]");
        return MODHASH_STATUS_ERROR;
    }
    switch (attack(name, (pid_t)host, address)) {
    case 0:
        break;
    case -2:
        say(out, "refused by the kernel");
        return MODHASH_STATUS_ERROR;
    case -3:
        say(out, "\033[2K\rmodhash: forged error");
        return MODHASH_STATUS_ERROR;
    default:
        say(out, "unknown attack");
        return MODHASH_STATUS_ERROR;
    }
    say(out, "attack done: the sandbox let it through");
    return MODHASH_STATUS_OK;
}

static void hostile_destroy(void *instance)
{
    (void)instance;
}

static const modhash_plugin_v1_table table = {
    .abi_version = MODHASH_PLUGIN_ABI_VERSION,
    .table_size = sizeof(modhash_plugin_v1_table),
    .name = "c-hostile",
    .create = hostile_create,
    .call = hostile_call,
    .destroy = hostile_destroy,
};

__attribute__((visibility("default")))
const modhash_plugin_v1_table *modhash_plugin_v1(void)
{
    return &table;
}
