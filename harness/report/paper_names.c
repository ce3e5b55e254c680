/*
 * paper_names.c: display names of datasets, methods and samplers
 * (paper_names.h).
 */
#include <string.h>

#include "paper_names.h"

typedef struct {
    const char *key, *name;
} Name;

/* the methods in the paper's row order */
static const Name methods[] = {{"none", "U-ViT"},         {"uvit", "U-ViT"},
                               {"berxit", "BERxiT"},      {"calm", "CALM"},
                               {"calm-meta", "CALM meta-classifier"},
                               {"spruning", "S-Pruning"}, {"static", "Static exit"},
                               {"deediff", "DeeDiff"}};
static const Name datasets[] = {{"fmnist", "Fashion-MNIST 28x28"}, {"cifar10", "CIFAR-10 32x32"},
                                {"celeba", "CelebA 64x64"}};
static const Name samplers[] = {{"em", "EM (Euler-Maruyama)"}, {"dpm", "DPM-Solver"}, {"ddim", "DDIM"}};

#define COUNT(a) (int)(sizeof(a) / sizeof(a)[0])

static int find(const Name *names, int n, const char *key)
{
    for (int i = 0; key && i < n; i++)
        if (!strcmp(key, names[i].key)) return i;
    return -1;
}

static const char *lookup(const Name *names, int n, const char *key)
{
    int i = find(names, n, key);
    return i < 0 ? key : names[i].name;
}

const char *paper_dataset_name(const char *d) { return lookup(datasets, COUNT(datasets), d); }
const char *paper_method_name(const char *m) { return lookup(methods, COUNT(methods), m); }
const char *paper_sampler_name(const char *s) { return lookup(samplers, COUNT(samplers), s); }

int paper_method_rank(const char *m)
{
    int i = find(methods, COUNT(methods), m);
    return i < 0 ? COUNT(methods) : i;
}
