/* Copyright (c) linuxnet.gre contributors
 * GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Preloaded into the user-mode-linux kernel on processors with AMX (uml.py, guest_environment).
 *
 * UML saves and restores its processes' FPU state with ptrace's NT_X86_XSTATE regset, in a buffer
 * sized for the processors of its day. Linux accepts PTRACE_SETREGSET of that regset only for the
 * whole XSAVE area of the host (arch/x86/kernel/fpu/regset.c: count != fpu_user_cfg.max_size is
 * -EFAULT), which AMX's tile data makes about 11 KB: Debian's UML 6.1 (and 6.12) then kills the
 * guest's first process ("userspace - ptrace set fp regs failed, errno = 14").
 *
 * This wraps ptrace(): a PTRACE_SETREGSET of NT_X86_XSTATE that fails with EFAULT is made again
 * with the whole area, read from the process first and overlaid with what UML gave (the legacy
 * area, the XSAVE header and the components UML knows; UML's processes never use AMX, so the rest
 * stays as the kernel had it). Every other call, and every call that succeeds, is passed through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PTRACE_GETREGSET 0x4204
#define PTRACE_SETREGSET 0x4205
#define NT_X86_XSTATE 0x202
/* Larger than any XSAVE area: the kernel writes what it has and shortens iov_len to it. */
#define LARGEST_XSTATE (64 * 1024)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

static long set_whole_xstate(ptrace_fn real, pid_t pid, void *addr, const struct iovec *given)
{
    char *buffer = calloc(1, LARGEST_XSTATE);
    struct iovec whole = {buffer, LARGEST_XSTATE};
    long result = -1;
    int saved = EFAULT;

    if (buffer && real(PTRACE_GETREGSET, pid, addr, &whole) == 0 && whole.iov_len > given->iov_len) {
        memcpy(buffer, given->iov_base, given->iov_len);
        result = real(PTRACE_SETREGSET, pid, addr, &whole);
        saved = errno;
    }
    free(buffer);
    errno = saved;
    return result;
}

long ptrace(int request, ...)
{
    static ptrace_fn real;
    va_list arguments;
    pid_t pid;
    void *addr;
    void *data;
    long result;

    va_start(arguments, request);
    pid = va_arg(arguments, pid_t);
    addr = va_arg(arguments, void *);
    data = va_arg(arguments, void *);
    va_end(arguments);
    if (!real)
        real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    result = real(request, pid, addr, data);
    if (result == -1 && errno == EFAULT && request == PTRACE_SETREGSET && (long)addr == NT_X86_XSTATE && data)
        result = set_whole_xstate(real, pid, addr, data);
    return result;
}
