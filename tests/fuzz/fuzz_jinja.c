/* fuzz-src: src/chat/*.c src/util/*.c src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: chat templates (tokenizer.chat_template, tokenizer_config.json) are text
 * from anyone's model file. Each input is parsed as a Jinja template and, when it parses,
 * rendered against a fixed conversation (system, user, assistant with reasoning, tool, user).
 * A template must end in output or an error: never a crash, a hang or unbounded memory.
 *
 * Seeds: tests/fuzz/corpus/jinja/ (real chat templates and hostile ones); every crash found
 * is kept in tests/fuzz/regress/jinja/. tests/fuzz/run.sh jinja builds it from the sources
 * named on the first line; by hand, clang -fsanitize=fuzzer,address,undefined
 * -fno-sanitize-recover=all with those sources, then
 *   ./build-fuzz/fuzz_jinja -max_total_time=60 -timeout=20 tests/fuzz/corpus/jinja */
#include "chat/jinja.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const extra[] = {"reasoning_content", "thinking about it"};
    static const cke_chat_msg msgs[] = {
        {.role = "system", .content = "You are helpful."},
        {.role = "user", .content = "Hello <|im_start|> {{ x }} \"quoted\"\n"},
        {.role = "assistant", .content = "<think>hm</think>Hi!", .extra = extra, .n_extra = 1},
        {.role = "tool", .content = "{\"result\": 42}"},
        {.role = "user", .content = ""},
    };
    static const cke_jinja_var vars[] = {
        {.name = "enable_thinking", .kind = CKE_JVAR_BOOL, .i = 1},
        {.name = "date_string", .kind = CKE_JVAR_STR, .s = "26 Jul 2024"},
        {.name = "n", .kind = CKE_JVAR_INT, .i = INT64_MIN},
    };
    cke_jinja *t = NULL;
    cke_err e;
    if (cke_jinja_parse((const char *)data, size, &t, &e) != CKE_OK) return 0;
    cke_jinja_chat c = {.messages = msgs, .n_messages = sizeof msgs / sizeof msgs[0], .bos_token = "<s>",
                        .eos_token = "</s>", .add_generation_prompt = true, .vars = vars,
                        .n_vars = sizeof vars / sizeof vars[0]};
    char *out = NULL;
    size_t len = 0;
    if (cke_jinja_render(t, &c, &out, &len, &e) == CKE_OK) free(out);
    cke_jinja_free(t);
    return 0;
}
