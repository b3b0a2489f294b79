/* Fileless execution: copy a binary into a memfd and run it from there
 * (the technique of Falco's "Fileless execution via memfd_create").
 * Usage: memfd_exec BINARY [file]  -- with "file", run BINARY from disk
 * instead: the benign twin. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *args[] = { "memfd-payload", NULL };
	char *env[] = { NULL };
	char buf[65536];
	ssize_t n;
	int in, mfd;

	if (argc < 2)
		return 2;
	if (argc > 2 && strcmp(argv[2], "file") == 0) {
		execve(argv[1], args, env);
		return 3;
	}
	in = open(argv[1], O_RDONLY);
	mfd = memfd_create("kestrel-test", MFD_CLOEXEC);
	if (in < 0 || mfd < 0)
		return 4;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(mfd, buf, n) != n)
			return 5;
	fexecve(mfd, args, env);
	perror("fexecve");
	return 6;
}
