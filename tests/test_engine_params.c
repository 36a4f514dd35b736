/* tests/test_engine_params.c — the flat parameter buffers: layout, views, lookups, refusals of
 * bad tensor tables, zero-grad and the replica checksum. */
#include "check.h"
#include "params.h"
#include "rv.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void test_layout_and_views(void) {
    trn_tensor_spec specs[] = {
        {"embed", 2, {37, 8}, 1.0f, 0},
        {"block.0.norm", 1, {8}, 1.0f, 0},
        {"block.0.wq", 3, {8, 2, 5}, 1.0f, 1},
        {"frozen.patch", 4, {3, 2, 2, 3}, 0.0f, 1},
    };
    trn_params p;
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(&p, specs, 4, err) == 0);
    CHECK(p.n == 4);
    const size_t numel[] = {296, 8, 80, 36};
    size_t at = 0, sum = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(p.numel[i] == numel[i]);
        CHECK(p.offset[i] == at);
        CHECK(p.offset[i] % TRN_PARAMS_ALIGN == 0);
        at += (numel[i] + 15) / 16 * 16;
        sum += numel[i];
    }
    CHECK(p.total == at && p.n_elements == sum);
    float *bufs[] = {p.params, p.grads, p.m, p.v};
    for (int k = 0; k < 4; k++) {
        CHECK((uintptr_t)bufs[k] % 64 == 0);
        int zero = 1;
        for (size_t i = 0; i < p.total; i++) zero &= bufs[k][i] == 0.0f;
        CHECK(zero);
    }
    /* views by index and by name point at the same slice of params and grads */
    trn_view v;
    CHECK(trn_params_lookup(&p, "block.0.wq", &v, err) == 0);
    CHECK(v.w == p.params + p.offset[2] && v.g == p.grads + p.offset[2]);
    CHECK(v.numel == 80 && v.ndim == 3 && v.shape[0] == 8 && v.shape[2] == 5);
    CHECK(strcmp(v.name, "block.0.wq") == 0);
    trn_view u = trn_params_at(&p, 2);
    CHECK(u.w == v.w && u.g == v.g);
    CHECK(trn_params_find(&p, "embed") == 0 && trn_params_find(&p, "frozen.patch") == 3);
    CHECK(trn_params_find(&p, "block.0") == -1);
    CHECK(trn_params_lookup(&p, "block.1.wq", &v, err) == -1);
    CHECKF(strstr(err, "no tensor named 'block.1.wq'"), "%s", err);

    /* the table keeps its own copy of the names */
    char name[] = "embed";
    trn_tensor_spec one[] = {{name, 1, {4}, 1.0f, 1}};
    trn_params q;
    REQUIRE(trn_params_init(&q, one, 1, err) == 0);
    name[0] = 'X';
    CHECK(trn_params_find(&q, "embed") == 0);
    trn_params_free(&q);

    /* zero-grad clears every gradient and nothing else */
    for (size_t i = 0; i < p.total; i++) p.grads[i] = 1.5f, p.params[i] = 2.0f;
    trn_params_zero_grad(&p);
    int cleared = 1, kept = 1;
    for (size_t i = 0; i < p.total; i++) cleared &= p.grads[i] == 0, kept &= p.params[i] == 2.0f;
    CHECK(cleared && kept);

    char shape[64];
    trn_params_shape_str(&p.specs[3], shape, sizeof shape);
    CHECKF(strcmp(shape, "frozen.patch [3, 2, 2, 3]") == 0, "%s", shape);
    trn_params_log_table(&p);
    trn_params_free(&p);
    CHECK(p.params == NULL && p.n == 0);
}

/* The checksum sees every bit of the parameters and nothing of the gradients. */
static void test_checksum(void) {
    trn_tensor_spec specs[] = {{"a", 2, {5, 7}, 1.0f, 1}, {"b", 1, {3}, 1.0f, 0}};
    trn_params p, q;
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(&p, specs, 2, err) == 0);
    REQUIRE(trn_params_init(&q, specs, 2, err) == 0);
    for (size_t i = 0; i < p.total; i++) p.params[i] = q.params[i] = sinf((float)i);
    CHECK(trn_params_checksum(&p) == trn_params_checksum(&q));
    q.grads[3] = 7.0f;
    CHECK(trn_params_checksum(&p) == trn_params_checksum(&q));
    uint32_t bits;
    float *last = trn_params_at(&q, 1).w + 2;
    memcpy(&bits, last, 4);
    bits ^= 1; /* the lowest mantissa bit of the last parameter */
    memcpy(last, &bits, 4);
    CHECK(trn_params_checksum(&p) != trn_params_checksum(&q));
    trn_params_free(&p);
    trn_params_free(&q);
}

static void expect_refused(const trn_tensor_spec *specs, int n, const char *needle) {
    trn_params p;
    char err[RV_ERR_MAX] = "";
    int rc = trn_params_init(&p, specs, n, err);
    CHECKF(rc == -1, "accepted a bad table (expected '%s')", needle);
    CHECKF(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    CHECK(p.params == NULL && p.specs == NULL);
    if (rc == 0) trn_params_free(&p);
}

static void test_refusals(void) {
    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    trn_tensor_spec ok = {"ok", 1, {2}, 1.0f, 1};
    expect_refused(&ok, 0, "tensor table is empty");
    trn_tensor_spec dup[] = {ok, {"x", 1, {2}, 1, 1}, ok};
    expect_refused(dup, 3, "tensor name 'ok' appears twice (entries 0 and 2)");
    trn_tensor_spec unnamed[] = {ok, {"", 1, {2}, 1, 1}};
    expect_refused(unnamed, 2, "tensor 1 has no name");
    trn_tensor_spec null_name[] = {{NULL, 1, {2}, 1, 1}};
    expect_refused(null_name, 1, "tensor 0 has no name");
    trn_tensor_spec longn[] = {{long_name, 1, {2}, 1, 1}};
    expect_refused(longn, 1, "is longer than 127 bytes");
    trn_tensor_spec zero_dim[] = {ok, {"w", 2, {4, 0}, 1, 1}};
    expect_refused(zero_dim, 2, "tensor 'w': dimension 1 is 0");
    trn_tensor_spec dims[] = {{"w", 5, {1, 1, 1, 1}, 1, 1}};
    expect_refused(dims, 1, "tensor 'w': 5 dimensions, expected 1 to 4");
    trn_tensor_spec neg[] = {{"w", 1, {3}, -0.5f, 1}};
    expect_refused(neg, 1, "tensor 'w': learning-rate multiplier -0.5");
    trn_tensor_spec nan_mult[] = {{"w", 1, {3}, NAN, 1}};
    expect_refused(nan_mult, 1, "learning-rate multiplier nan");
    trn_tensor_spec bad_decay[] = {{"w", 1, {3}, 1, 2}};
    expect_refused(bad_decay, 1, "decay is 2");
}

int main(void) {
    test_layout_and_views();
    test_checksum();
    test_refusals();
    return check_report("engine_params");
}
