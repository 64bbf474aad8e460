#ifndef IM_STORAGE_MIGRATIONS_EMBEDDED_MIGRATIONS_H_
#define IM_STORAGE_MIGRATIONS_EMBEDDED_MIGRATIONS_H_

// The migration files compiled into the binary (generated source; use
// EmbeddedMigrations() in migrations.h instead).

namespace im::storage {

struct EmbeddedMigrationFile {
  const char* name;  // file name without ".sql", e.g. "0001_initial"
  const char* sql;
};

extern const EmbeddedMigrationFile kEmbeddedMigrationFiles[];
extern const int kEmbeddedMigrationFileCount;

}  // namespace im::storage

#endif  // IM_STORAGE_MIGRATIONS_EMBEDDED_MIGRATIONS_H_
