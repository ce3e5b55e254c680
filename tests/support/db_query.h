/*
 * db_query.h: reading one value back from a results database file that a
 * command under test wrote (test support), opened read-only per query.
 */
#ifndef DEEDIFF_TEST_DB_QUERY_H
#define DEEDIFF_TEST_DB_QUERY_H

/* one number from the database at path db: the first column of the first
   row of sql; the test fails when the file does not open, sql does not
   prepare or gives no row */
double db_number(const char *db, const char *sql);

#endif
