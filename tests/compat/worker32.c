/*
 * A 32-bit worker with known syscall counts for tests/compat.rs, built with
 * gcc -m32 -static. Besides forks, execs and open/close pairs it makes calls
 * whose i386 numbers are 64-bit numbers of traced syscalls (read = 3 is the
 * x86_64 close, setpgid = 57 the x86_64 fork): a probe that indexed the
 * 64-bit table with them would report closes and forks that never happened.
 *
 * usage: worker32 PATH FORKS EXECS OPENS
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		exit(3);
}

int main(int argc, char **argv)
{
	char buf[1];
	int i, j, forks, execs, opens;

	if (argc == 2 && strcmp(argv[1], "exec-child") == 0)
		return 0;
	if (argc != 5)
		return 2;
	forks = atoi(argv[2]);
	execs = atoi(argv[3]);
	opens = atoi(argv[4]);
	for (i = 0; i < forks; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		reap(pid);
	}
	for (i = 0; i < execs; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			execl("/proc/self/exe", argv[0], "exec-child", (char *)0);
			_exit(127);
		}
		reap(pid);
	}
	for (i = 0; i < opens; i++) {
		int fd = open(argv[1], O_RDONLY);

		if (fd < 0)
			return 4;
		for (j = 0; j < 3; j++)
			if (read(fd, buf, 0) < 0)
				return 5;
		setpgid(0, 0);
		close(fd);
	}
	return 0;
}
