/* Chat templates: the Jinja-subset interpreter on constructs one by one, real templates
 * (Qwen3 and Llama 3 tokenizer_config.json, Phi-3 GGUF) rendered against the exact strings
 * their text implies, the built-in fallback formats, and `cke chat` end to end on stories260K
 * (no template: plain continuation, which must equal `cke run` at --temp 0).
 * Ends with "N passed, N failed". */
#define _DEFAULT_SOURCE
#include "chat/chat.h"
#include "chat/jinja.h"
#include "runtime/sampler.h"
#include "driver/compile.h"
#include "../common/tcommon.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int n_pass, n_fail;

static void check(int ok, const char *what, const char *detail) {
    if (ok) { n_pass++; return; }
    n_fail++;
    printf("FAIL %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

/* prints a string with escapes, for failure messages */
static void show(const char *label, const char *s) {
    printf("   %s: \"", label);
    for (; s && *s; s++) {
        if (*s == '\n') printf("\\n");
        else if (*s == '"') printf("\\\"");
        else putchar(*s);
    }
    printf("\"\n");
}

static void expect_render(const char *name, const char *tpl, const cke_jinja_chat *c, const char *want) {
    cke_jinja *t = NULL;
    cke_err e = {0};
    cke_status st = cke_jinja_parse(tpl, strlen(tpl), &t, &e);
    if (st) { check(0, name, e.msg); return; }
    char *out = NULL;
    size_t len = 0;
    st = cke_jinja_render(t, c, &out, &len, &e);
    if (st) check(0, name, e.msg);
    else {
        int ok = !strcmp(out, want) && len == strlen(want);
        check(ok, name, ok ? NULL : "rendered text differs");
        if (!ok) { show("want", want); show("got ", out); }
    }
    free(out);
    cke_jinja_free(t);
}

static void expect_error(const char *name, const char *tpl, const cke_jinja_chat *c, cke_status want, const char *msg_has) {
    cke_jinja *t = NULL;
    cke_err e = {0};
    cke_status st = cke_jinja_parse(tpl, strlen(tpl), &t, &e);
    char *out = NULL;
    if (!st) st = cke_jinja_render(t, c, &out, NULL, &e);
    char d[700];
    snprintf(d, sizeof d, "status %s (want %s), message '%s'", cke_status_name(st), cke_status_name(want), e.msg);
    check(st == want && (!msg_has || strstr(e.msg, msg_has)), name, st == want && (!msg_has || strstr(e.msg, msg_has)) ? NULL : d);
    free(out);
    cke_jinja_free(t);
}

static const cke_chat_msg conv4[] = {
    {"system", "You are a helpful assistant.", NULL, 0},
    {"user", "Hello!", NULL, 0},
    {"assistant", "Hi! How can I help?", NULL, 0},
    {"user", "What is 2+2?", NULL, 0},
};

static void test_constructs(void) {
    cke_jinja_chat c = {.messages = conv4, .n_messages = 4, .bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = true};
    expect_render("text only", "plain text\n", &c, "plain text\n");
    expect_render("output + concat", "{{ 'a' + \"b\" ~ 1 ~ none }}|{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 1 / 2 }}", &c,
                  "ab1None|7|3|2|0.5");
    expect_render("string escapes", "{{ 'a\\nb\\'c\\\\' }}", &c, "a\nb'c\\");
    expect_render("bos/eos/add_generation_prompt", "{{ bos_token }}{% if add_generation_prompt %}G{% endif %}{{ eos_token }}", &c, "<s>G</s>");
    expect_render("for + loop vars",
                  "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{% if loop.first %}F{% endif %}"
                  "{% if loop.last %}L{% endif %}{{ loop.length }},{% endfor %}", &c,
                  "104F4,2134,3224,431L4,");
    expect_render("subscript and attribute", "{{ messages[0]['role'] }} {{ messages[-1].content }} {{ messages[9].role }}.", &c,
                  "system What is 2+2? .");
    expect_render("slices", "{% for m in messages[1:] %}{{ m.role[0] }}{% endfor %} {% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }}",
                  &c, "uau uaus bcd cba");
    expect_render("if/elif/else",
                  "{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' %}U{% else %}A{% endif %}{% endfor %}", &c, "SUAU");
    expect_render("set scoping + namespace",
                  "{% set x = 1 %}{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set x = 2 %}{% set ns.n = ns.n + 1 %}"
                  "{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ x }} {{ ns.n }} {{ ns.s }}", &c, "1 4 suau");
    expect_render("filters", "{{ '  hi  ' | trim }}|{{ messages | length }}|{{ 'héllo' | length }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|"
                  "{{ undefined_thing | default('d') }}|{{ [1, 2, 3] | join('-') }}|{{ messages | first | tojson }}|{{ [3,4] | last }}|"
                  "{{ 'a b' | replace(' ', '_') }}|{{ messages | map(attribute='role') | join(',') }}|"
                  "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}", &c,
                  "hi|4|5|ABab|d|1-2-3|{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"}|4|a_b|system,user,assistant,user|2");
    expect_render("tests", "{{ foo is defined }}{{ bos_token is defined }}{{ none is none }}{{ 'x' is string }}{{ 3 is number }}"
                  "{{ messages[0].nope is not defined }}{{ false is false }}{{ messages[0] is mapping }}", &c,
                  "FalseTrueTrueTrueTrueTrueTrueTrue");
    expect_render("in / not in / and / or / not", "{{ 'ell' in 'hello' }}{{ 'x' not in ['a'] }}{{ 'role' in messages[0] }}"
                  "{{ 1 and 0 }}{{ 0 or 'y' }}{{ not 0 }}{{ 'a' if 1 > 2 else 'b' }}", &c, "TrueTrueTrue0yTrueb");
    expect_render("string methods", "{{ ' x '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a,b,,c'.split(',') | length }}|"
                  "{{ 'a b  c'.split() | join('+') }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.startswith(('x', 'a')) }}|"
                  "{{ 'hello world'.title() }}|{{ {'a': 1}.get('b', 2) }}|{% for k, v in {'p': 1, 'q': 2}.items() %}{{ k }}={{ v }};{% endfor %}", &c,
                  "x|axx|4|a+b+c|TrueTrueTrue|Hello World|2|p=1;q=2;");
    /* HF's environment: trim_blocks + lstrip_blocks, and '-' markers */
    expect_render("trim_blocks + lstrip_blocks", "A\n  {% if true %}\n  B\n  {% endif %}\nC\n", &c, "A\n  B\nC\n");
    expect_render("whitespace control", "A   {%- if true -%}   B   {%- endif %}  \n{{- ' C ' -}}  D", &c, "AB C D");
    expect_render("lstrip only at line start", "x {% if true %}y{% endif %}", &c, "x y");
    expect_render("generation markers", "{% for m in messages[:2] %}{% generation %}{{ m.role }}{% endgeneration %};{% endfor %}", &c, "system;user;");
    expect_render("comments", "a{# a comment #}b\n  {# own line #}\nc", &c, "ab\nc");
    expect_render("for else / break / continue / filter",
                  "{% for x in [] %}no{% else %}empty{% endfor %} {% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
                  "{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %} {% for x in range(6) if x is odd %}{{ x }}{{ loop.length }}{% endfor %}",
                  &c, "empty 0134 133353");
    expect_render("tojson escapes + indent", "{{ {'k': 'a\"b\\n', 'n': [1, true, none]} | tojson }}|{{ {'a': [1]} | tojson(indent=2) }}", &c,
                  "{\"k\": \"a\\\"b\\n\", \"n\": [1, true, null]}|{\n  \"a\": [\n    1\n  ]\n}");
    expect_error("raise_exception", "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}",
                 &c, CKE_ERR_ARG, "Conversation must start with user");
    expect_error("unclosed tag", "{% if x %}abc", &c, CKE_ERR_FORMAT, "without 'endif'");
    expect_error("unclosed delimiter", "abc {{ x ", &c, CKE_ERR_FORMAT, "unclosed");
    expect_error("unknown filter", "{{ 'a' | frobnicate }}", &c, CKE_ERR_UNSUPPORTED, "frobnicate");
    expect_error("unsupported statement", "{% macro f() %}{% endmacro %}", &c, CKE_ERR_UNSUPPORTED, "macro");
    expect_error("error names the line", "a\nb\n{{ 1 + 'x' }}", &c, CKE_ERR_FORMAT, "line 3");
    expect_error("set on a non-namespace", "{% set d = 1 %}{% set d.x = 2 %}", &c, CKE_ERR_FORMAT, "namespace");
}

/* n copies of s, then tail (malloc'd) */
static char *repeat(const char *head, const char *s, int n, const char *mid, const char *s2, int n2, const char *tail) {
    size_t a = strlen(head), b = strlen(s), c = strlen(mid), d = strlen(s2), f = strlen(tail);
    char *o = malloc(a + b * (size_t)n + c + d * (size_t)n2 + f + 1), *q = o;
    memcpy(q, head, a), q += a;
    for (int i = 0; i < n; i++) memcpy(q, s, b), q += b;
    memcpy(q, mid, c), q += c;
    for (int i = 0; i < n2; i++) memcpy(q, s2, d), q += d;
    memcpy(q, tail, f + 1);
    return o;
}

/* Templates are untrusted (they come with the model): each way to crash, hang or exhaust the
 * interpreter ends in an error naming the limit and the line. */
static void test_hostile(void) {
    cke_jinja_chat c = {.messages = conv4, .n_messages = 4, .bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = true};
    char *t;
    t = repeat("{{ ", "(", 50000, "1", ")", 50000, " }}");
    expect_error("50k nested parentheses", t, &c, CKE_ERR_RANGE, "nested more than 256 levels");
    free(t);
    t = repeat("", "{% if true %}", 20000, "x", "{% endif %}", 20000, "");
    expect_error("20k nested ifs", t, &c, CKE_ERR_RANGE, "nested more than 256 levels");
    free(t);
    t = repeat("{{ ", "[", 5000, "", "]", 5000, " }}");
    expect_error("5k nested list literals", t, &c, CKE_ERR_RANGE, "line 1: blocks or expressions nested");
    free(t);
    t = repeat("{{ ", "not ", 100000, "", "", 0, "1 }}");
    expect_error("100k nots", t, &c, CKE_ERR_RANGE, "nested more than");
    free(t);
    t = repeat("{{ ", "-", 100000, "", "", 0, "1 }}");
    expect_error("100k unary minus", t, &c, CKE_ERR_RANGE, "nested more than");
    free(t);
    t = repeat("{{ ", "1 + ", 100000, "", "", 0, "1 }}");
    expect_error("100k additions (a deep tree from a loop)", t, &c, CKE_ERR_RANGE, "an expression nested more than 256");
    free(t);
    t = repeat("{{ 'a'", " | upper", 100000, "", "", 0, " }}");
    expect_error("100k filters", t, &c, CKE_ERR_RANGE, "an expression nested more than 256");
    free(t);
    expect_render("200 nested parentheses are fine", (t = repeat("{{ ", "(", 60, "7", ")", 60, " }}")), &c, "7");
    free(t);
    expect_render("100 nested ifs are fine", (t = repeat("", "{% if true %}", 100, "x", "{% endif %}", 100, "")), &c, "x");
    free(t);
    expect_error("tojson of a 100k-deep list", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}\n{{ ns.l | tojson }}",
                 &c, CKE_ERR_RANGE, "line 2: a value nested more than 256 levels deep");
    expect_error("printing a 100k-deep list", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}",
                 &c, CKE_ERR_RANGE, "a value nested more than 256");
    expect_error("comparing 100k-deep lists", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l == ns.l }}",
                 &c, CKE_ERR_RANGE, "a value nested more than 256");
    expect_error("a list that contains itself, printed",
                 "{% set l = [1] %}{% set _ = l.append(l) %}{% set _ = l.append(l) %}{{ l }}", &c, CKE_ERR_RANGE, "nested more than");
    expect_error("a list that contains itself, compared",
                 "{% set l = [1] %}{% set _ = l.append(l) %}{% set _ = l.append(l) %}{{ l == l }}", &c, CKE_ERR_RANGE, "");
    expect_error("a list that contains itself, startswith", "{% set l = ['q'] %}{% set _ = l.append(l) %}{{ 'x'.startswith(l) }}",
                 &c, CKE_ERR_RANGE, "nested more than");
    expect_error("a namespace that contains itself", "{% set ns = namespace(a=1) %}{% set ns.b = ns %}{{ ns | tojson }}",
                 &c, CKE_ERR_RANGE, "nested more than");
    /* integers: Python has big ints; 64-bit overflow is an error, never wraps or traps */
    expect_error("INT64_MIN // -1", "{{ (-9223372036854775807 - 1) // -1 }}", &c, CKE_ERR_RANGE, "integer overflow in -9223372036854775808 // -1");
    expect_render("INT64_MIN % -1 is 0", "{{ (-9223372036854775807 - 1) % -1 }}|{{ 7 // -1 }}|{{ -7 // 2 }}|{{ 7 % -3 }}", &c, "0|-7|-4|-2");
    expect_error("// by zero", "x\n{{ 1 // 0 }}", &c, CKE_ERR_FORMAT, "line 2: integer division or modulo by zero");
    expect_error("% by zero", "{{ 1 % 0 }}", &c, CKE_ERR_FORMAT, "by zero");
    expect_error("+ overflow", "{{ 9223372036854775807 + 1 }}", &c, CKE_ERR_RANGE, "integer overflow in 9223372036854775807 + 1");
    expect_error("- overflow", "{{ -9223372036854775807 - 2 }}", &c, CKE_ERR_RANGE, "integer overflow in");
    expect_error("* overflow", "{{ 4611686018427387904 * 2 }}", &c, CKE_ERR_RANGE, "integer overflow in");
    expect_error("unary - overflow", "{{ -(-9223372036854775807 - 1) }}", &c, CKE_ERR_RANGE, "integer overflow in -(");
    expect_error("integer literal too big", "{{ 99999999999999999999 }}", &c, CKE_ERR_RANGE, "does not fit in 64 bits");
    expect_error("float too big for an int", "{{ range(99999999999999999999.0) }}", &c, CKE_ERR_RANGE, "does not fit in a 64-bit integer");
    expect_error("range() over the whole int64 range", "{{ range(-9223372036854775807 - 1, 9223372036854775807) | length }}", &c,
                 CKE_ERR_RANGE, "range() of 18446744073709551615 items");
    expect_render("range() with huge steps", "{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904) | list }}"
                  "{{ range(9223372036854775807, -9223372036854775807, -9223372036854775807 - 1) | list }}{{ range(5, 0, -2) | list }}", &c,
                  "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904][9223372036854775807, -1][5, 3, 1]");
    expect_render("slices with hostile numbers",
                  "{{ 'abcdef'[9223372036854775807:-9223372036854775807:9223372036854775807] }}|{{ 'abc'[::-9223372036854775807 - 1] }}|"
                  "{{ [1, 2, 3][-9223372036854775807 - 1:] }}|{{ 'abc'[-9223372036854775807 - 1] }}|{{ 'abcdef'[1::4] }}|{{ 'abcdef'[::-2] }}", &c,
                  "|c|[1, 2, 3]||bf|fdb");
    /* work, loops, sizes */
    expect_error("nested range(1000000) loops", "{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}",
                 &c, CKE_ERR_RANGE, "loops ran more than 1000000 iterations in all");
    expect_error("string doubling",
                 "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
                 &c, CKE_ERR_RANGE, "a string would be longer than 16 MiB");
    expect_error("string repetition", "{{ ('x' * 1000000) * 1000000 }}", &c, CKE_ERR_RANGE, "longer than 16 MiB");
    expect_error("output too long", "{% for i in range(1000) %}{{ 'x' * 100000 }}{% endfor %}", &c, CKE_ERR_RANGE,
                 "the rendered text would be longer than 16 MiB");
    expect_error("list doubling", "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", &c,
                 CKE_ERR_RANGE, "a list would have more than 1000000 items");
    expect_error("a long search repeated", "{% set a = 'a' * 1000000 %}{% for i in range(100000) %}{% if 'b' in a %}{% endif %}{% endfor %}",
                 &c, CKE_ERR_RANGE, "rendering takes more than");
    expect_render("tojson with a huge indent (capped)", "{{ ([[[1]]] | tojson(indent=2147483647) | length) > 30000 }}", &c, "True");
    expect_error("length of a long string in a long loop",
                 "{% set s = 'x' * 1000000 %}{% for i in range(1000000) %}{% if s | length %}{% endif %}{% endfor %}", &c,
                 CKE_ERR_RANGE, "rendering takes more than 20 million steps");
    expect_error("strip with a long set of characters", "{% set c = 'x' * 1000000 ~ 'y' %}{% set s = 'y' * 1000000 %}{{ s.strip(c) }}", &c,
                 CKE_ERR_RANGE, "rendering takes more than");
    t = repeat("{{ ", "a", 300, "", "", 0, " }}");
    expect_error("a 300-character name", t, &c, CKE_ERR_FORMAT, "a name longer than 256 characters");
    free(t);
    /* parsing stays linear: many tags, many adjacent literals */
    t = repeat("", "{{ 1 }}\n", 200000, "{{ 1 + 'x' }}", "", 0, "");
    expect_error("200k tags: the error still names the line", t, &c, CKE_ERR_FORMAT, "line 200001");
    free(t);
    t = repeat("{{ ", "'ab' ", 100000, "", "", 0, "| length }}");
    expect_render("100k adjacent string literals", t, &c, "200000");
    free(t);
}

/* an empty prompt leaves the model without logits: the sampler says so instead of reading NULL */
static void test_sampler_no_logits(void) {
    cke_sampler *s = NULL;
    cke_err e = {0};
    cke_sampler_opts o = CKE_SAMPLER_DEFAULTS;
    check(cke_sampler_new(&s, 8, &o, &e) == CKE_OK, "sampler_new", e.msg);
    if (!s) return;
    check(cke_sampler_next(s, NULL, NULL, 0) == -1, "sampler: NULL logits give -1", NULL);
    o.temp = 0;
    cke_sampler *g = NULL;
    if (cke_sampler_new(&g, 8, &o, &e) == CKE_OK) {
        check(cke_sampler_next(g, NULL, NULL, 0) == -1, "greedy sampler: NULL logits give -1", NULL);
        static const float l[8] = {0, 1, 5, 2, 0, 0, 0, 0};
        check(cke_sampler_next(g, l, NULL, 0) == 2, "greedy sampler: argmax", NULL);
    }
    check(cke_sampler_next(NULL, NULL, NULL, 0) == -1, "sampler: NULL sampler gives -1", NULL);
    cke_sampler_free(g);
    cke_sampler_free(s);
}

/* Every input the fuzzer (or the issue) found crashing, hanging or exhausting memory, replayed:
 * each must end in output or an error, quickly (the suite runs this under ASan + UBSan too). */
static void test_fuzz_regressions(void) {
    static const char dir[] = "tests/fuzz/regress/jinja";
    static const char *const extra[] = {"reasoning_content", "thinking"};
    static const cke_chat_msg m[] = {{"system", "S", NULL, 0}, {"user", "U <|im_start|>", NULL, 0},
                                     {"assistant", "A", extra, 1}, {"user", "", NULL, 0}};
    cke_jinja_chat c = {.messages = m, .n_messages = 4, .bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = true};
    DIR *d = opendir(dir);
    if (!d) { printf("SKIP fuzz regressions: %s not found (run from the repository root)\n", dir); return; }
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || !strstr(de->d_name, ".jinja")) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) { check(0, path, "cannot open"); continue; }
        static char src[1 << 22];
        size_t len = fread(src, 1, sizeof src - 1, f);
        fclose(f);
        src[len] = 0;
        cke_jinja *t = NULL;
        cke_err e = {0};
        char *out = NULL;
        double t0 = now_s();
        if (cke_jinja_parse(src, len, &t, &e) == CKE_OK) cke_jinja_render(t, &c, &out, NULL, &e);
        double dt = now_s() - t0;
        free(out);
        cke_jinja_free(t);
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "fuzz regression %s ends within 60 s (%.1f s: %s)", de->d_name, dt, e.msg);
        check(dt < 60, what, NULL);
        n++;
    }
    closedir(d);
    check(n >= 10, "fuzz regressions found", NULL);
}

static const char *models_dir(void) {
    const char *m = getenv("CKE_MODELS");
    return m && *m ? m : "../shared/models";
}

static char *load_hf_template(const char *name, char **bos, char **eos) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer_config.json", models_dir(), name);
    if (access(path, R_OK) != 0) { printf("SKIP %s: %s not found\n", name, path); return NULL; }
    char *src = NULL;
    cke_err e = {0};
    cke_status st = cke_chat_template_from_hf_config(path, &src, bos, eos, &e);
    check(st == CKE_OK, "load tokenizer_config.json chat_template", e.msg);
    return src;
}

static void test_qwen3(void) {
    char *bos = NULL, *eos = NULL;
    char *src = load_hf_template("qwen3-hf", &bos, &eos);
    if (!src) return;
    check(bos == NULL && eos && !strcmp(eos, "<|im_end|>"), "qwen3 bos null, eos <|im_end|>", NULL);
    cke_jinja_chat c = {.messages = conv4, .n_messages = 4, .bos_token = bos, .eos_token = eos, .add_generation_prompt = true};
    /* system first -> its own block; the loop skips it (loop.first); assistant before the last
     * user query gets no <think> block; then the generation prompt */
    expect_render("qwen3: 4-message conversation", src, &c,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                  "<|im_start|>user\nHello!<|im_end|>\n"
                  "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
                  "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                  "<|im_start|>assistant\n");
    cke_jinja_var nothink = {"enable_thinking", CKE_JVAR_BOOL, NULL, 0};
    c.vars = &nothink, c.n_vars = 1;
    c.messages = conv4 + 1, c.n_messages = 1;
    expect_render("qwen3: enable_thinking=false", src, &c,
                  "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    /* the last assistant turn after the last query keeps its reasoning, split out of the content */
    static const cke_chat_msg think[] = {{"user", "Q", NULL, 0}, {"assistant", "<think>\nreason\n</think>\n\nAnswer", NULL, 0}};
    cke_jinja_chat c2 = {.messages = think, .n_messages = 2, .eos_token = eos, .add_generation_prompt = false};
    expect_render("qwen3: reasoning split from content", src, &c2,
                  "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nreason\n</think>\n\nAnswer<|im_end|>\n");
    /* an earlier turn's reasoning is dropped */
    static const cke_chat_msg think2[] = {{"user", "Q1", NULL, 0}, {"assistant", "<think>\nr\n</think>\n\nA1", NULL, 0}, {"user", "Q2", NULL, 0}};
    cke_jinja_chat c3 = {.messages = think2, .n_messages = 3, .eos_token = eos, .add_generation_prompt = true};
    expect_render("qwen3: earlier reasoning dropped", src, &c3,
                  "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
    /* reasoning_content given as a field */
    const char *const rc[] = {"reasoning_content", "because"};
    static cke_chat_msg withrc[2] = {{"user", "Q", NULL, 0}, {"assistant", "A", NULL, 0}};
    withrc[1].extra = rc, withrc[1].n_extra = 1;
    cke_jinja_chat c4 = {.messages = withrc, .n_messages = 2, .eos_token = eos};
    expect_render("qwen3: reasoning_content field", src, &c4,
                  "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\nA<|im_end|>\n");
    /* consecutive tool results merge into one user turn */
    static const cke_chat_msg tools[] = {{"user", "Q", NULL, 0}, {"assistant", "A", NULL, 0}, {"tool", "R1", NULL, 0}, {"tool", "R2", NULL, 0}};
    cke_jinja_chat c5 = {.messages = tools, .n_messages = 4, .eos_token = eos};
    expect_render("qwen3: tool responses", src, &c5,
                  "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
                  "<|im_start|>user\n<tool_response>\nR1\n</tool_response>\n<tool_response>\nR2\n</tool_response><|im_end|>\n");
    free(src); free(bos); free(eos);
}

static void test_llama3(void) {
    char *bos = NULL, *eos = NULL;
    char *src = load_hf_template("llama3-hf", &bos, &eos);
    if (!src) return;
    check(bos && !strcmp(bos, "<|begin_of_text|>"), "llama3 bos <|begin_of_text|>", NULL);
    static const cke_chat_msg m[] = {{"system", "You are helpful.", NULL, 0}, {"user", "  Hi there \n", NULL, 0},
                                     {"assistant", "Hello.", NULL, 0}, {"user", "Bye", NULL, 0}};
    cke_jinja_chat c = {.messages = m, .n_messages = 4, .bos_token = bos, .eos_token = eos, .add_generation_prompt = true};
    /* bos only before the first message; content | trim; the header of the reply always follows */
    expect_render("llama3: 4-message conversation", src, &c,
                  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(src); free(bos); free(eos);
}

static void test_phi3_gguf(void) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizers/ggml-vocab-phi-3.gguf", models_dir());
    if (access(path, R_OK) != 0) { printf("SKIP phi-3 gguf: %s not found\n", path); return; }
    char *src = NULL;
    cke_err e = {0};
    cke_status st = cke_chat_template_from_gguf(path, &src, &e);
    check(st == CKE_OK, "phi-3 GGUF tokenizer.chat_template", e.msg);
    if (st) return;
    cke_tok *t = NULL;
    st = cke_tok_load_gguf_file(path, &t, &e);
    check(st == CKE_OK, "phi-3 vocab loads", e.msg);
    if (!st) {
        size_t n;
        const char *bp = cke_tok_piece(t, cke_tok_bos(t), &n);
        char bos[32];
        snprintf(bos, sizeof bos, "%.*s", (int)n, bp);
        /* the system message is not in this template: it is dropped; each user turn carries the reply prompt */
        cke_jinja_chat c = {.messages = conv4, .n_messages = 4, .bos_token = bos, .add_generation_prompt = true};
        expect_render("phi-3 (GGUF): conversation", src, &c,
                      "<s><|user|>\nHello!<|end|>\n<|assistant|>\nHi! How can I help?<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n");
        check(cke_chat_builtin_for_vocab(t) && !strcmp(cke_chat_builtin_for_vocab(t), "phi3"), "phi-3 vocab -> phi3 fallback", NULL);
        int32_t stops[16];
        int ns = cke_chat_stop_tokens(t, stops, 16);
        int has_end = 0;
        int32_t end = cke_tok_find(t, "<|end|>", 7);
        for (int i = 0; i < ns; i++) has_end |= stops[i] == end;
        check(has_end && end >= 0, "phi-3 stop tokens include <|end|>", NULL);
        cke_tok_free(t);
    }
    free(src);
}

static void test_builtins(void) {
    static const cke_chat_msg m[] = {{"system", "S", NULL, 0}, {"user", "U1", NULL, 0}, {"assistant", "A1", NULL, 0}, {"user", "U2", NULL, 0}};
    cke_jinja_chat c = {.messages = m, .n_messages = 4, .bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = true};
    expect_render("builtin chatml", cke_chat_builtin("chatml"), &c,
                  "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                  "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
    expect_render("builtin llama2", cke_chat_builtin("llama2"), &c,
                  "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
    cke_jinja_chat g = c;
    g.bos_token = "<bos>";
    expect_render("builtin gemma", cke_chat_builtin("gemma"), &g,
                  "<bos><start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
                  "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
    expect_render("builtin phi3", cke_chat_builtin("phi3"), &c,
                  "<s><|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n<|assistant|>\n");
    check(cke_chat_builtin("nope") == NULL, "unknown builtin is NULL", NULL);
}

/* `cke chat` on stories260K: no template, so plain continuation; greedy output must equal
 * `cke run`'s for the same prompt, and the stats line goes to stderr. The commands run without a
 * shell: stdin, stdout and stderr are files in the scratch cache directory. */
static int run_cke(const char *dir, const char *input, const char *const argv[], char *out, size_t n, char *err, size_t en) {
    char in[PATH_MAX + 16], op[PATH_MAX + 16], ep[PATH_MAX + 16];
    snprintf(in, sizeof in, "%s/in.txt", dir);
    snprintf(op, sizeof op, "%s/out.txt", dir);
    snprintf(ep, sizeof ep, "%s/err.txt", dir);
    FILE *f = fopen(in, "w");
    if (!f) return -1;
    fputs(input, f);
    fclose(f);
    int rc = tc_spawn(in, op, ep, argv);
    char *o = tc_slurp(op, NULL), *e = tc_slurp(ep, NULL);
    snprintf(out, n, "%s", o ? o : "");
    if (err) snprintf(err, en, "%s", e ? e : "");
    free(o);
    free(e);
    return rc;
}

static void test_cli(void) {
    char exe[PATH_MAX], cke[PATH_MAX + 8], model[PATH_MAX], tok[PATH_MAX], cache[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) { check(0, "cke chat: locate cke", NULL); return; }
    exe[len] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(cke, sizeof cke, "%s/cke", exe);
    snprintf(model, sizeof model, "%s/stories260K/stories260K.bin", models_dir());
    snprintf(tok, sizeof tok, "%s/stories260K/tok512.bin", models_dir());
    if (access(model, R_OK) != 0 || access(tok, R_OK) != 0) { printf("SKIP cke chat: %s not found\n", model); return; }
    snprintf(cache, sizeof cache, "/tmp/cke-test-chat-%d", (int)getpid());
    if (mkdir(cache, 0755) != 0) { check(0, "cke chat: scratch directory", cache); return; }
    setenv("CKE_CACHE", cache, 1);
    static char a[16384], b[16384], errtxt[16384];
    const char *run[] = {cke, "run", model, "--tokenizer", tok, "--temp", "0", "-n", "40", "-p", "Once upon a time", "--threads", "1", NULL};
    int rc1 = run_cke(cache, "", run, a, sizeof a, NULL, 0);
    const char *chat[] = {cke, "chat", model, "--tokenizer", tok, "--temp", "0", "-n", "40", "--threads", "1", NULL};
    int rc2 = run_cke(cache, "Once upon a time\n", chat, b, sizeof b, errtxt, sizeof errtxt);
    check(rc1 == 0 && rc2 == 0, "cke run / cke chat exit 0", NULL);
    /* run prints the prompt then the continuation; chat prints only the reply */
    const char *cont = strncmp(a, "Once upon a time", 16) ? a : a + 16;
    int same = strlen(b) > 10 && !strcmp(cont, b);
    check(same, "cke chat (no template, --temp 0) continues like cke run", NULL);
    if (!same) { show("run ", cont); show("chat", b); }
    check(strstr(errtxt, "no chat template") != NULL, "cke chat says there is no template", errtxt);
    check(strstr(errtxt, "tok/s") != NULL, "cke chat prints tokens/s to stderr", errtxt);
    /* two turns: the second appends to the cache (the position keeps growing) */
    const char *two[] = {cke, "chat", model, "--tokenizer", tok, "--temp", "0", "-n", "8", "--threads", "1", "-v", NULL};
    run_cke(cache, "Once upon a time\nThe end\n", two, a, sizeof a, errtxt, sizeof errtxt);
    check(strstr(errtxt, "appended") != NULL && strstr(errtxt, "turn 2") != NULL, "cke chat keeps the KV cache across turns", errtxt);
    unsetenv("CKE_CACHE");
    cke_err e = {0};
    if (cke_rmtree(cache, &e)) printf("note: could not remove %s: %s\n", cache, e.msg);
}

int main(void) {
    test_constructs();
    test_hostile();
    test_sampler_no_logits();
    test_fuzz_regressions();
    test_qwen3();
    test_llama3();
    test_phi3_gguf();
    test_builtins();
    test_cli();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
