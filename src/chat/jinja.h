/* A Jinja2 subset: enough to render the chat templates models ship (GGUF
 * tokenizer.chat_template, Hugging Face tokenizer_config.json "chat_template").
 *
 * Environment as Hugging Face's apply_chat_template sets it up: trim_blocks and lstrip_blocks
 * on, `-` whitespace control, undefined values print as "" and are false.
 * Statements: for (loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
 * `for a, b in ...`, `for x in xs if c`, `{% else %}`, break/continue), if/elif/else, set
 * (names and namespace attributes), comments, {% generation %} markers (no output).
 * Expressions: literals (strings, ints, floats, true/false/none, lists, tuples, dicts),
 * attribute and subscript access, slices ([::-1], [1:]), calls, the operators
 * or and not in `not in` == != < > <= >= + - * / // % ~ and `a if c else b`; filters
 * (trim length count tojson upper lower default first last join string int list reverse
 * capitalize title replace items selectattr rejectattr map safe); tests (defined undefined
 * none string number integer float mapping iterable sequence boolean true false equalto eq ne
 * odd even); functions namespace() range() raise_exception() strftime_now(); string methods
 * (strip lstrip rstrip split startswith endswith upper lower replace title capitalize find),
 * dict methods (items keys values get), list append.
 * Not supported (a clear error names them): macros, call blocks, block set, include/extends,
 * filters and tests not listed.
 * Anything else fails to parse or render with a message naming the construct.
 *
 * Templates come from model files, so from anyone: nesting deeper than 256 (blocks,
 * expressions, values), more than a million loop iterations or list items, a string or output
 * over 16 MiB, more than 256 MiB of memory or 20 million steps of work, names over 256
 * characters and 64-bit integer overflow (+ - * // unary -, range(), int literals) each end in
 * CKE_ERR_RANGE (or CKE_ERR_FORMAT) with a message naming the limit and the template line.
 *
 * A parsed template is immutable: render it any number of times (not concurrently). */
#ifndef CKE_CHAT_JINJA_H
#define CKE_CHAT_JINJA_H

#include "cke/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cke_jinja cke_jinja;

cke_status cke_jinja_parse(const char *src, size_t len, cke_jinja **out, cke_err *err);
void cke_jinja_free(cke_jinja *t);

/* One chat message: role ("system", "user", "assistant", "tool") and content; extra string
 * fields (e.g. reasoning_content) may be given as name/value pairs. */
typedef struct {
    const char *role;
    const char *content;
    const char *const *extra; /* [2 * n_extra]: name, value, name, value ... */
    int n_extra;
} cke_chat_msg;

/* A top-level variable besides messages/bos_token/eos_token/add_generation_prompt. */
typedef struct {
    const char *name;
    enum { CKE_JVAR_STR, CKE_JVAR_BOOL, CKE_JVAR_INT } kind;
    const char *s;
    int64_t i; /* BOOL: 0/1 */
} cke_jinja_var;

typedef struct {
    const cke_chat_msg *messages;
    int64_t n_messages;
    const char *bos_token, *eos_token; /* NULL: undefined */
    bool add_generation_prompt;
    const cke_jinja_var *vars;
    int n_vars;
} cke_jinja_chat;

/* Renders into *out (malloc'd, NUL-terminated; *len excludes the NUL). A template's
 * raise_exception gives CKE_ERR_ARG with its message. */
cke_status cke_jinja_render(const cke_jinja *t, const cke_jinja_chat *c, char **out, size_t *len, cke_err *err);

#endif
