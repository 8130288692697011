// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Replays the seed corpora and the regression inputs through every fuzz
 * target's entry point, without libFuzzer, so they cannot rot:
 *
 *   test_fuzz_replay                 every file of tests/fuzz/{corpus,regress}/TARGET/
 *   test_fuzz_replay TARGET FILE...  those files through one target
 *
 * The fuzz dir is $DF_ROOT/tests/fuzz (tests/run.sh sets DF_ROOT), else
 * tests/fuzz under the current directory. Each target runs in a child, so a
 * crash (or a sanitizer's report, in the build/asan tree) is one failing line
 * naming the target, with the input on stderr.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../hook/util.h"

#define T(name) int df_fuzz_##name(const uint8_t *data, size_t size);
T(state)
T(bundle)
T(config)
T(rules)
T(profile)
T(dns)
#undef T

static const struct {
	const char *name;
	int (*fn)(const uint8_t *data, size_t size);
	int root; /* needs bpf() */
} targets[] = {
	{ "state", df_fuzz_state, 0 },	 { "bundle", df_fuzz_bundle, 0 },
	{ "config", df_fuzz_config, 0 }, { "rules", df_fuzz_rules, 0 },
	{ "profile", df_fuzz_profile, 0 }, { "dns", df_fuzz_dns, 1 },
};

static int replay_file(int (*fn)(const uint8_t *, size_t), const char *path)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = read_file_capped(AT_FDCWD, path, 16 * 1024 * 1024, &buf, &len);
	if (r < 0) {
		fprintf(stderr, "read %s: %s\n", path, strerror(-r));
		return r;
	}
	fprintf(stderr, "replay %s\n", path);
	/* exactly the bytes of the file: no terminator the target could lean on */
	{
		_cleanup_free_ uint8_t *exact = malloc(len ? len : 1);

		if (!exact)
			return -ENOMEM;
		memcpy(exact, buf, len);
		fn(exact, len);
	}
	return 0;
}

/* Every regular file of dir, in name order; returns how many, or -errno. */
static int replay_dir(int (*fn)(const uint8_t *, size_t), const char *dir)
{
	struct dirent **list;
	int n, done = 0, err = 0;

	n = scandir(dir, &list, NULL, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];

		if (list[i]->d_name[0] != '.' && !err) {
			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			err = replay_file(fn, path);
			done++;
		}
		free(list[i]);
	}
	free(list);
	return err < 0 ? err : done;
}

static int find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++)
		if (!strcmp(targets[i].name, name))
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	const char *root = getenv("DF_ROOT");
	char base[PATH_MAX];
	int failed = 0;

	if (argc >= 3) {
		int t = find(argv[1]);

		if (t < 0) {
			fprintf(stderr, "unknown target %s\n", argv[1]);
			return 2;
		}
		for (int i = 2; i < argc; i++)
			if (replay_file(targets[t].fn, argv[i]) < 0)
				return 1;
		printf("ok - fuzz replay %s: %d inputs\n", argv[1], argc - 2);
		return 0;
	}
	snprintf(base, sizeof(base), "%s/tests/fuzz", root && *root ? root : ".");
	for (size_t t = 0; t < ARRAY_SIZE(targets); t++) {
		int n[2] = { 0, 0 }, st, pipefd[2];
		pid_t pid;

		if (targets[t].root && geteuid() != 0) {
			printf("skip - fuzz replay %s: needs root for bpf()\n", targets[t].name);
			continue;
		}
		if (pipe(pipefd) < 0)
			return 1;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			char dir[PATH_MAX + 16];

			close(pipefd[0]);
			for (int k = 0; k < 2; k++) {
				snprintf(dir, sizeof(dir), "%s/%s/%s", base, k ? "regress" : "corpus",
					 targets[t].name);
				n[k] = replay_dir(targets[t].fn, dir);
				if (n[k] < 0) {
					fprintf(stderr, "%s: %s\n", dir, strerror(-n[k]));
					_exit(3);
				}
			}
			if (write(pipefd[1], n, sizeof(n)) != sizeof(n))
				_exit(4);
			_exit(0);
		}
		close(pipefd[1]);
		if (read(pipefd[0], n, sizeof(n)) != sizeof(n))
			n[0] = n[1] = -1;
		close(pipefd[0]);
		if (waitpid(pid, &st, 0) < 0) {
			printf("not ok - fuzz replay %s: wait: %s\n", targets[t].name, strerror(errno));
			failed++;
		} else if (WIFSIGNALED(st)) {
			printf("not ok - fuzz replay %s: killed by signal %d (%s); the input is the last \"replay\" line on stderr\n",
			       targets[t].name, WTERMSIG(st), strsignal(WTERMSIG(st)));
			failed++;
		} else if (WEXITSTATUS(st) != 0) {
			printf("not ok - fuzz replay %s: exit %d (a sanitizer's report or an unreadable input is on stderr)\n",
			       targets[t].name, WEXITSTATUS(st));
			failed++;
		} else if (n[0] < 1) {
			printf("not ok - fuzz replay %s: no seed corpus in %s/corpus/%s\n",
			       targets[t].name, base, targets[t].name);
			failed++;
		} else {
			printf("ok - fuzz replay %s: %d corpus inputs, %d regressions\n",
			       targets[t].name, n[0], n[1]);
		}
	}
	return failed ? 1 : 0;
}
