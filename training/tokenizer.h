/* training/tokenizer.h — the project's subword tokenizer: SentencePiece behind a small C API.
 *
 * A tokenizer is trained on the ingested text (unigram or BPE), then travels as one byte string
 * — the "model bytes" — that goes into checkpoints and store metadata; its version is the XXH3 of
 * those bytes. The model bytes are a 32-byte envelope (magic REVEALTK, format version, length and
 * XXH3 of what follows) around a SentencePiece ModelProto, so a truncated or damaged model is
 * refused before SentencePiece parses it (docs/engine-infra.md).
 *
 * Special ids are fixed for every reveal tokenizer: PAD 0, BOS 1, EOS 2, UNK 3, and the separator
 * "<sep>" 4 (a user-defined symbol: the text "<sep>" always encodes to id 4). Byte fallback is on,
 * so a character never seen in training becomes its UTF-8 bytes instead of UNK and decodes back.
 */
#ifndef TRN_TOKENIZER_H
#define TRN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { TRN_TOK_PAD = 0, TRN_TOK_BOS = 1, TRN_TOK_EOS = 2, TRN_TOK_UNK = 3, TRN_TOK_SEP = 4 };
#define TRN_TOK_SEP_PIECE "<sep>"

/* encode flags */
enum { TRN_TOK_ADD_BOS = 1, TRN_TOK_ADD_EOS = 2 };

typedef enum { TRN_TOK_UNIGRAM = 0, TRN_TOK_BPE = 1 } trn_tok_model_type;

typedef struct {
    trn_tok_model_type type;
    int vocab_size;            /* exact size of the vocabulary, specials and 256 bytes included */
    int nfkc;                  /* 1: NFKC-normalise and collapse whitespace (T5); 0: keep text as
                                  is, so decode(encode(x)) == x for any valid UTF-8 x */
    double character_coverage; /* share of characters that get their own piece (CJK: 0.9995) */
    long max_sentences;        /* 0: train on every text; else a sample of this many, drawn
                                  with SentencePiece's fixed internal seed (repeatable) */
} trn_tok_train_opts;

typedef struct trn_tokenizer trn_tokenizer;

/* unigram, 8000 pieces, NFKC, coverage 0.9995, every text */
void trn_tok_train_opts_default(trn_tok_train_opts *o);

/* Trains on n texts (each valid UTF-8; empty texts are skipped). On success *model is a malloc'ed
 * byte string of *model_len bytes that trn_tok_load accepts. Training twice on the same input
 * with the same options gives the same bytes. */
int trn_tok_train_texts(const char *const *texts, size_t n, const trn_tok_train_opts *o,
                        void **model, size_t *model_len, char *err);
/* The same from a text file, one text per line; an invalid UTF-8 line is refused as file:line. */
int trn_tok_train_file(const char *path, const trn_tok_train_opts *o, void **model,
                       size_t *model_len, char *err);

/* Loads model bytes (they are copied). Refuses with a clear message: not a tokenizer model,
 * a newer envelope version, a truncated or corrupt model, a model SentencePiece cannot parse,
 * special ids other than the fixed ones. */
int trn_tok_load(const void *model, size_t model_len, trn_tokenizer **tok, char *err);
void trn_tok_free(trn_tokenizer *tok);

int trn_tok_vocab_size(const trn_tokenizer *tok);
/* XXH3 of the model bytes: names the tokenizer in checkpoints and store metadata. */
uint64_t trn_tok_version(const trn_tokenizer *tok);
/* The model bytes as loaded (owned by tok). */
const void *trn_tok_model(const trn_tokenizer *tok, size_t *len);
/* Id of a piece, or -1 when it is not in the vocabulary. */
int trn_tok_piece_id(const trn_tokenizer *tok, const char *piece);

/* Encodes len bytes of UTF-8 text into ids[0 .. *n_ids), at most max_len ids (ids holds
 * max_len). flags add BOS and/or EOS; when the text is longer it is cut, keeping BOS and EOS.
 * n_full (may be NULL) receives the length before the cut. Invalid UTF-8 is refused, naming the
 * offset of the first bad byte. */
int trn_tok_encode(const trn_tokenizer *tok, const char *text, size_t len, int flags, int max_len,
                   int32_t *ids, int *n_ids, int *n_full, char *err);
/* Decodes ids into a malloc'ed NUL-terminated string (*len bytes without the NUL). PAD, BOS and
 * EOS decode to nothing; an id outside the vocabulary is refused, naming it. */
int trn_tok_decode(const trn_tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len,
                   char *err);

#ifdef __cplusplus
}
#endif

#endif
