#include "chat/chat.h"

#include "formats/gguf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The formats as their model families' own templates write them (system prompts folded in
 * the way each family does it: Llama-2 <<SYS>> inside the first [INST], Gemma into the first
 * user turn, which has no system role). */
static const struct {
    const char *name, *src;
} builtins[] = {
    {"chatml",
     "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}"
     "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"},
    {"llama2",
     "{%- if messages[0].role == 'system' %}{%- set sys = '<<SYS>>\\n' + messages[0].content + '\\n<</SYS>>\\n\\n' %}"
     "{%- set msgs = messages[1:] %}{%- else %}{%- set sys = '' %}{%- set msgs = messages %}{%- endif %}"
     "{%- for m in msgs %}{%- if m.role == 'user' %}"
     "{{ bos_token + '[INST] ' + (sys if loop.first else '') + m.content | trim + ' [/INST]' }}"
     "{%- elif m.role == 'assistant' %}{{ ' ' + m.content | trim + ' ' + eos_token }}{%- endif %}{%- endfor %}"},
    {"gemma",
     "{{ bos_token }}{%- if messages[0].role == 'system' %}{%- set sys = messages[0].content | trim + '\\n\\n' %}"
     "{%- set msgs = messages[1:] %}{%- else %}{%- set sys = '' %}{%- set msgs = messages %}{%- endif %}"
     "{%- for m in msgs %}{%- set role = 'model' if m.role == 'assistant' else 'user' %}"
     "{{ '<start_of_turn>' + role + '\\n' + (sys if loop.first else '') + m.content | trim + '<end_of_turn>\\n' }}"
     "{%- endfor %}{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{%- endif %}"},
    {"phi3",
     "{{ bos_token }}{%- for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + '<|end|>\\n' }}{%- endfor %}"
     "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- endif %}"},
};

const char *cke_chat_builtin(const char *name) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (!strcmp(builtins[i].name, name)) return builtins[i].src;
    return NULL;
}

static int has(const cke_tok *t, const char *piece) { return cke_tok_find(t, piece, strlen(piece)) >= 0; }

const char *cke_chat_builtin_for_vocab(const cke_tok *t) {
    if (!t) return NULL;
    if (has(t, "<|im_start|>") && has(t, "<|im_end|>")) return "chatml";
    if (has(t, "<start_of_turn>") && has(t, "<end_of_turn>")) return "gemma";
    if (has(t, "<|user|>") && has(t, "<|assistant|>") && has(t, "<|end|>")) return "phi3";
    if (has(t, "[INST]") && has(t, "[/INST]")) return "llama2"; /* Mistral v0.3-style control tokens */
    return NULL;
}

cke_status cke_chat_template_from_gguf(const char *path, char **src, cke_err *err) {
    *src = NULL;
    cke_gguf *g = NULL;
    cke_status st = cke_gguf_open(path, &g, err);
    if (st) return st;
    const char *s;
    size_t n;
    if (cke_gguf_get_str(g, "tokenizer.chat_template", &s, &n) != CKE_OK) {
        cke_gguf_close(g);
        return cke_fail(err, CKE_ERR_MISSING, "%s has no tokenizer.chat_template", path);
    }
    *src = malloc(n + 1);
    if (*src) memcpy(*src, s, n), (*src)[n] = 0;
    cke_gguf_close(g);
    return *src ? CKE_OK : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
}

static char *token_str(const cJSON *v) {
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

cke_status cke_chat_template_from_hf_config(const char *path, char **src, char **bos, char **eos, cke_err *err) {
    *src = NULL;
    if (bos) *bos = NULL;
    if (eos) *eos = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot open %s", path);
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            char *nt = realloc(text, cap = cap * 2 + 65536);
            if (!nt) { free(text); fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
            text = nt;
        }
        size_t k = fread(text + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    fclose(f);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) return cke_fail(err, CKE_ERR_FORMAT, "%s is not valid JSON", path);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    if (cJSON_IsArray(t)) { /* [{"name": "default", "template": ...}, {"name": "tool_use", ...}] */
        const cJSON *it, *pick = NULL;
        cJSON_ArrayForEach(it, t) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (!pick || (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default"))) pick = it;
        }
        t = pick ? cJSON_GetObjectItemCaseSensitive(pick, "template") : NULL;
    }
    cke_status st = CKE_OK;
    if (!cJSON_IsString(t)) st = cke_fail(err, CKE_ERR_MISSING, "%s has no chat_template", path);
    else if (!(*src = strdup(t->valuestring))) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (!st && bos) *bos = token_str(cJSON_GetObjectItemCaseSensitive(j, "bos_token"));
    if (!st && eos) *eos = token_str(cJSON_GetObjectItemCaseSensitive(j, "eos_token"));
    cJSON_Delete(j);
    return st;
}

int cke_chat_stop_tokens(const cke_tok *t, int32_t *out, int max) {
    static const char *const markers[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>",
                                          "<|endoftext|>", "<|end_of_text|>", "</s>", "<|END_OF_TURN_TOKEN|>"};
    int n = 0;
    int32_t eos = cke_tok_eos(t);
    if (eos >= 0 && n < max) out[n++] = eos;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0] && n < max; i++) {
        int32_t id = cke_tok_find(t, markers[i], strlen(markers[i]));
        if (id < 0) continue;
        /* only control tokens: "</s>" as ordinary text in some BPE vocab must not stop generation */
        int ty = cke_tok_type_of(t, id);
        if (ty != CKE_TOKT_CONTROL && ty != CKE_TOKT_USER_DEFINED && id != eos) continue;
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= out[k] == id;
        if (!dup) out[n++] = id;
    }
    return n;
}
