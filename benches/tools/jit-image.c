/*
 * The JIT image of a loaded BPF program, for probe-hot.sh: perf cannot
 * annotate a JITed program without libopcodes, nor bpftool dump one without
 * libbfd, and Debian builds both without them. Takes the newest program of
 * that name (the agent just started), writes its image to OUT and prints
 * its tag (the hex in perf's bpf_prog_<tag>_... symbol). Only <linux/bpf.h>
 * and the bpf syscall: no libbpf needed. Root.
 *
 *   jit-image NAME OUT
 */
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int prog_info(int fd, struct bpf_prog_info *info)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(*info);
	attr.info.info = (__u64)(unsigned long)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

int main(int argc, char **argv)
{
	struct bpf_prog_info info;
	union bpf_attr attr;
	__u32 id = 0;
	int fd, best = -1;

	if (argc != 3) {
		fprintf(stderr, "usage: jit-image NAME OUT\n");
		return 2;
	}
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.start_id = id;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &attr))
			break;
		id = attr.next_id;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = id;
		fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (!prog_info(fd, &info) && !strncmp(info.name, argv[1], sizeof(info.name))) {
			if (best >= 0)
				close(best);
			best = fd;
		} else {
			close(fd);
		}
	}
	if (best < 0) {
		fprintf(stderr, "jit-image: no loaded BPF program named %s\n", argv[1]);
		return 1;
	}
	memset(&info, 0, sizeof(info));
	if (prog_info(best, &info) || !info.jited_prog_len) {
		fprintf(stderr, "jit-image: %s has no JIT image (bpf_jit_enable?)\n", argv[1]);
		return 1;
	}
	__u32 len = info.jited_prog_len;
	unsigned char *image = malloc(len);

	memset(&info, 0, sizeof(info));
	info.jited_prog_len = len;
	info.jited_prog_insns = (__u64)(unsigned long)image;
	if (!image || prog_info(best, &info)) {
		perror("jit-image");
		return 1;
	}
	FILE *out = fopen(argv[2], "wb");

	if (!out || fwrite(image, 1, len, out) != len || fclose(out)) {
		perror(argv[2]);
		return 1;
	}
	for (int i = 0; i < BPF_TAG_SIZE; i++)
		printf("%02x", info.tag[i]);
	printf("\n");
	return 0;
}
