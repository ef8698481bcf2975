/*
 * keys_cli.h - `backpropd keys create|list|revoke`: API key management on
 * the host, against the database the daemon uses (it may be running: the
 * database is in WAL mode and every write is one short transaction).
 */
#ifndef SRV_KEYS_CLI_H
#define SRV_KEYS_CLI_H

/* argv: the words after "keys".  ensure_dir(db) makes the database's
 * directory (main.c's), so `keys create` can start a new database.
 * Returns the process exit code: 0, 1 on failure, 2 on a usage error.
 * A created key is the only thing written to stdout. */
int keys_cli_main(int argc, char **argv, int (*ensure_dir)(const char *db));

#endif
