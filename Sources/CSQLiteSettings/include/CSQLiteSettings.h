#ifndef CSQLITESETTINGS_H
#define CSQLITESETTINGS_H

#include <sqlite3.h>

/// sqlite3_config is variadic, which Swift cannot call (GRDB wraps its own calls the same way).
///
/// Turns off SQLite's memory statistics, which nothing here reads: with them on, every
/// sqlite3_malloc and sqlite3_free takes a process-wide mutex to count bytes (3% of an
/// evaluate's instructions). Only before SQLite initializes, that is before the first
/// connection opens; afterwards SQLite refuses it (SQLITE_MISUSE) and nothing changes.
static inline int stockwatch_sqlite_memory_statistics_off(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#endif
