/*
 * store_regress.h: the rows of table regress_checks (schema.sql, version 3):
 * every comparison `make regress` made, kept so that a metric's history can
 * be plotted (`make regress-history`).
 */
#ifndef DEEDIFF_STORE_REGRESS_H
#define DEEDIFF_STORE_REGRESS_H

#include "store.h"

typedef struct {
    const char *check_id;        /* one comparison of all metrics (a uuid) */
    const char *cell;            /* "table1/smoke | Fashion-MNIST 28x28 | BERxiT | quality" */
    double baseline, value;      /* NaN: absent (stored as NULL) */
    const char *tolerance_json;  /* the rule applied */
    int passed;
} RegressCheck;

/* records n checks in one transaction, with this process's git commit,
   code version, machine and CPU */
int store_regress_checks(Store *s, const RegressCheck *c, int n);

/* every check of every cell, oldest first: row() gets the cell, when, the
   baseline, the value and whether it passed (nonzero return stops); -1 + err_msg() */
int store_regress_history(Store *s, int (*row)(void *user, const char *cell, const char *checked_at,
                                                double baseline, double value, int passed),
                          void *user);

#endif
