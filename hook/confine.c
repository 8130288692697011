// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include "confine.h"
#include "util.h"

static void seccomp_freep(scmp_filter_ctx *c)
{
	if (*c)
		seccomp_release(*c);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_freep)

/*
 * The hook after parsing: what libbpf, the fence engine, the report and
 * syslog use. sysinfo: glibc's qsort asks sysconf(_SC_PHYS_PAGES) once it
 * sorts 1 KiB or more (libbpf sorting an object's relocations) and uses the
 * struct without checking the call, so a refused sysinfo left it reading
 * uninitialised memory (memcheck saw it in qsort_r).
 */
static const char *const hook_syscalls[] = {
	"read", "write", "pread64", "pwrite64", "readv", "writev", "lseek", "close", "openat",
	"open", "fstat", "newfstatat", "stat", "lstat", "statx", "statfs", "fstatfs", "fcntl",
	"dup", "dup2", "dup3", "getdents64", "readlink", "readlinkat", "access", "faccessat",
	"faccessat2", "getcwd", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
	"renameat", "renameat2", "fsync", "fdatasync", "fchmod", "fchmodat", "ftruncate",
	"name_to_handle_at", "mount", "bpf", "mmap", "munmap", "mprotect", "mremap", "madvise",
	"brk", "getrandom", "uname", "getrlimit", "setrlimit", "prlimit64", "getpid", "gettid",
	"getppid", "getuid", "geteuid", "getgid", "getegid", "clock_gettime", "gettimeofday",
	"nanosleep", "clock_nanosleep", "futex", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"sched_getaffinity", "sched_yield", "exit", "exit_group", "ioctl", "connect", "sendto",
	"sendmsg", "kill", "tgkill", "restart_syscall", "set_robust_list", "rseq", "sysinfo",
	/* cg2_may_hold_inet_stream: the kinds of socket a container's process holds */
	"getxattr",
};

/*
 * A build with AddressSanitizer (make check-sanitize, build/asan): at exit
 * LeakSanitizer stops the world from a thread it clones, which ptrace()s the
 * others and waits for them, and it reads its own state with prctl(). These
 * join the allow-list in that build only; the build that is installed never
 * has them.
 */
#if defined(__SANITIZE_ADDRESS__)
#define DF_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DF_SANITIZER 1
#endif
#endif
#ifdef DF_SANITIZER
static const char *const sanitizer_syscalls[] = {
	"clone", "clone3", "ptrace", "prctl", "wait4", "waitid", "sigaltstack", "getdents",
};
#endif

static int allow_all(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]), r;

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

int df_confine_self(void)
{
	_cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int r;

	if (!ctx)
		return -ENOMEM;
	r = allow_all(ctx, hook_syscalls, ARRAY_SIZE(hook_syscalls));
	if (r < 0)
		return r;
#ifdef DF_SANITIZER
	r = allow_all(ctx, sanitizer_syscalls, ARRAY_SIZE(sanitizer_syscalls));
	if (r < 0)
		return r;
#endif
#ifndef DF_SANITIZER
	/*
	 * Threads, not processes: the fence's programs are verified on a second
	 * thread (fence.c). clone only with CLONE_THREAD; clone3 hides its flags
	 * from seccomp behind a pointer, so it answers ENOSYS and glibc falls
	 * back to clone.
	 */
#if defined(__s390__) || defined(__s390x__)
	/* s390 passes clone's stack first and its flags second */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A1(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
#else
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
#endif
	if (r < 0)
		return r;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0)
		return r;
#endif
	/* sockets: only AF_UNIX, for syslog */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (r < 0)
		return r;
	return seccomp_load(ctx);
}

/* What could detach, blind or sidestep the fence from inside. */
static const char *const job_denied[] = {
	"bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
	"finit_module", "delete_module", "fsopen", "fsmount", "move_mount", "open_tree",
	"pidfd_getfd", "process_vm_writev", "ptrace",
};

int df_confine_job(void)
{
	_cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(job_denied); i++) {
		int nr = seccomp_syscall_resolve_name(job_denied[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0)
			return r;
	}
	/*
	 * Without no_new_privs where the kernel allows it (CAP_SYS_ADMIN, as
	 * run has): it would stop a job's setuid binaries and file capabilities
	 * (sudo -u, su, ping after dropping root), which the filter, kept
	 * across every exec, does not need. Elsewhere the kernel takes a
	 * filter only with it.
	 */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r == 0 && seccomp_load(ctx) == 0)
		return 0;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	return r < 0 ? r : seccomp_load(ctx);
}
