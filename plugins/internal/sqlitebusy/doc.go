// Package sqlitebusy retries SQLite start-up work that another process holds
// the database for. Several sidecars on one host share the embedded
// defaults' files and start together; switching a new file to WAL and
// creating its tables can then answer SQLITE_BUSY at once, without SQLite's
// busy handler waiting, so the plugins' Init retries it until its timeout.
package sqlitebusy
