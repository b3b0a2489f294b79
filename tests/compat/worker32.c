/*
 * A 32-bit (i386) worker with exactly known syscalls for tests/compat.rs.
 * Freestanding: no libc, every syscall is an int 0x80 made here, so the
 * build needs only the host gcc (`-m32 -nostdlib -static`; Debian's
 * gcc-multilib would conflict with the aarch64 cross compiler).
 *
 * Besides forks, execs and open/close pairs it makes calls whose i386
 * numbers are 64-bit numbers of traced syscalls (read = 3 is the x86_64
 * close, setpgid = 57 the x86_64 fork): a probe that indexed the 64-bit
 * table with them would report closes and forks that never happened.
 *
 * usage: worker32 PATH FORKS EXECS OPENS    (worker32 x = exec child)
 */
#define NR_exit 1
#define NR_fork 2
#define NR_read 3
#define NR_open 5
#define NR_close 6
#define NR_execve 11
#define NR_setpgid 57
#define NR_wait4 114

static long sys3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

static long sys4(long nr, long a, long b, long c, long d)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
			 : "memory");
	return ret;
}

static void die(int code)
{
	for (;;)
		sys3(NR_exit, code, 0, 0);
}

static int atoi(const char *s)
{
	int n = 0;

	while (*s >= '0' && *s <= '9')
		n = n * 10 + (*s++ - '0');
	return n;
}

static void reap(long pid)
{
	int st = -1;

	if (pid <= 0 || sys4(NR_wait4, pid, (long)&st, 0, 0) != pid || st != 0)
		die(3);
}

static int run(int argc, char **argv, char **envp)
{
	char buf[1];
	int i, j;

	if (argc == 2)
		return 0; /* the exec child */
	if (argc != 5)
		return 2;
	for (i = atoi(argv[2]); i > 0; i--) {
		long pid = sys3(NR_fork, 0, 0, 0);

		if (pid == 0)
			die(0);
		reap(pid);
	}
	for (i = atoi(argv[3]); i > 0; i--) {
		char *args[] = { argv[0], "x", 0 };
		long pid = sys3(NR_fork, 0, 0, 0);

		if (pid == 0) {
			sys3(NR_execve, (long)"/proc/self/exe", (long)args, (long)envp);
			die(127);
		}
		reap(pid);
	}
	for (i = atoi(argv[4]); i > 0; i--) {
		long fd = sys3(NR_open, (long)argv[1], 0, 0);

		if (fd < 0)
			return 4;
		for (j = 0; j < 3; j++)
			if (sys3(NR_read, fd, (long)buf, 0) < 0)
				return 5;
		sys3(NR_setpgid, 0, 0, 0);
		sys3(NR_close, fd, 0, 0);
	}
	return 0;
}

/* The kernel starts us with argc at the stack pointer, then argv and envp. */
__attribute__((used)) static void start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	die(run(argc, argv, argv + argc + 1));
}

__asm__(".globl _start\n"
	"_start:\n"
	"  mov %esp, %eax\n"
	"  and $-16, %esp\n"
	"  sub $12, %esp\n"
	"  push %eax\n"
	"  call start_c\n");
