/*
 * Parallel syscall load for tests/qemu/cpus.sh: `sysloop PROCS ITERS` forks
 * PROCS children, each opening and closing /etc/passwd ITERS times (records
 * the probe sends to its one ring, from every CPU at once), waits for all and
 * prints "ns=ELAPSED calls=N". Static musl, so it runs in the busybox guest.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sysloop PROCS ITERS\n");
		return 64;
	}
	int procs = atoi(argv[1]);
	long iters = atol(argv[2]);
	long long t0 = now_ns();
	for (int p = 0; p < procs; p++) {
		pid_t c = fork();
		if (c < 0)
			return 1;
		if (c == 0) {
			for (long i = 0; i < iters; i++) {
				int fd = open("/etc/passwd", O_RDONLY);
				if (fd < 0)
					_exit(1);
				close(fd);
			}
			_exit(0);
		}
	}
	int st, bad = 0;
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	printf("ns=%lld calls=%ld\n", now_ns() - t0, 2L * procs * iters);
	return bad;
}
