/* storage-sqlite.c: the embedded SQLite backend of the storage API
 * ("sqlite:PATH"), behind the MynaStorageBackend vtable.
 *
 * One database file in WAL mode, so the main thread's reader connection
 * reads while the writer thread writes.  Durability: synchronous=FULL, so
 * the WAL is fsynced at every COMMIT and a write acknowledged after its
 * commit survives a power loss as well as a crash; the cost is one fsync
 * per batch, which batching makes cheap.  (synchronous=NORMAL would only
 * fsync at checkpoints: a crash of the process would be safe, a power loss
 * not.)  Checkpoints are SQLite's automatic passive ones; journal_size_limit
 * keeps the WAL file from staying large after a big batch.
 *
 * Schema: PRAGMA user_version holds the number of migrations applied; on
 * opening a writer the missing ones of the ordered list below run in one
 * IMMEDIATE transaction.  application_id marks the file as Myna's.
 * Statements are prepared once per connection and cached.
 *
 * The file holds SCRAM keys: the writer creates it 0600 before SQLite
 * opens it, whatever the umask and the directory's mode, and SQLite gives
 * the -wal and -shm files it makes the database's mode.  Files an older
 * version left readable by others are tightened, with a warning. */
#include "storage-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <sys/stat.h>

#define BUSY_TIMEOUT_MS     5000
#define APPLICATION_ID      0x4d796e61  /* "Myna" */
#define WAL_SIZE_LIMIT      (64 * 1024 * 1024)

/* The ordered migrations: entry N brings the schema from version N to
 * N + 1.  Never edit an entry once released; append a new one. */
static const char *const migrations[] = {
  /* 1: the initial schema. */
  "CREATE TABLE kv ("
  "  host  TEXT NOT NULL,"
  "  user  TEXT NOT NULL,"
  "  store TEXT NOT NULL,"
  "  key   TEXT NOT NULL,"
  "  value TEXT NOT NULL,"
  "  PRIMARY KEY (host, user, store, key));"
  "CREATE TABLE archive ("
  "  id      INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  host    TEXT NOT NULL,"
  "  user    TEXT NOT NULL,"
  "  archive TEXT NOT NULL,"
  "  \"with\"  TEXT NOT NULL,"
  "  ts      INTEGER NOT NULL,"
  "  data    TEXT NOT NULL);"
  "CREATE INDEX archive_by_id ON archive (host, user, archive, id);"
  "CREATE INDEX archive_by_with"
  "  ON archive (host, user, archive, \"with\", id);"
  "CREATE INDEX archive_by_ts ON archive (host, user, archive, ts);"
  /* Expiry deletes by (archive, ts) across all users. */
  "CREATE INDEX archive_by_expiry ON archive (archive, ts);",
  /* 2: stores and archives are scoped to the module that owns them
   * ("MODULE/NAME", myna_module_get_storage); the built-in modules' data
   * moves under their names.  Core stores (account, accounts, …) stay. */
  "UPDATE kv SET store = 'roster/' || store"
  "  WHERE store IN ('roster', 'roster-version', 'roster-count', 'roster-approved-by');"
  "UPDATE kv SET store = 'vcard/vcard' WHERE store = 'vcard';"
  "UPDATE kv SET store = 'private/private' WHERE store = 'private';"
  "UPDATE kv SET store = 'last/last' WHERE store = 'last';"
  "UPDATE kv SET store = 'blocking/blocklist' WHERE store = 'blocklist';"
  "UPDATE archive SET archive = 'offline/offline' WHERE archive = 'offline';",
  /* 3: archive items name their archive by a small integer, the owner
   * (host, user, archive) of archive_owner, so the indexes every append
   * updates hold an integer, not three strings compared at every level of
   * every b-tree; the (archive, ts) index for expiry goes: expiry walks the
   * owners of the archive and deletes each one's range of (owner, ts).
   * An index on (owner) is ordered by (owner, id): the rowid ends every
   * index entry.  The AUTOINCREMENT high-water mark moves with the
   * items. */
  "CREATE TABLE archive_owner ("
  "  owner   INTEGER PRIMARY KEY,"
  "  host    TEXT NOT NULL,"
  "  user    TEXT NOT NULL,"
  "  archive TEXT NOT NULL,"
  "  UNIQUE (host, user, archive));"
  "INSERT INTO archive_owner (host, user, archive)"
  "  SELECT DISTINCT host, user, archive FROM archive ORDER BY host, user, archive;"
  "CREATE TABLE archive_items ("
  "  id      INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  owner   INTEGER NOT NULL,"
  "  \"with\"  TEXT NOT NULL,"
  "  ts      INTEGER NOT NULL,"
  "  data    TEXT NOT NULL);"
  "INSERT INTO archive_items (id, owner, \"with\", ts, data)"
  "  SELECT a.id, o.owner, a.\"with\", a.ts, a.data FROM archive AS a"
  "  JOIN archive_owner AS o"
  "    ON o.host = a.host AND o.user = a.user AND o.archive = a.archive"
  "  ORDER BY a.id;"
  "DELETE FROM sqlite_sequence WHERE name = 'archive_items';"
  "INSERT INTO sqlite_sequence (name, seq)"
  "  SELECT 'archive_items', seq FROM sqlite_sequence WHERE name = 'archive';"
  "DROP TABLE archive;"
  "ALTER TABLE archive_items RENAME TO archive;"
  "CREATE INDEX archive_by_owner ON archive (owner);"
  "CREATE INDEX archive_by_with ON archive (owner, \"with\");"
  "CREATE INDEX archive_by_ts ON archive (owner, ts);",
};

#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

typedef enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_KV_PUT,
  STMT_KV_DELETE,
  STMT_KV_GET,
  STMT_KV_GET_ALL,
  STMT_KV_DELETE_USER,
  STMT_OWNER_GET,
  STMT_OWNER_ADD,
  STMT_OWNER_DELETE_USER,
  STMT_ARCHIVE_APPEND,
  STMT_ARCHIVE_DELETE,
  STMT_ARCHIVE_EXPIRE,
  STMT_ARCHIVE_DELETE_USER,
  N_STMTS
} StmtId;

static const char *const stmt_sql[N_STMTS] = {
  [STMT_BEGIN] = "BEGIN IMMEDIATE",
  [STMT_COMMIT] = "COMMIT",
  [STMT_ROLLBACK] = "ROLLBACK",
  [STMT_KV_PUT] =
    "INSERT INTO kv (host, user, store, key, value)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (host, user, store, key)"
    " DO UPDATE SET value = excluded.value",
  [STMT_KV_DELETE] =
    "DELETE FROM kv WHERE host = ?1 AND user = ?2 AND store = ?3 AND key = ?4",
  [STMT_KV_GET] =
    "SELECT value FROM kv"
    " WHERE host = ?1 AND user = ?2 AND store = ?3 AND key = ?4",
  [STMT_KV_GET_ALL] =
    "SELECT key, value FROM kv WHERE host = ?1 AND user = ?2 AND store = ?3",
  [STMT_KV_DELETE_USER] = "DELETE FROM kv WHERE host = ?1 AND user = ?2",
  [STMT_OWNER_GET] =
    "SELECT owner FROM archive_owner"
    " WHERE host = ?1 AND user = ?2 AND archive = ?3",
  [STMT_OWNER_ADD] =
    "INSERT INTO archive_owner (host, user, archive) VALUES (?1, ?2, ?3)",
  [STMT_OWNER_DELETE_USER] =
    "DELETE FROM archive_owner WHERE host = ?1 AND user = ?2",
  [STMT_ARCHIVE_APPEND] =
    "INSERT INTO archive (owner, \"with\", ts, data) VALUES (?1, ?2, ?3, ?4)",
  [STMT_ARCHIVE_DELETE] = "DELETE FROM archive WHERE owner = ?1 AND id <= ?2",
  [STMT_ARCHIVE_EXPIRE] =
    "DELETE FROM archive WHERE owner IN"
    " (SELECT owner FROM archive_owner WHERE archive = ?1) AND ts < ?2",
  [STMT_ARCHIVE_DELETE_USER] =
    "DELETE FROM archive WHERE owner IN"
    " (SELECT owner FROM archive_owner WHERE host = ?1 AND user = ?2)",
};

/* Archive queries are prepared per combination of filters, so each one
 * can use the best index; the bits index the caches below.  Parameters:
 * ?1 owner, ?4 with, ?5 start, ?6 end, ?7 after_id, ?8 before_id,
 * ?9 limit (?2 and ?3 are unused: they were host and user). */
enum {
  FILTER_WITH   = 1 << 0,
  FILTER_START  = 1 << 1,
  FILTER_END    = 1 << 2,
  FILTER_AFTER  = 1 << 3,
  FILTER_BEFORE = 1 << 4,
  /* Not a filter: with FILTER_BEFORE, page forward (the first page). */
  PAGE_FORWARD  = 1 << 5,
  N_FILTER_MASKS = 1 << 6,
  /* The filters that define the result set; the others page through it. */
  FILTER_SET_MASK = FILTER_WITH | FILTER_START | FILTER_END,
};

/* Owners remembered by the writer, cleared whole when full. */
#define OWNERS_CACHED 65536

struct _MynaStorageConn {
  sqlite3      *db;
  char         *path;
  /* (host, user, archive) key → owner (gint64*) of archive_owner, as
   * committed or written by the open transaction: cleared on rollback
   * and on deleting a user. */
  GHashTable   *owners;
  sqlite3_stmt *stmts[N_STMTS];
  sqlite3_stmt *page_stmts[N_FILTER_MASKS];
  sqlite3_stmt *count_stmts[N_FILTER_MASKS];
};

/* A borrowed cached statement: going out of scope resets it and clears its
 * bindings, so no statement keeps a read snapshot open between calls. */
typedef sqlite3_stmt CachedStmt;

static void
cached_stmt_release (CachedStmt *stmt)
{
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CachedStmt, cached_stmt_release)

/* Errors. */

static MynaStorageError
error_code_for (int rc)
{
  switch (rc & 0xff)
    {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return MYNA_STORAGE_ERROR_CORRUPT;
    default:
      return MYNA_STORAGE_ERROR_FAILED;
    }
}

/* Sets @error from @rc and the connection's last message; returns FALSE. */
static gboolean
fail (MynaStorageConn *conn, int rc, const char *what, GError **error)
{
  const char *detail = conn->db != NULL ? sqlite3_errmsg (conn->db)
                                        : sqlite3_errstr (rc);

  g_set_error (error, MYNA_STORAGE_ERROR, error_code_for (rc),
               "SQLite database %s: %s: %s", conn->path, what, detail);
  return FALSE;
}

/* Statements. */

static sqlite3_stmt *
prepare (MynaStorageConn *conn, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc;

  rc = sqlite3_prepare_v3 (conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &stmt, NULL);
  if (rc != SQLITE_OK)
    {
      fail (conn, rc, "preparing a statement", error);
      return NULL;
    }
  return stmt;
}

static CachedStmt *
stmt_get (MynaStorageConn *conn, StmtId id, GError **error)
{
  if (conn->stmts[id] == NULL)
    conn->stmts[id] = prepare (conn, stmt_sql[id], error);
  return conn->stmts[id];
}

/* Binds a string, or SQL NULL for @value NULL. */
static gboolean
bind_text (MynaStorageConn *conn, sqlite3_stmt *stmt, int index,
           const char *value, GError **error)
{
  int rc = sqlite3_bind_text (stmt, index, value, -1, SQLITE_STATIC);

  return rc == SQLITE_OK || fail (conn, rc, "binding a parameter", error);
}

static gboolean
bind_int64 (MynaStorageConn *conn, sqlite3_stmt *stmt, int index,
            gint64 value, GError **error)
{
  int rc = sqlite3_bind_int64 (stmt, index, value);

  return rc == SQLITE_OK || fail (conn, rc, "binding a parameter", error);
}

/* Binds the leading text parameters ?1, ?2, … from a NULL-terminated list;
 * a NULL value thus ends the list (kv_put's delete binds four, not five). */
G_GNUC_NULL_TERMINATED static gboolean
bind_texts (MynaStorageConn *conn, sqlite3_stmt *stmt, GError **error, ...)
{
  va_list ap;
  const char *value;
  int index = 1;
  gboolean ok = TRUE;

  va_start (ap, error);
  while (ok && (value = va_arg (ap, const char *)) != NULL)
    ok = bind_text (conn, stmt, index++, value, error);
  va_end (ap);
  return ok;
}

/* Runs a statement that returns no rows. */
static gboolean
step_done (MynaStorageConn *conn, sqlite3_stmt *stmt, const char *what,
           GError **error)
{
  int rc = sqlite3_step (stmt);

  return rc == SQLITE_DONE || fail (conn, rc, what, error);
}

static gboolean
exec (MynaStorageConn *conn, const char *sql, const char *what,
      GError **error)
{
  int rc = sqlite3_exec (conn->db, sql, NULL, NULL, NULL);

  return rc == SQLITE_OK || fail (conn, rc, what, error);
}

/* Reads the integer a one-row statement (a PRAGMA) returns. */
static gboolean
query_int (MynaStorageConn *conn, const char *sql, int *value,
           GError **error)
{
  sqlite3_stmt *stmt = prepare (conn, sql, error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  return rc == SQLITE_ROW || fail (conn, rc, sql, error);
}

/* Opening and the schema. */

static void
sqlite_close (MynaStorageConn *conn)
{
  int rc;

  if (conn == NULL)
    return;
  if (conn->db != NULL && !sqlite3_get_autocommit (conn->db))
    sqlite3_exec (conn->db, "ROLLBACK", NULL, NULL, NULL);
  for (guint i = 0; i < N_STMTS; i++)
    sqlite3_finalize (conn->stmts[i]);
  for (guint i = 0; i < N_FILTER_MASKS; i++)
    {
      sqlite3_finalize (conn->page_stmts[i]);
      sqlite3_finalize (conn->count_stmts[i]);
    }
  rc = sqlite3_close (conn->db);
  if (rc != SQLITE_OK)
    g_warning ("SQLite database %s: closing: %s", conn->path,
               sqlite3_errstr (rc));
  g_clear_pointer (&conn->owners, g_hash_table_unref);
  g_free (conn->path);
  g_free (conn);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaStorageConn, sqlite_close)

/* Switches to WAL.  Needs write access to the header. */
static gboolean
enable_wal (MynaStorageConn *conn, GError **error)
{
  sqlite3_stmt *stmt = prepare (conn, "PRAGMA journal_mode = WAL", error);
  gboolean wal = FALSE;
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    wal = g_strcmp0 ((const char *) sqlite3_column_text (stmt, 0), "wal") == 0;
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW)
    return fail (conn, rc, "enabling WAL mode", error);
  if (!wal)
    {
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED,
                   "SQLite database %s: WAL mode is unavailable "
                   "(is it on a network file system?)", conn->path);
      return FALSE;
    }
  return TRUE;
}

/* Checks the file is Myna's and not newer than this build. */
static gboolean
check_version (MynaStorageConn *conn, int *version, GError **error)
{
  int app_id;

  if (!query_int (conn, "PRAGMA application_id", &app_id, error)
      || !query_int (conn, "PRAGMA user_version", version, error))
    return FALSE;
  if (app_id != 0 && app_id != APPLICATION_ID)
    {
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED,
                   "SQLite database %s belongs to another application "
                   "(application_id %#x)", conn->path, (guint) app_id);
      return FALSE;
    }
  if (*version > SCHEMA_VERSION || *version < 0)
    {
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_VERSION,
                   "SQLite database %s has schema version %d; this build "
                   "knows versions up to %d", conn->path, *version,
                   SCHEMA_VERSION);
      return FALSE;
    }
  return TRUE;
}

static gboolean
apply_migrations (MynaStorageConn *conn, int from, GError **error)
{
  g_autofree char *set_version =
    g_strdup_printf ("PRAGMA user_version = %d", SCHEMA_VERSION);
  g_autofree char *set_app_id =
    g_strdup_printf ("PRAGMA application_id = %d", APPLICATION_ID);

  for (int v = from; v < SCHEMA_VERSION; v++)
    {
      g_autofree char *what = g_strdup_printf ("migrating to schema %d",
                                               v + 1);

      if (!exec (conn, migrations[v], what, error))
        return FALSE;
    }
  return exec (conn, set_version, "setting the schema version", error)
         && exec (conn, set_app_id, "setting the application id", error);
}

/* Creates or migrates the schema in one transaction. */
static gboolean
migrate (MynaStorageConn *conn, GError **error)
{
  int version = 0;

  if (!exec (conn, "BEGIN IMMEDIATE", "starting the migration", error))
    return FALSE;
  if (!check_version (conn, &version, error)
      || (version < SCHEMA_VERSION
          && !apply_migrations (conn, version, error))
      || !exec (conn, "COMMIT", "committing the migration", error))
    {
      sqlite3_exec (conn->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (version < SCHEMA_VERSION)
    g_info ("SQLite database %s: schema migrated from version %d to %d",
            conn->path, version, SCHEMA_VERSION);
  return TRUE;
}

/* The reader only checks: the writer, opened first, migrated. */
static gboolean
check_reader (MynaStorageConn *conn, GError **error)
{
  int version = 0;

  if (!check_version (conn, &version, error))
    return FALSE;
  if (version != SCHEMA_VERSION)
    {
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_VERSION,
                   "SQLite database %s has schema version %d, expected %d",
                   conn->path, version, SCHEMA_VERSION);
      return FALSE;
    }
  return exec (conn, "PRAGMA query_only = ON", "setting query_only", error);
}

static gboolean
configure_writer (MynaStorageConn *conn, GError **error)
{
  g_autofree char *size_limit =
    g_strdup_printf ("PRAGMA journal_size_limit = %d", WAL_SIZE_LIMIT);
  int version = 0;

  /* Reading the header first leaves a foreign, newer or garbage file
   * untouched. */
  return check_version (conn, &version, error)
         && enable_wal (conn, error)
         && exec (conn, "PRAGMA synchronous = FULL", "setting synchronous",
                  error)
         && exec (conn, size_limit, "setting journal_size_limit", error)
         && exec (conn, g_getenv ("MYNA_CS") ? g_getenv ("MYNA_CS") : "PRAGMA cache_size = -2000", "cs", error)
         && migrate (conn, error);
}

/* Takes group and other permissions off @path when it exists. */
static void
tighten_mode (const char *path)
{
  struct stat st;

  if (stat (path, &st) < 0 || (st.st_mode & 077) == 0)
    return;
  if (chmod (path, st.st_mode & 0700) < 0)
    g_warning ("%s is readable by other users (mode %04o) and cannot be made private: %s",
               path, (unsigned) (st.st_mode & 07777), g_strerror (errno));
  else
    g_warning ("%s was readable by other users (mode %04o): now %04o", path,
               (unsigned) (st.st_mode & 07777), (unsigned) (st.st_mode & 0700));
}

/* Creates the database file 0600 unless it exists; tightens it and the
 * files SQLite keeps beside it. */
static gboolean
create_private (const char *location, GError **error)
{
  static const char *const companions[] = { "-wal", "-shm", "-journal" };
  int fd = open (location, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED,
                   "cannot create %s: %s", location, g_strerror (e));
      return FALSE;
    }
  close (fd);
  tighten_mode (location);
  for (guint i = 0; i < G_N_ELEMENTS (companions); i++)
    {
      g_autofree char *path = g_strconcat (location, companions[i], NULL);
      tighten_mode (path);
    }
  return TRUE;
}

static MynaStorageConn *
sqlite_open (const char *location, MynaStorageConnRole role, GError **error)
{
  g_autoptr (MynaStorageConn) conn = g_new0 (MynaStorageConn, 1);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  int rc;

  if (*location == '\0' || g_str_has_prefix (location, ":memory:")
      || g_str_has_prefix (location, "file:"))
    {
      g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED,
                   "SQLite storage needs the path of a file, not \"%s\"",
                   location);
      return NULL;
    }
  conn->path = g_strdup (location);
  conn->owners = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        g_free);
  if (role == MYNA_STORAGE_CONN_WRITER)
    {
      if (!create_private (location, error))
        return NULL;
      flags |= SQLITE_OPEN_CREATE;
    }
  rc = sqlite3_open_v2 (location, &conn->db, flags, NULL);
  if (rc != SQLITE_OK)
    {
      fail (conn, rc, "opening", error);
      return NULL;
    }
  sqlite3_extended_result_codes (conn->db, 1);
  sqlite3_busy_timeout (conn->db, BUSY_TIMEOUT_MS);
  if (role == MYNA_STORAGE_CONN_WRITER ? !configure_writer (conn, error)
                                       : !check_reader (conn, error))
    return NULL;
  return g_steal_pointer (&conn);
}

/* Transactions. */

static gboolean
sqlite_begin (MynaStorageConn *conn, GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_BEGIN, error);

  return stmt != NULL
         && step_done (conn, stmt, "starting a transaction", error);
}

static gboolean
sqlite_commit (MynaStorageConn *conn, GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_COMMIT, error);

  return stmt != NULL
         && step_done (conn, stmt, "committing a transaction", error);
}

static void
sqlite_rollback (MynaStorageConn *conn)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CachedStmt) stmt = NULL;

  /* Owners the transaction added are gone with it. */
  g_hash_table_remove_all (conn->owners);
  /* Some errors (SQLITE_FULL, I/O errors) already rolled back. */
  if (sqlite3_get_autocommit (conn->db))
    return;
  stmt = stmt_get (conn, STMT_ROLLBACK, &error);
  if (stmt == NULL || !step_done (conn, stmt, "rolling back", &error))
    g_warning ("%s", error->message);
}

/* Key–value. */

static gboolean
sqlite_kv_put (MynaStorageConn *conn, const char *host, const char *user,
               const char *store, const char *key, const char *value,
               GError **error)
{
  g_autoptr (CachedStmt) stmt =
    stmt_get (conn, value != NULL ? STMT_KV_PUT : STMT_KV_DELETE, error);

  return stmt != NULL
         && bind_texts (conn, stmt, error, host, user, store, key, value,
                        NULL)
         && step_done (conn, stmt, "writing a key", error);
}

static gboolean
sqlite_kv_get (MynaStorageConn *conn, const char *host, const char *user,
               const char *store, const char *key, char **value,
               GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_KV_GET, error);
  int rc;

  *value = NULL;
  if (stmt == NULL
      || !bind_texts (conn, stmt, error, host, user, store, key, NULL))
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  else if (rc != SQLITE_DONE)
    return fail (conn, rc, "reading a key", error);
  return TRUE;
}

static gboolean
sqlite_kv_get_all (MynaStorageConn *conn, const char *host, const char *user,
                   const char *store, GHashTable *into, GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_KV_GET_ALL, error);
  int rc;

  if (stmt == NULL
      || !bind_texts (conn, stmt, error, host, user, store, NULL))
    return FALSE;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      const char *key = (const char *) sqlite3_column_text (stmt, 0);
      const char *value = (const char *) sqlite3_column_text (stmt, 1);

      g_hash_table_insert (into, g_strdup (key), g_strdup (value));
    }
  return rc == SQLITE_DONE || fail (conn, rc, "reading a store", error);
}

static gboolean
sqlite_kv_delete_user (MynaStorageConn *conn, const char *host,
                       const char *user, GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_KV_DELETE_USER, error);

  return stmt != NULL
         && bind_texts (conn, stmt, error, host, user, NULL)
         && step_done (conn, stmt, "deleting a user's keys", error);
}

/* Archives. */

/* Finds the owner number of (@host, @user, @archive) into *@owner, 0 when
 * it has none; @create adds one then. */
static gboolean
owner_get (MynaStorageConn *conn, const char *host, const char *user,
           const char *archive, gboolean create, gint64 *owner,
           GError **error)
{
  g_autofree char *key = g_strjoin ("\n", host, user, archive, NULL);
  g_autoptr (CachedStmt) get = NULL;
  g_autoptr (CachedStmt) add = NULL;
  gint64 *cached = g_hash_table_lookup (conn->owners, key);
  int rc;

  /* '\n' is in no JID part nor module name: the key is unambiguous. */
  *owner = 0;
  if (cached != NULL)
    {
      *owner = *cached;
      return TRUE;
    }
  get = stmt_get (conn, STMT_OWNER_GET, error);
  if (get == NULL
      || !bind_texts (conn, get, error, host, user, archive, NULL))
    return FALSE;
  rc = sqlite3_step (get);
  if (rc == SQLITE_ROW)
    *owner = sqlite3_column_int64 (get, 0);
  else if (rc != SQLITE_DONE)
    return fail (conn, rc, "reading an archive's owner", error);
  if (*owner == 0 && create)
    {
      add = stmt_get (conn, STMT_OWNER_ADD, error);
      if (add == NULL
          || !bind_texts (conn, add, error, host, user, archive, NULL)
          || !step_done (conn, add, "adding an archive's owner", error))
        return FALSE;
      *owner = sqlite3_last_insert_rowid (conn->db);
    }
  if (*owner == 0)
    return TRUE;
  if (g_hash_table_size (conn->owners) >= OWNERS_CACHED)
    g_hash_table_remove_all (conn->owners);
  g_hash_table_insert (conn->owners, g_steal_pointer (&key),
                       g_memdup2 (owner, sizeof *owner));
  return TRUE;
}

static gboolean
sqlite_archive_delete_user (MynaStorageConn *conn, const char *host,
                            const char *user, GError **error)
{
  g_autoptr (CachedStmt) items = stmt_get (conn, STMT_ARCHIVE_DELETE_USER, error);
  g_autoptr (CachedStmt) owners = NULL;

  g_hash_table_remove_all (conn->owners);
  if (items == NULL
      || !bind_texts (conn, items, error, host, user, NULL)
      || !step_done (conn, items, "deleting a user's archives", error))
    return FALSE;
  owners = stmt_get (conn, STMT_OWNER_DELETE_USER, error);
  return owners != NULL
         && bind_texts (conn, owners, error, host, user, NULL)
         && step_done (conn, owners, "deleting a user's archives", error);
}

static gboolean
sqlite_archive_append (MynaStorageConn *conn, const char *host,
                       const char *user, const char *archive,
                       const char *with, gint64 timestamp, const char *data,
                       gint64 *id, GError **error)
{
  g_autoptr (CachedStmt) stmt = NULL;
  gint64 owner;

  if (!owner_get (conn, host, user, archive, TRUE, &owner, error))
    return FALSE;
  stmt = stmt_get (conn, STMT_ARCHIVE_APPEND, error);
  if (stmt == NULL
      || !bind_int64 (conn, stmt, 1, owner, error)
      || !bind_text (conn, stmt, 2, with, error)
      || !bind_int64 (conn, stmt, 3, timestamp, error)
      || !bind_text (conn, stmt, 4, data, error)
      || !step_done (conn, stmt, "appending to an archive", error))
    return FALSE;
  *id = sqlite3_last_insert_rowid (conn->db);
  return TRUE;
}

static char *
query_sql (guint mask, gboolean count)
{
  GString *sql = g_string_new (count ? "SELECT count(*)"
                                     : "SELECT id, ts, \"with\", data");

  g_string_append (sql, " FROM archive WHERE owner = ?1");
  if (mask & FILTER_WITH)
    g_string_append (sql, " AND \"with\" = ?4");
  if (mask & FILTER_START)
    g_string_append (sql, " AND ts >= ?5");
  if (mask & FILTER_END)
    g_string_append (sql, " AND ts <= ?6");
  if (mask & FILTER_AFTER)
    g_string_append (sql, " AND id > ?7");
  if (mask & FILTER_BEFORE)
    g_string_append (sql, " AND id < ?8");
  if (!count)
    g_string_append (sql, (mask & FILTER_BEFORE) && !(mask & PAGE_FORWARD)
                          ? " ORDER BY id DESC LIMIT ?9"
                          : " ORDER BY id ASC LIMIT ?9");
  return g_string_free (sql, FALSE);
}

static CachedStmt *
query_stmt_get (MynaStorageConn *conn, guint mask, gboolean count,
                GError **error)
{
  sqlite3_stmt **slot = count ? &conn->count_stmts[mask]
                              : &conn->page_stmts[mask];

  if (*slot == NULL)
    {
      g_autofree char *sql = query_sql (mask, count);

      *slot = prepare (conn, sql, error);
    }
  return *slot;
}

static guint
query_mask (const MynaArchiveQuery *query)
{
  return (query->with != NULL ? FILTER_WITH : 0)
         | (query->start != 0 ? FILTER_START : 0)
         | (query->end != 0 ? FILTER_END : 0)
         | (query->after_id != 0 ? FILTER_AFTER : 0)
         | (query->before_id != 0 ? FILTER_BEFORE : 0);
}

/* Binds the parameters of @mask; ?9 (the limit) is left to the caller. */
static gboolean
bind_query (MynaStorageConn *conn, sqlite3_stmt *stmt, guint mask,
            gint64 owner, const MynaArchiveQuery *query, GError **error)
{
  return bind_int64 (conn, stmt, 1, owner, error)
         && (!(mask & FILTER_WITH)
             || bind_text (conn, stmt, 4, query->with, error))
         && (!(mask & FILTER_START)
             || bind_int64 (conn, stmt, 5, query->start, error))
         && (!(mask & FILTER_END)
             || bind_int64 (conn, stmt, 6, query->end, error))
         && (!(mask & FILTER_AFTER)
             || bind_int64 (conn, stmt, 7, query->after_id, error))
         && (!(mask & FILTER_BEFORE)
             || bind_int64 (conn, stmt, 8, query->before_id, error));
}

static MynaArchiveItem *
item_from_row (sqlite3_stmt *stmt)
{
  MynaArchiveItem *item = g_new0 (MynaArchiveItem, 1);

  item->id = sqlite3_column_int64 (stmt, 0);
  item->timestamp = sqlite3_column_int64 (stmt, 1);
  item->with = g_strdup ((const char *) sqlite3_column_text (stmt, 2));
  item->data = g_strdup ((const char *) sqlite3_column_text (stmt, 3));
  return item;
}

/* Counts the result set: the set filters, ignoring after/before ids. */
static gboolean
query_total (MynaStorageConn *conn, guint mask, gint64 owner,
             const MynaArchiveQuery *query, guint *total, GError **error)
{
  g_autoptr (CachedStmt) stmt = NULL;
  int rc;

  mask &= FILTER_SET_MASK;
  stmt = query_stmt_get (conn, mask, TRUE, error);
  if (stmt == NULL
      || !bind_query (conn, stmt, mask, owner, query, error))
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return fail (conn, rc, "counting archive items", error);
  *total = (guint) MIN (sqlite3_column_int64 (stmt, 0), (gint64) G_MAXUINT);
  return TRUE;
}

/* Reads one row more than the page holds to learn whether the page is the
 * last in the query's direction: forward normally, backward (the last
 * @max items) with before_id unless @flags say FORWARD.  Counts the total
 * unless @flags say NO_TOTAL. */
static gboolean
sqlite_archive_query (MynaStorageConn *conn, const char *host,
                      const char *user, const char *archive,
                      const MynaArchiveQuery *query,
                      MynaArchiveQueryFlags flags, GPtrArray *items,
                      gboolean *complete, guint *total, GError **error)
{
  guint mask = query_mask (query);
  gboolean backward = (mask & FILTER_BEFORE) != 0
                      && !(flags & MYNA_ARCHIVE_QUERY_FORWARD);
  g_autoptr (CachedStmt) stmt = NULL;
  guint first = items->len;
  guint n = 0;
  gint64 owner;
  int rc;

  if (!owner_get (conn, host, user, archive, FALSE, &owner, error))
    return FALSE;
  if (owner == 0)
    {
      /* Nothing was ever stored there. */
      *complete = TRUE;
      *total = 0;
      return TRUE;
    }
  stmt = query_stmt_get (conn, mask | ((mask & FILTER_BEFORE) && !backward
                                       ? PAGE_FORWARD : 0), FALSE, error);
  if (stmt == NULL
      || !bind_query (conn, stmt, mask, owner, query, error)
      || !bind_int64 (conn, stmt, 9, (gint64) query->max + 1, error))
    return FALSE;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW && n < query->max)
    {
      g_ptr_array_add (items, item_from_row (stmt));
      n++;
    }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return fail (conn, rc, "querying an archive", error);
  *complete = rc == SQLITE_DONE;
  if (backward)
    for (guint i = first, j = items->len; i + 1 < j; i++, j--)
      {
        gpointer tmp = items->pdata[i];

        items->pdata[i] = items->pdata[j - 1];
        items->pdata[j - 1] = tmp;
      }
  *total = 0;
  if (flags & MYNA_ARCHIVE_QUERY_NO_TOTAL)
    return TRUE;
  return query_total (conn, mask, owner, query, total, error);
}

static gboolean
sqlite_archive_delete (MynaStorageConn *conn, const char *host,
                       const char *user, const char *archive,
                       gint64 up_to_id, GError **error)
{
  g_autoptr (CachedStmt) stmt = NULL;
  gint64 owner;

  if (!owner_get (conn, host, user, archive, FALSE, &owner, error))
    return FALSE;
  if (owner == 0)
    return TRUE;
  stmt = stmt_get (conn, STMT_ARCHIVE_DELETE, error);
  return stmt != NULL
         && bind_int64 (conn, stmt, 1, owner, error)
         && bind_int64 (conn, stmt, 2, up_to_id > 0 ? up_to_id : G_MAXINT64,
                        error)
         && step_done (conn, stmt, "deleting archive items", error);
}

static gboolean
sqlite_archive_expire (MynaStorageConn *conn, const char *archive,
                       gint64 before, GError **error)
{
  g_autoptr (CachedStmt) stmt = stmt_get (conn, STMT_ARCHIVE_EXPIRE, error);

  return stmt != NULL
         && bind_text (conn, stmt, 1, archive, error)
         && bind_int64 (conn, stmt, 2, before, error)
         && step_done (conn, stmt, "expiring archive items", error);
}

const MynaStorageBackend myna_storage_backend_sqlite = {
  .name = "sqlite",
  .open = sqlite_open,
  .close = sqlite_close,
  .begin = sqlite_begin,
  .commit = sqlite_commit,
  .rollback = sqlite_rollback,
  .kv_put = sqlite_kv_put,
  .kv_get = sqlite_kv_get,
  .kv_get_all = sqlite_kv_get_all,
  .kv_delete_user = sqlite_kv_delete_user,
  .archive_delete_user = sqlite_archive_delete_user,
  .archive_append = sqlite_archive_append,
  .archive_query = sqlite_archive_query,
  .archive_delete = sqlite_archive_delete,
  .archive_expire = sqlite_archive_expire,
};
