/* Declaration-only <argp.h> for building vendored elfutils (libbpf-sys) against musl.
 *
 * musl has no argp. libelf (the only part of elfutils that libbpf-sys links) never uses
 * it, but elfutils/lib/color.c and lib/printversion.{c,h} include <argp.h> and are
 * compiled into libeu.a, which libbpf-sys builds and then never links. These declarations
 * only have to let those files compile; nothing here is ever called.
 * Layouts follow glibc's <argp.h> so the initializers in color.c type-check.
 * Used together with ac_cv_search_argp_parse="none required" (see .cargo/config.toml).
 */
#ifndef KESTREL_MUSL_ARGP_STUB_H
#define KESTREL_MUSL_ARGP_STUB_H

#include <errno.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef __error_t_defined
#define __error_t_defined 1
typedef int error_t;
#endif

struct argp_state;
struct argp;
struct argp_child;

typedef error_t (*argp_parser_t)(int key, char *arg, struct argp_state *state);

struct argp_option {
    const char *name;
    int key;
    const char *arg;
    int flags;
    const char *doc;
    int group;
};

#define OPTION_ARG_OPTIONAL 0x1
#define OPTION_HIDDEN       0x2
#define OPTION_ALIAS        0x4
#define OPTION_DOC          0x8
#define OPTION_NO_USAGE     0x10

struct argp {
    const struct argp_option *options;
    argp_parser_t parser;
    const char *args_doc;
    const char *doc;
    const struct argp_child *children;
    char *(*help_filter)(int key, const char *text, void *input);
    const char *argp_domain;
};

struct argp_child {
    const struct argp *argp;
    int flags;
    const char *header;
    int group;
};

struct argp_state {
    const struct argp *root_argp;
    int argc;
    char **argv;
    int next;
    unsigned flags;
    unsigned arg_num;
    int quoted;
    void *input;
    void **child_inputs;
    void *hook;
    char *name;
    FILE *err_stream;
    FILE *out_stream;
    void *pstate;
};

#define ARGP_ERR_UNKNOWN    E2BIG
#define ARGP_KEY_ARG        0
#define ARGP_KEY_ARGS       0x1000006
#define ARGP_KEY_END        0x1000001
#define ARGP_KEY_NO_ARGS    0x1000002
#define ARGP_KEY_INIT       0x1000003
#define ARGP_KEY_FINI       0x1000007
#define ARGP_KEY_SUCCESS    0x1000004
#define ARGP_KEY_ERROR      0x1000005

#define ARGP_HELP_USAGE       0x01
#define ARGP_HELP_SHORT_USAGE 0x02
#define ARGP_HELP_SEE         0x04
#define ARGP_HELP_LONG        0x08
#define ARGP_HELP_PRE_DOC     0x10
#define ARGP_HELP_POST_DOC    0x20
#define ARGP_HELP_DOC         (ARGP_HELP_PRE_DOC | ARGP_HELP_POST_DOC)
#define ARGP_HELP_BUG_ADDR    0x40
#define ARGP_HELP_LONG_ONLY   0x80
#define ARGP_HELP_EXIT_ERR    0x100
#define ARGP_HELP_EXIT_OK     0x200
#define ARGP_HELP_STD_ERR     (ARGP_HELP_SEE | ARGP_HELP_EXIT_ERR)
#define ARGP_HELP_STD_USAGE   (ARGP_HELP_SHORT_USAGE | ARGP_HELP_SEE | ARGP_HELP_EXIT_ERR)
#define ARGP_HELP_STD_HELP    (ARGP_HELP_SHORT_USAGE | ARGP_HELP_LONG | ARGP_HELP_EXIT_OK \
                               | ARGP_HELP_DOC | ARGP_HELP_BUG_ADDR)

#define ARGP_PARSE_ARGV0  0x01
#define ARGP_NO_ERRS      0x02
#define ARGP_NO_ARGS      0x04
#define ARGP_IN_ORDER     0x08
#define ARGP_NO_HELP      0x10
#define ARGP_NO_EXIT      0x20
#define ARGP_LONG_ONLY    0x40
#define ARGP_SILENT       (ARGP_NO_EXIT | ARGP_NO_ERRS | ARGP_NO_HELP)

extern const char *argp_program_version;
extern void (*argp_program_version_hook)(FILE *stream, struct argp_state *state);
extern const char *argp_program_bug_address;

error_t argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags,
                   int *arg_index, void *input);
void argp_help(const struct argp *argp, FILE *stream, unsigned flags, char *name);
void argp_state_help(const struct argp_state *state, FILE *stream, unsigned flags);
void argp_usage(const struct argp_state *state);
void argp_error(const struct argp_state *state, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void argp_failure(const struct argp_state *state, int status, int errnum,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif

#endif /* KESTREL_MUSL_ARGP_STUB_H */
