/*
 * store_sql.h: how the store's own files (store.c, store_merge.c) call
 * sqlite3: every call goes through SQL_TRY, which on failure records
 * "<db path>: <sqlite's message> (<file>:<line>)" with err_set() and jumps
 * to the function's `fail:` label, where statements are finalized and open
 * transaction levels rolled back. Not for use outside harness/store/.
 */
#ifndef DEEDIFF_STORE_SQL_H
#define DEEDIFF_STORE_SQL_H

#include "store.h"

/* records s's last sqlite3 error, naming s->path and the calling line; -1 */
int store_sql_error(Store *s, const char *file, int line);

#define SQL_TRY(s, call)                                                       \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) {     \
            store_sql_error((s), __FILE__, __LINE__);                          \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

#define SQL_EXEC(s, sql) SQL_TRY(s, sqlite3_exec((s)->db, (sql), NULL, NULL, NULL))

#endif
