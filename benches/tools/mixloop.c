/*
 * The rig's syscall mix as a bare C loop (benches/mix.rs is the Rust one):
 * open/read/close of /etc/hostname, getpid, getppid, and a fork+exec of
 * /bin/true every EXEC_EVERY iterations (0: none). Prints seconds.
 *
 *   mixloop [ITERS [EXEC_EVERY]]      (200000, 2000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	long every = argc > 2 ? atol(argv[2]) : 2000;
	struct timespec t0, t1;
	char b[1];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int fd = open("/etc/hostname", O_RDONLY);

		if (read(fd, b, 1) < 0)
			return 1;
		close(fd);
		getpid();
		getppid();
		if (every && i % every == every - 1) {
			pid_t p = fork();

			if (!p) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(1);
			}
			waitpid(p, NULL, 0);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.4f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
