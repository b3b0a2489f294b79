/* Attach to a child with ptrace (Falco's "PTRACE attached to process").
 * Usage: ptrace_attach [benign] -- "benign" asks PTRACE_CONT of a child it
 * never attached to (fails with ESRCH): the twin that must stay quiet. */
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int benign = argc > 1 && strcmp(argv[1], "benign") == 0;
	pid_t child = fork();

	if (child < 0)
		return 2;
	if (child == 0) {
		pause();
		_exit(0);
	}
	if (benign) {
		ptrace(PTRACE_CONT, child, 0, 0);
	} else if (ptrace(PTRACE_ATTACH, child, 0, 0) == 0) {
		waitpid(child, NULL, 0);
		ptrace(PTRACE_DETACH, child, 0, 0);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
