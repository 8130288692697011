// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* seccomp confinement, each in a child so the test runner stays free. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../hook/confine.h"
#include "unit.h"

/* Run fn in a child after confining it; the child's exit code is fn's result. */
static int in_child(int (*confine)(void), int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (confine() < 0)
			_exit(100);
		_exit(fn());
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* 0 when the call failed with EPERM, 1 when it was allowed, 2 other errors */
static int try_exec(void)
{
	char *argv[] = { "true", NULL };

	execv("/bin/true", argv);
	return errno == EPERM ? 0 : 2;
}

/* exits 7 when exec is allowed */
static int try_exec7(void)
{
	char *argv[] = { "sh", "-c", "exit 7", NULL };

	execv("/bin/sh", argv);
	return errno == EPERM ? 0 : 2;
}

static int try_inet_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	return fd < 0 ? (errno == EPERM ? 0 : 2) : 1;
}

static int try_unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	return fd >= 0 ? 1 : 0;
}

static int try_read_file(void)
{
	char b[16];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	return fd >= 0 && read(fd, b, sizeof(b)) > 0 ? 1 : 0;
}

static int try_bpf(void)
{
	long r = syscall(__NR_bpf, 0, NULL, 0);

	return r < 0 ? (errno == EPERM ? 0 : 1) : 1;
}

static int try_ptrace(void)
{
	long r = syscall(__NR_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);

	return r < 0 && errno == EPERM ? 0 : 1;
}

static void *thread_main(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

/* 1 when a thread ran and was joined (the hook verifies on a second thread) */
static int try_thread(void)
{
	pthread_t th;
	int v = 0;

	if (pthread_create(&th, NULL, thread_main, &v) || pthread_join(th, NULL))
		return 0;
	return v == 42;
}

/* 0 when fork() failed with EPERM, 1 when a child was made */
static int try_fork(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno == EPERM ? 0 : 2;
	waitpid(pid, &status, 0);
	return 1;
}

/*
 * 1 when sysinfo works and glibc's physical page count is the kernel's
 * (qsort sizes its merge buffer by it, without checking sysinfo's result)
 */
static int try_sysinfo(void)
{
	struct sysinfo si;
	long pages;

	memset(&si, 0, sizeof(si));
	if (sysinfo(&si) < 0 || si.totalram == 0 || si.mem_unit == 0)
		return 0;
	pages = sysconf(_SC_PHYS_PAGES);
	return pages > 0 && (unsigned long long)pages * (unsigned long long)sysconf(_SC_PAGESIZE) ==
				    (unsigned long long)si.totalram * si.mem_unit;
}

/* clone3 hides its flags from seccomp: 0 when refused with ENOSYS */
static int try_clone3(void)
{
	long r = syscall(__NR_clone3, NULL, 0);

	return r < 0 && errno == ENOSYS ? 0 : 1;
}

int main(void)
{
	CHECK_INT("hook confined: execve refused", 0, in_child(df_confine_self, try_exec));
	CHECK_INT("hook confined: AF_INET socket refused", 0,
		  in_child(df_confine_self, try_inet_socket));
	CHECK_INT("hook confined: AF_UNIX socket (syslog) allowed", 1,
		  in_child(df_confine_self, try_unix_socket));
	CHECK_INT("hook confined: reading files allowed", 1,
		  in_child(df_confine_self, try_read_file));
	CHECK_INT("job confined: bpf() refused", 0, in_child(df_confine_job, try_bpf));
	CHECK_INT("job confined: ptrace refused", 0, in_child(df_confine_job, try_ptrace));
	CHECK_INT("job confined: AF_INET socket allowed", 1,
		  in_child(df_confine_job, try_inet_socket));
	CHECK_INT("job confined: exec allowed (sh -c 'exit 7')", 7,
		  in_child(df_confine_job, try_exec7));
	CHECK_INT("hook confined: exec of sh refused", 0, in_child(df_confine_self, try_exec7));
	CHECK_INT("hook confined: a thread runs", 1, in_child(df_confine_self, try_thread));
	CHECK_INT("hook confined: sysinfo answers (glibc's qsort needs it)", 1,
		  in_child(df_confine_self, try_sysinfo));
#if defined(__SANITIZE_ADDRESS__)
	/* the ASan build lets LeakSanitizer clone its tracer (confine.c) */
	CHECK_INT("hook confined (ASan build): fork allowed", 1, in_child(df_confine_self, try_fork));
	CHECK_INT("hook confined (ASan build): clone3 reaches the kernel", 1,
		  in_child(df_confine_self, try_clone3));
#else
	CHECK_INT("hook confined: fork refused", 0, in_child(df_confine_self, try_fork));
	CHECK_INT("hook confined: clone3 answers ENOSYS", 0, in_child(df_confine_self, try_clone3));
#endif
	return unit_done();
}
