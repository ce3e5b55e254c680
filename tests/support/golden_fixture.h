/*
 * golden_fixture.h: reading the io files of the PyTorch reference fixtures
 * (tests/fixtures/<name>.io.safetensors) in golden tests (test support): a
 * tensor of a known shape, and every parameter's gradient against the
 * fixture's grad.<name> tensors.
 */
#ifndef DEEDIFF_TEST_GOLDEN_FIXTURE_H
#define DEEDIFF_TEST_GOLDEN_FIXTURE_H

#include "model/param_table.h"
#include "model/safetensors.h"

#define FIXTURE_PATH_MAX 256

/* the paths of the fixture pair tests/fixtures/<kind>_<name>.model.safetensors
   and tests/fixtures/<kind>_<name>.io.safetensors */
void fixture_paths(const char *kind, const char *name, char model_path[FIXTURE_PATH_MAX],
                   char io_path[FIXTURE_PATH_MAX]);

/* reads io tensor `name` (F32) of the expected shape into a new host buffer
   (xmalloc; free() it); the test fails when it is missing or of another
   shape */
float *fixture_f32(const SafeTensors *io, const char *name, int ndim, const int64_t *shape);

/* how many tensors of io are named grad.<something> */
int fixture_grad_count(const SafeTensors *io);

/* compares the gradient of each of the n parameters (grads: a host copy of
   the gradient buffer the table describes) with grad.<name>; returns the
   worst relative L2 error (a NaN counts as the worst; -1 when n is 0) and
   sets *worst_name to its parameter's name */
double fixture_worst_grad(const SafeTensors *io, const ParamInfo *params, int n, const float *grads,
                          const char **worst_name);

#endif
