/*
 * paper_names.h: the names the paper and our tables and figures give to the
 * things the database stores by key: datasets ("fmnist"), methods
 * ("berxit") and samplers ("dpm"). One list, so a table row and a figure's
 * legend never call the same run two different things.
 */
#ifndef DEEDIFF_PAPER_NAMES_H
#define DEEDIFF_PAPER_NAMES_H

/* "Fashion-MNIST 28x28", "CIFAR-10 32x32", ...; an unknown key as given */
const char *paper_dataset_name(const char *dataset);
/* "U-ViT" (method none, or "uvit" in databases before the methods came),
   "BERxiT", "CALM", "DeeDiff", ...; an unknown key as given */
const char *paper_method_name(const char *method);
/* the paper's row order of the methods (an unknown method after all) */
int paper_method_rank(const char *method);
/* "EM (Euler-Maruyama)", "DPM-Solver", "DDIM"; an unknown key as given */
const char *paper_sampler_name(const char *sampler);

#endif
