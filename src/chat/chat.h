/* Chat formatting: which template a model carries, fallbacks for models without one, and the
 * tokens that end an assistant turn. The templates are rendered by jinja.h. */
#ifndef CKE_CHAT_CHAT_H
#define CKE_CHAT_CHAT_H

#include "chat/jinja.h"
#include "cke/status.h"
#include "tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Built-in formats, for models that carry no template: "chatml" (<|im_start|>role ...
 * <|im_end|>), "llama2" ([INST] ... [/INST], <<SYS>>), "gemma" (<start_of_turn>user|model),
 * "phi3" (<|user|> ... <|end|>). Returns the Jinja source, NULL for an unknown name. */
const char *cke_chat_builtin(const char *name);
/* The built-in format whose special tokens the vocabulary has, or NULL when none fits. */
const char *cke_chat_builtin_for_vocab(const cke_tok *t);

/* tokenizer.chat_template of a GGUF file (malloc'd copy); CKE_ERR_MISSING when it has none. */
cke_status cke_chat_template_from_gguf(const char *path, char **src, cke_err *err);
/* "chat_template" of a Hugging Face tokenizer_config.json (a string, or a list of named
 * templates: "default" is taken), plus its bos_token/eos_token (strings or {"content": ...};
 * bos and eos NULL when absent). All malloc'd; CKE_ERR_MISSING when there is no template. */
cke_status cke_chat_template_from_hf_config(const char *path, char **src, char **bos, char **eos, cke_err *err);

/* Token ids that end an assistant turn: EOS and whichever end-of-turn markers the vocabulary
 * has (<|im_end|>, <|eot_id|>, <end_of_turn>, <|end|>, <|endoftext|>, <|eom_id|> ...).
 * Returns how many were written (at most max). */
int cke_chat_stop_tokens(const cke_tok *t, int32_t *out, int max);

#endif
