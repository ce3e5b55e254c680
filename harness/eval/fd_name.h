/*
 * fd_name.h: how a Frechet distance is named when printed or tabulated.
 *
 * The name says which feature network measured it and on how many samples
 * (REFERENCE.md section 7, item 3): FID-10k for Inception pool3 features,
 * FD-FMNIST-10k for the project's Fashion-MNIST classifier (a proxy, never
 * called FID), FD-10k for features of a network nobody stated.
 */
#ifndef DEEDIFF_FD_NAME_H
#define DEEDIFF_FD_NAME_H

#include <stddef.h>
#include <stdint.h>

/* sample counts below this draw a warning: FID is biased upward at small N */
#define FID_STANDARD_N 50000

/* "FID" (net "inception"), "FD-FMNIST" (net "fmnist") or "FD" (NULL or other) */
const char *fd_kind(const char *net);
/* "10k", "2.5k", "500": the N in a name */
const char *fd_n_label(int64_t n, char *buf, size_t size);
/* "FD-FMNIST-1k" for a distance on n samples; buf is returned */
const char *fd_name(const char *net, int64_t n, char *buf, size_t size);

#endif
