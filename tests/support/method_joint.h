/*
 * method_joint.h: one method training step on a tiny U-ViT, rerunnable on
 * the same draw, for finite-difference checks of a method's whole loss
 * (test support). The backbone's and the method's parameters are moved off
 * their init so no gradient is trivially zero.
 */
#ifndef DEEDIFF_TEST_METHOD_JOINT_H
#define DEEDIFF_TEST_METHOD_JOINT_H

#include "model/method.h"

#define JOINT_BATCH 3

typedef struct {
    Ctx ctx;
    UViT m;
    Method *me;
    UViTActs *acts;
    TrainNoise tn;
    float *x0;          /* [JOINT_BATCH, C, H, W] clean images */
    int train_backbone;
    int64_t step;
    MethodStep last;    /* the last step's report */
    double base;        /* the loss at the unperturbed point (set by the caller) */
    float loss;         /* the last step's loss - base (float keeps the differences) */
} MethodJoint;

/* a U-ViT of configuration json and a method of kind with options
   (key, value pairs), ready to step */
void method_joint_setup(MethodJoint *j, const char *json, const char *kind, const char *const *options,
                        int n_options, int train_backbone, int64_t step);
/* the same on a context of `threads` threads (the blocks then run as pieces) */
void method_joint_setup_threads(MethodJoint *j, const char *json, const char *kind, const char *const *options,
                                int n_options, int train_backbone, int64_t step, int threads);
void method_joint_teardown(MethodJoint *j);
/* one training step on the same draw (same t, eps): gradients zeroed first;
   train_step's return code */
int method_joint_run(MethodJoint *j);
/* method_joint_run that must succeed, as a gradcheck forward */
void method_joint_step(void *user);

#endif
