/* training/params.h — a model's trainable tensors as four flat float buffers.
 *
 * A model declares a table of tensors (name, shape, learning-rate multiplier, weight decay on or
 * off). trn_params_init lays them out once and makes one allocation each for the parameters, the
 * gradients and AdamW's first and second moments (m, v), all with the same layout, so the whole
 * gradient is one buffer for MPI_Allreduce and the whole model one buffer for a checksum.
 * Each tensor starts on a 64-byte boundary (TRN_PARAMS_ALIGN floats); the gaps stay zero.
 *
 * Views are plain pointers into the buffers, looked up once by name or index when the model is
 * built; the hot loops never search by name.
 */
#ifndef TRN_PARAMS_H
#define TRN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define TRN_MAX_DIMS     4
#define TRN_NAME_MAX     128 /* bytes of a tensor name, including the terminating NUL */
#define TRN_PARAMS_ALIGN 16  /* floats: each tensor starts on a 64-byte boundary */

/* One row of a model's tensor table. lr_mult scales the scheduled learning rate for this tensor;
 * 0 freezes it (it never moves and its m and v stay zero). decay = 1 applies weight decay. */
typedef struct {
    const char *name;
    int ndim;
    int shape[TRN_MAX_DIMS];
    float lr_mult;
    int decay;
} trn_tensor_spec;

/* The tensor table after layout, and the four buffers. */
typedef struct {
    int n;                  /* number of tensors */
    trn_tensor_spec *specs; /* (n) copies; names are owned by this struct */
    size_t *offset;         /* (n) first float of each tensor in every buffer */
    size_t *numel;          /* (n) elements of each tensor */
    size_t total;           /* floats in each buffer, alignment gaps included */
    size_t n_elements;      /* floats that belong to tensors (sum of numel) */
    float *params;          /* (total) */
    float *grads;           /* (total) */
    float *m;               /* (total) AdamW first moment */
    float *v;               /* (total) AdamW second moment */
} trn_params;

/* A typed view of one tensor: the same slice of each buffer. */
typedef struct {
    const char *name;
    const int *shape;
    int ndim;
    size_t numel;
    float *w; /* parameters */
    float *g; /* gradients */
} trn_view;

/* Lays out the table and allocates zeroed buffers. Refuses an empty table, an empty, too long or
 * repeated name, a shape with a dimension < 1 or more than TRN_MAX_DIMS dimensions, and a
 * learning-rate multiplier that is negative or not finite — each message names the tensor. */
int trn_params_init(trn_params *p, const trn_tensor_spec *specs, int n, char *err);
void trn_params_free(trn_params *p);

/* Index of the tensor called name, or -1. */
int trn_params_find(const trn_params *p, const char *name);
/* The view of tensor i (0 <= i < n). */
trn_view trn_params_at(const trn_params *p, int i);
/* The view of the tensor called name; fails with a message naming it when it is missing. */
int trn_params_lookup(const trn_params *p, const char *name, trn_view *out, char *err);

/* Sets every gradient to zero (backward passes accumulate). */
void trn_params_zero_grad(trn_params *p);
/* XXH3 of the parameter buffer: equal on two ranks exactly when their replicas are bit-equal. */
uint64_t trn_params_checksum(const trn_params *p);

/* Writes "name [d0, d1, ...]" into buf (for tables and error messages). */
void trn_params_shape_str(const trn_tensor_spec *s, char *buf, size_t n);
/* Logs the tensor table at INFO level: name, shape, elements, lr multiplier, decay, and totals
 * with the bytes held by parameters, gradients and optimiser state. */
void trn_params_log_table(const trn_params *p);

#endif
