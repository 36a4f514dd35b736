/* training/tokenizer.cc — SentencePiece training, loading, encoding and decoding behind the C API
 * of tokenizer.h. C++ stays inside this file; no exception crosses the API. */
#include "tokenizer.h"

extern "C" {
#include "rv.h"
}

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_map>
#include <vector>

/* Exported by libsentencepiece but declared only in its private headers: the log threshold. */
namespace sentencepiece {
namespace logging {
void SetMinLogLevel(int v);
}
} // namespace sentencepiece

namespace {

const char kMagic[8] = {'R', 'E', 'V', 'E', 'A', 'L', 'T', 'K'};
constexpr uint32_t kEnvelopeVersion = 1;
constexpr size_t kEnvelopeSize = 32;
constexpr int kLogWarning = 1; /* SentencePiece's INFO lines would flood every rank's log */

/* Envelope layout: magic 0, version 8 (u32), reserved 12 (u32), proto length 16 (u64),
 * proto XXH3 24 (u64), proto 32.. — little-endian. */
std::string wrap_proto(const std::string &proto) {
    std::string out(kEnvelopeSize, '\0');
    uint64_t len = proto.size(), hash = rv_hash64(proto.data(), proto.size(), 0);
    std::memcpy(&out[0], kMagic, 8);
    std::memcpy(&out[8], &kEnvelopeVersion, 4);
    std::memcpy(&out[16], &len, 8);
    std::memcpy(&out[24], &hash, 8);
    return out + proto;
}

/* Feeds the caller's texts to the trainer without copying them. */
class TextIterator : public sentencepiece::SentenceIterator {
  public:
    explicit TextIterator(const std::vector<std::string> &texts) : texts_(texts) {}
    bool done() const override {
        return at_ >= texts_.size();
    }
    void Next() override {
        at_++;
    }
    const std::string &value() const override {
        return texts_[at_];
    }
    sentencepiece::util::Status status() const override {
        return {};
    }

  private:
    const std::vector<std::string> &texts_;
    size_t at_ = 0;
};

int check_opts(const trn_tok_train_opts *o, char *err) {
    if (o->type != TRN_TOK_UNIGRAM && o->type != TRN_TOK_BPE)
        return rv_fail(err, "tokenizer type %d, expected unigram (0) or BPE (1)", (int)o->type);
    /* 5 specials + 256 byte pieces + room for at least a few learned pieces */
    if (o->vocab_size < 300 || o->vocab_size > 1000000)
        return rv_fail(err, "tokenizer vocab_size %d, expected 300 to 1000000", o->vocab_size);
    if (!(o->character_coverage > 0 && o->character_coverage <= 1))
        return rv_fail(err, "tokenizer character_coverage %g, expected (0, 1]",
                       o->character_coverage);
    if (o->max_sentences < 0)
        return rv_fail(err, "tokenizer max_sentences %ld, expected >= 0", o->max_sentences);
    return 0;
}

int train(const std::vector<std::string> &texts, const trn_tok_train_opts *o, void **model,
          size_t *model_len, char *err) {
    if (check_opts(o, err) != 0) return -1;
    if (texts.empty()) return rv_fail(err, "no text to train the tokenizer on");
    std::unordered_map<std::string, std::string> kw = {
        {"model_type", o->type == TRN_TOK_BPE ? "bpe" : "unigram"},
        {"vocab_size", std::to_string(o->vocab_size)},
        {"character_coverage", std::to_string(o->character_coverage)},
        {"byte_fallback", "true"},
        {"pad_id", std::to_string(TRN_TOK_PAD)},
        {"bos_id", std::to_string(TRN_TOK_BOS)},
        {"eos_id", std::to_string(TRN_TOK_EOS)},
        {"unk_id", std::to_string(TRN_TOK_UNK)},
        {"user_defined_symbols", TRN_TOK_SEP_PIECE},
        {"normalization_rule_name", o->nfkc ? "nmt_nfkc" : "identity"},
        {"remove_extra_whitespaces", o->nfkc ? "true" : "false"},
        {"input_sentence_size", std::to_string(o->max_sentences)},
        {"shuffle_input_sentence", "true"},
        /* one thread: the EM sums would otherwise depend on the thread count */
        {"num_threads", "1"},
        /* the default skips texts over 4192 bytes; knowledge items can be longer */
        {"max_sentence_length", "65536"},
    };
    sentencepiece::logging::SetMinLogLevel(kLogWarning);
    TextIterator it(texts);
    std::string proto;
    auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &proto);
    if (!st.ok()) return rv_fail(err, "tokenizer training failed: %s", st.ToString().c_str());
    std::string bytes = wrap_proto(proto);
    void *buf = std::malloc(bytes.size());
    if (!buf) return rv_fail(err, "out of memory for a %zu-byte tokenizer model", bytes.size());
    std::memcpy(buf, bytes.data(), bytes.size());
    *model = buf;
    *model_len = bytes.size();
    return 0;
}

} // namespace

struct trn_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    std::string bytes;
    uint64_t version = 0;
};

extern "C" {

void trn_tok_train_opts_default(trn_tok_train_opts *o) {
    o->type = TRN_TOK_UNIGRAM;
    o->vocab_size = 8000;
    o->nfkc = 1;
    o->character_coverage = 0.9995;
    o->max_sentences = 0;
}

int trn_tok_train_texts(const char *const *texts, size_t n, const trn_tok_train_opts *o,
                        void **model, size_t *model_len, char *err) {
    try {
        std::vector<std::string> v;
        v.reserve(n);
        for (size_t i = 0; i < n; i++) {
            size_t len = std::strlen(texts[i]), bad = 0;
            if (!rv_utf8_valid(texts[i], len, &bad))
                return rv_fail(err, "training text %zu is not valid UTF-8 (byte %zu)", i, bad);
            if (len) v.emplace_back(texts[i], len);
        }
        return train(v, o, model, model_len, err);
    } catch (const std::exception &e) {
        return rv_fail(err, "tokenizer training failed: %s", e.what());
    }
}

int trn_tok_train_file(const char *path, const trn_tok_train_opts *o, void **model,
                       size_t *model_len, char *err) {
    void *data = nullptr;
    size_t n = 0;
    /* 4 GiB: more text than a tokenizer needs; sample with max_sentences instead */
    if (rv_read_file(path, (size_t)4 << 30, &data, &n, err) != 0) return -1;
    int rc = -1;
    try {
        std::vector<std::string> lines;
        const char *p = static_cast<const char *>(data), *end = p + n;
        for (size_t line = 1; p < end; line++) {
            const char *nl = static_cast<const char *>(std::memchr(p, '\n', (size_t)(end - p)));
            size_t len = (size_t)((nl ? nl : end) - p), bad = 0;
            if (len && p[len - 1] == '\r') len--;
            if (!rv_utf8_valid(p, len, &bad)) {
                rv_fail(err, "%s:%zu: not valid UTF-8 (byte %zu of the line)", path, line, bad);
                goto cleanup;
            }
            if (len) lines.emplace_back(p, len);
            p = nl ? nl + 1 : end;
        }
        if (lines.empty()) {
            rv_fail(err, "%s: no text to train the tokenizer on", path);
            goto cleanup;
        }
        rc = train(lines, o, model, model_len, err);
        if (rc != 0) rv_fail_wrap(err, "%s", path);
    } catch (const std::exception &e) {
        rc = rv_fail(err, "%s: tokenizer training failed: %s", path, e.what());
    }
cleanup:
    std::free(data);
    return rc;
}

int trn_tok_load(const void *model, size_t model_len, trn_tokenizer **out, char *err) {
    *out = nullptr;
    const unsigned char *b = static_cast<const unsigned char *>(model);
    if (!model || model_len < 8 || std::memcmp(b, kMagic, 8) != 0)
        return rv_fail(err, "not a reveal tokenizer model (no REVEALTK magic)");
    if (model_len < kEnvelopeSize)
        return rv_fail(err,
                       "truncated tokenizer model: %zu bytes, shorter than its %zu-byte header",
                       model_len, kEnvelopeSize);
    uint32_t version;
    uint64_t len, hash;
    std::memcpy(&version, b + 8, 4);
    std::memcpy(&len, b + 16, 8);
    std::memcpy(&hash, b + 24, 8);
    if (version == 0 || version > kEnvelopeVersion)
        return rv_fail(err, "tokenizer model format version %u; this build reads 1 to %u", version,
                       kEnvelopeVersion);
    if (len != model_len - kEnvelopeSize)
        return rv_fail(err, "%s tokenizer model: header says %llu bytes, have %zu",
                       len > model_len - kEnvelopeSize ? "truncated" : "corrupt",
                       (unsigned long long)(len + kEnvelopeSize), model_len);
    uint64_t actual = rv_hash64(b + kEnvelopeSize, len, 0);
    if (actual != hash)
        return rv_fail(err, "corrupt tokenizer model: checksum %016llx, header says %016llx",
                       (unsigned long long)actual, (unsigned long long)hash);
    trn_tokenizer *tok = nullptr;
    try {
        tok = new trn_tokenizer;
        tok->bytes.assign(reinterpret_cast<const char *>(b), model_len);
        tok->version = rv_hash64(b, model_len, 0);
        sentencepiece::logging::SetMinLogLevel(kLogWarning);
        auto st = tok->sp.LoadFromSerializedProto(
            absl::string_view(tok->bytes.data() + kEnvelopeSize, (size_t)len));
        if (!st.ok()) {
            rv_fail(err, "tokenizer model rejected by SentencePiece: %s", st.ToString().c_str());
            delete tok;
            return -1;
        }
        const struct {
            const char *what;
            int have, want;
        } ids[] = {{"PAD", tok->sp.pad_id(), TRN_TOK_PAD},
                   {"BOS", tok->sp.bos_id(), TRN_TOK_BOS},
                   {"EOS", tok->sp.eos_id(), TRN_TOK_EOS},
                   {"UNK", tok->sp.unk_id(), TRN_TOK_UNK},
                   {TRN_TOK_SEP_PIECE, trn_tok_piece_id(tok, TRN_TOK_SEP_PIECE), TRN_TOK_SEP}};
        for (const auto &x : ids)
            if (x.have != x.want) {
                rv_fail(err, "tokenizer model has %s at id %d; reveal needs it at %d", x.what,
                        x.have, x.want);
                delete tok;
                return -1;
            }
    } catch (const std::exception &e) {
        delete tok;
        return rv_fail(err, "cannot load tokenizer model: %s", e.what());
    }
    *out = tok;
    return 0;
}

void trn_tok_free(trn_tokenizer *tok) {
    delete tok;
}

int trn_tok_vocab_size(const trn_tokenizer *tok) {
    return tok->sp.GetPieceSize();
}

uint64_t trn_tok_version(const trn_tokenizer *tok) {
    return tok->version;
}

const void *trn_tok_model(const trn_tokenizer *tok, size_t *len) {
    *len = tok->bytes.size();
    return tok->bytes.data();
}

int trn_tok_piece_id(const trn_tokenizer *tok, const char *piece) {
    int id = tok->sp.PieceToId(piece);
    /* unknown pieces map to UNK's id; only "<unk>" itself really is that piece */
    return tok->sp.IdToPiece(id) == piece ? id : -1;
}

int trn_tok_encode(const trn_tokenizer *tok, const char *text, size_t len, int flags, int max_len,
                   int32_t *ids, int *n_ids, int *n_full, char *err) {
    *n_ids = 0;
    int specials = ((flags & TRN_TOK_ADD_BOS) ? 1 : 0) + ((flags & TRN_TOK_ADD_EOS) ? 1 : 0);
    if (max_len < specials + 1)
        return rv_fail(err, "encode: max_len %d leaves no room for text", max_len);
    size_t bad = 0;
    if (!rv_utf8_valid(text, len, &bad))
        return rv_fail(err, "encode: text is not valid UTF-8 (byte %zu)", bad);
    try {
        std::vector<int> pieces;
        auto st = tok->sp.Encode(absl::string_view(text, len), &pieces);
        if (!st.ok()) return rv_fail(err, "encode failed: %s", st.ToString().c_str());
        int n = 0;
        if (flags & TRN_TOK_ADD_BOS) ids[n++] = TRN_TOK_BOS;
        size_t keep = pieces.size();
        if (keep > (size_t)(max_len - specials)) keep = (size_t)(max_len - specials);
        for (size_t i = 0; i < keep; i++) ids[n++] = pieces[i];
        if (flags & TRN_TOK_ADD_EOS) ids[n++] = TRN_TOK_EOS;
        *n_ids = n;
        if (n_full) *n_full = (int)pieces.size() + specials;
    } catch (const std::exception &e) {
        return rv_fail(err, "encode failed: %s", e.what());
    }
    return 0;
}

int trn_tok_decode(const trn_tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len,
                   char *err) {
    *text = nullptr;
    *len = 0;
    int vocab = tok->sp.GetPieceSize();
    try {
        std::vector<int> v;
        v.reserve((size_t)(n > 0 ? n : 0));
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= vocab)
                return rv_fail(err, "decode: id %d at position %d is outside the vocabulary (%d)",
                               (int)ids[i], i, vocab);
            v.push_back(ids[i]);
        }
        std::string s;
        auto st = tok->sp.Decode(v, &s);
        if (!st.ok()) return rv_fail(err, "decode failed: %s", st.ToString().c_str());
        char *buf = static_cast<char *>(std::malloc(s.size() + 1));
        if (!buf) return rv_fail(err, "out of memory decoding %d ids", n);
        std::memcpy(buf, s.data(), s.size());
        buf[s.size()] = 0;
        *text = buf;
        *len = s.size();
    } catch (const std::exception &e) {
        return rv_fail(err, "decode failed: %s", e.what());
    }
    return 0;
}

} /* extern "C" */
