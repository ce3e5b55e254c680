/*
 * db_query.c: one-value SQL queries on a database file (see db_query.h).
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_query.h"

double db_number(const char *db, const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "no row for %s", sql);
    double v = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    return v;
}

char *schema_before(int version)
{
    extern const char store_schema_sql[];
    char mark[32];
    snprintf(mark, sizeof mark, "\n-- version %d\n", version);
    const char *end = strstr(store_schema_sql, mark);
    cr_assert(end != NULL, "the schema has no '-- version %d' step", version);
    size_t n = (size_t)(end - store_schema_sql) + 1;
    char *s = malloc(n + 1);
    memcpy(s, store_schema_sql, n);
    s[n] = 0;
    return s;
}
