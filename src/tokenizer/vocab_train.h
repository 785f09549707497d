/* Vocabulary training: learns a SentencePiece-style BPE vocabulary from a text and writes it as
 * a llama2.c tokenizer.bin, which cke_tok_load reads back as an SPM tokenizer.
 *
 * Layout of the vocabulary (ids): 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte tokens <0x00>..<0xFF>,
 * then every character of the text (most frequent first), then the learned merges in the order
 * they were learned. Scores: merges -rank (earlier merges win in the encoder's highest-score-first
 * merging), characters below every merge, special and byte tokens 0 as in llama2.c's files.
 *
 * Training normalizes as the SPM encoder does (dummy prefix space; the space is the word marker,
 * stored in tokenizer.bin as a plain space), splits into words that start at the marker and at
 * changes between letters, punctuation and control characters, counts distinct words, and
 * repeatedly merges the most frequent adjacent pair (ties: the pair whose left, then right piece
 * sorts first bytewise). Output is byte-identical for the same text and size. */
#ifndef CKE_VOCAB_TRAIN_H
#define CKE_VOCAB_TRAIN_H

#include "cke/status.h"

#include <stddef.h>
#include <stdint.h>

#define CKE_VOCAB_N_FIXED 259 /* <unk> <s> </s> and the 256 byte tokens */

typedef struct {
    int64_t n_vocab;          /* tokens written (== the size asked for) */
    int64_t n_chars;          /* distinct characters of the text */
    int64_t n_merges;         /* learned tokens */
    int64_t n_words;          /* words of the text after splitting */
    int64_t n_distinct_words;
    int64_t max_token_length; /* bytes, as written in the file header */
} cke_vocab_stats;

/* text -> tokenizer.bin bytes (*out malloc'd; free() it). stats may be NULL.
 * CKE_ERR_ARG: empty text, or a size that cannot be reached (below 259 + characters, or above
 * what the text's pairs allow); the message says which size would work. */
cke_status cke_vocab_train(const char *text, size_t len, int64_t vocab_size, char **out, size_t *out_len,
                           cke_vocab_stats *stats, cke_err *err);
/* Reads text_path, trains, writes out_path. */
cke_status cke_vocab_train_file(const char *text_path, const char *out_path, int64_t vocab_size,
                                cke_vocab_stats *stats, cke_err *err);

#endif
