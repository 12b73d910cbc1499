/* storage-backend.h: the private interface between the storage front end
 * (storage.c: queue, writer thread, batching, overlay, callbacks) and one
 * database engine.  Only "sqlite:" exists today; a PostgreSQL backend plugs
 * in by filling one more MynaStorageBackend and listing it in storage.c.
 *
 * Threading contract: a MynaStorageConn is used by one thread at a time and
 * never concurrently.  storage.c opens two per storage:
 *  - a WRITER, opened (and the schema created or migrated) on the thread
 *    calling myna_storage_open, then owned by the writer thread, which runs
 *    every write and every archive query and closes it;
 *  - a READER, opened after the writer, owned by the opening (main) thread
 *    for synchronous key–value reads.  It must see each transaction the
 *    writer committed before the read starts, and must not hold a snapshot
 *    open between calls.
 *
 * Every function returning gboolean sets @error on FALSE, with a
 * MYNA_STORAGE_ERROR code (CORRUPT for an unreadable database, VERSION for
 * a schema newer than the build, FAILED otherwise).  Strings are UTF-8 and
 * NUL-terminated; a backend never logs stored values above debug level. */
#pragma once

#include "myna/storage.h"

G_BEGIN_DECLS

/* One open connection; each backend defines the struct. */
typedef struct _MynaStorageConn MynaStorageConn;

typedef enum {
  MYNA_STORAGE_CONN_WRITER,  /* creates or migrates the schema on open */
  MYNA_STORAGE_CONN_READER,  /* reads only; opened after a writer */
} MynaStorageConnRole;

typedef struct {
  /* The URI scheme, without the colon: "sqlite". */
  const char *name;

  /* @location is the URI without "name:".  Returns: (transfer full). */
  MynaStorageConn *(*open) (const char *location, MynaStorageConnRole role,
                            GError **error);
  /* Rolls back an open transaction and releases everything.  NULL-safe. */
  void (*close) (MynaStorageConn *conn);

  /* A write transaction.  commit returns only once the transaction is
   * durable: a write acknowledged after commit must survive a crash of the
   * process (and, as far as the engine allows, of the machine).  rollback
   * is a no-op without a transaction, and after a failed commit. */
  gboolean (*begin) (MynaStorageConn *conn, GError **error);
  gboolean (*commit) (MynaStorageConn *conn, GError **error);
  void     (*rollback) (MynaStorageConn *conn);

  /* Key–value.  @value NULL deletes the key. */
  gboolean (*kv_put) (MynaStorageConn *conn, const char *host,
                      const char *user, const char *store, const char *key,
                      const char *value, GError **error);
  /* *@value is set to a new string, or NULL when the key is absent. */
  gboolean (*kv_get) (MynaStorageConn *conn, const char *host,
                      const char *user, const char *store, const char *key,
                      char **value, GError **error);
  /* Inserts every key and value of the store into @into (char* → char*,
   * both freed with g_free). */
  gboolean (*kv_get_all) (MynaStorageConn *conn, const char *host,
                          const char *user, const char *store,
                          GHashTable *into, GError **error);
  gboolean (*kv_delete_user) (MynaStorageConn *conn, const char *host,
                              const char *user, GError **error);

  /* Archives.  append sets *@id to the new item's id, greater than every
   * id the archive ever held. */
  gboolean (*archive_append) (MynaStorageConn *conn, const char *host,
                              const char *user, const char *archive,
                              const char *with, gint64 timestamp,
                              const char *data, gint64 *id, GError **error);
  /* Appends the page's MynaArchiveItem* to @items, oldest first, with the
   * semantics documented in storage.h (@flags those of
   * myna_archive_query_full); @query->max is never 0 here. */
  gboolean (*archive_query) (MynaStorageConn *conn, const char *host,
                             const char *user, const char *archive,
                             const MynaArchiveQuery *query,
                             MynaArchiveQueryFlags flags, GPtrArray *items,
                             gboolean *complete, guint *total,
                             GError **error);
  /* Deletes items with id <= @up_to_id; 0 deletes them all. */
  gboolean (*archive_delete) (MynaStorageConn *conn, const char *host,
                              const char *user, const char *archive,
                              gint64 up_to_id, GError **error);
  /* Deletes the items of every user's @archive with timestamp < @before. */
  gboolean (*archive_expire) (MynaStorageConn *conn, const char *archive,
                              gint64 before, GError **error);
  /* Deletes every item of every archive of @user (account removal). */
  gboolean (*archive_delete_user) (MynaStorageConn *conn, const char *host,
                                   const char *user, GError **error);
} MynaStorageBackend;

/* storage-sqlite.c */
G_GNUC_INTERNAL extern const MynaStorageBackend myna_storage_backend_sqlite;

G_END_DECLS
