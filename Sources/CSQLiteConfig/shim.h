// Process-wide SQLite settings that only C can make: `sqlite3_config` is variadic, which Swift does not import.
#include <sqlite3.h>

/// Turns off SQLite's memory statistics (SQLITE_CONFIG_MEMSTATUS, on by default in this build): with them on, every
/// allocation and free SQLite makes takes a process-wide mutex to count bytes, which nothing here reads. Must run
/// before SQLite initialises (the first connection opened in the process); afterwards it changes nothing and
/// returns SQLITE_MISUSE.
static inline int cw_sqlite_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/// Closing this connection will not checkpoint the WAL into the database file (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE):
/// for a store refused after SQLite opened it (newer schema, corrupt), which must be left as it was found.
/// `sqlite3_db_config` is variadic too. Returns SQLITE_OK or an error code.
static inline int cw_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

/// Undoes `cw_sqlite_no_checkpoint_on_close`: closing checkpoints the WAL again, as SQLite does by default.
static inline int cw_sqlite_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)0);
}
