/* Tiny static binary for the QEMU smoke test (installed as /bin/kestrel). */
#include <stdio.h>
#include <sys/utsname.h>

int main(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        return 1;
    printf("kestrel-smoke-binary-ok %s %s\n", u.machine, u.release);
    return 0;
}
