// Package main is the bindings.postgresql plugin: exec, query and close on a
// PostgreSQL pool, as Dapr's bindings.postgresql.
//
// Data flow: Init opens a pgx pool from connectionString. Each Invoke takes
// the statement from request metadata "sql" and its arguments from the JSON
// array "params"; exec answers metadata rows-affected (plus operation, sql,
// start-time, end-time, duration), query answers the rows as a JSON array of
// value arrays, close closes the pool.
package main
