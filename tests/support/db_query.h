/*
 * db_query.h: reading one value back from a results database file that a
 * command under test wrote (test support), opened read-only per query; and
 * the embedded schema as an older program had it, to make old files.
 */
#ifndef DEEDIFF_TEST_DB_QUERY_H
#define DEEDIFF_TEST_DB_QUERY_H

/* one number from the database at path db: the first column of the first
   row of sql; the test fails when the file does not open, sql does not
   prepare or gives no row */
double db_number(const char *db, const char *sql);

/* a new string: the embedded schema (harness/store/schema.sql) up to, not
   including, its "-- version N" step: what a program of version N - 1
   created. The test fails when there is no such step. */
char *schema_before(int version);

#endif
