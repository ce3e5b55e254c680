/*
 * op_coverage.c: reading the backends' op tables by entry (op_coverage.h).
 */
#include <string.h>

#include "op_coverage.h"
#include "op_table.h"

const OpTable *op_backend_table(Backend b)
{
    if (b == BACKEND_CPU) return &cpu_op_table;
#ifdef DEEDIFF_CUDA
    if (b == BACKEND_CUDA) return &cuda_op_table;
#endif
    return NULL;
}

int op_entry_filled(const OpTable *t, const OpEntry *e)
{
    /* every entry is a function pointer; its bytes say whether it is NULL */
    void (*fn)(void);
    memcpy(&fn, (const char *)t + e->offset, sizeof fn);
    return fn != NULL;
}

const OpEntry *op_entry_find(const char *name)
{
    for (const OpEntry *e = op_entries; e->name; e++)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}
