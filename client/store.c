/* store.c: MynaClientStore — the client's local store in one SQLite file:
 * the account, small settings (kv: the roster version, stream-management
 * state), the roster, messages in and out with their state, and received
 * notifications.
 *
 * Durability: WAL with synchronous=FULL, so every call that writes has its
 * COMMIT fsynced before it returns.  Schema: PRAGMA user_version holds the
 * number of migrations applied (the ordered list below); a file with a
 * newer schema is refused (MYNA_CLIENT_STORE_ERROR_VERSION) and left
 * untouched.  application_id marks the file as the client's.  Statements
 * are prepared once and cached.  The file holds the account's password:
 * it is created 0600 (its folder 0700) before SQLite opens it, and SQLite
 * gives the -wal and -shm files the database's mode.
 *
 * Messages: incoming ones are unique by (peer, dedupe key), outgoing ones
 * by id (partial UNIQUE indexes); a duplicate incoming message is not an
 * error, an outgoing one with a known id is. */
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_APPLICATION_ID  0x4d79436c   /* "MyCl" */
/* The kv key of the roster version; clear_account deletes it. */
#define STORE_KEY_ROSTER_VER  "roster.ver"
/* Groups of a roster item are kept in one column, joined by the ASCII
 * unit separator (a character XML 1.0 cannot carry, so no group name
 * holds it). */
#define STORE_GROUP_SEP       "\x1f"

/* The ordered migrations: entry N brings the schema from version N to
 * N + 1.  Never edit an entry once released; append a new one. */
static const char *const store_migrations[] = {
  /* 1: the initial schema. */
  "CREATE TABLE account ("
  "  one      INTEGER PRIMARY KEY CHECK (one = 1),"
  "  jid      TEXT NOT NULL,"
  "  password TEXT NOT NULL);"
  "CREATE TABLE kv ("
  "  key   TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL);"
  "CREATE TABLE roster ("
  "  jid          TEXT PRIMARY KEY,"
  "  name         TEXT,"
  "  subscription TEXT NOT NULL,"
  "  ask          TEXT,"
  "  groups       TEXT);"
  "CREATE TABLE messages ("
  "  seq       INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  direction INTEGER NOT NULL,"
  "  id        TEXT NOT NULL,"
  "  peer      TEXT NOT NULL,"
  "  body      TEXT NOT NULL,"
  "  type      TEXT NOT NULL,"
  "  stanza_id TEXT,"
  "  state     INTEGER NOT NULL,"
  "  timestamp INTEGER NOT NULL,"
  "  dedupe    TEXT);"
  "CREATE UNIQUE INDEX messages_in_dedupe ON messages (direction, peer, dedupe)"
  "  WHERE direction = 0;"
  "CREATE UNIQUE INDEX messages_out_id ON messages (direction, id)"
  "  WHERE direction = 1;"
  "CREATE INDEX messages_by_id ON messages (id);"
  "CREATE INDEX messages_by_peer ON messages (peer, timestamp, seq);"
  "CREATE INDEX messages_by_time ON messages (timestamp, seq);"
  "CREATE INDEX messages_pending ON messages (seq)"
  "  WHERE direction = 1 AND state IN (0, 1);"
  "CREATE TABLE notifications ("
  "  seq       INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  id        TEXT NOT NULL UNIQUE,"
  "  sender    TEXT,"
  "  api_key   TEXT,"
  "  title     TEXT,"
  "  message   TEXT,"
  "  uri       TEXT,"
  "  timestamp INTEGER NOT NULL);",
};

#define STORE_SCHEMA_VERSION ((int) G_N_ELEMENTS (store_migrations))

/* The cached statements. */
typedef enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_ACCOUNT_GET,
  STMT_ACCOUNT_SET,
  STMT_ACCOUNT_DELETE,
  STMT_KV_GET,
  STMT_KV_SET,
  STMT_KV_DELETE,
  STMT_KV_DELETE_SESSION,
  STMT_ROSTER_GET,
  STMT_ROSTER_CLEAR,
  STMT_ROSTER_PUT,
  STMT_ROSTER_DELETE,
  STMT_MSG_ADD_OUT,
  STMT_MSG_ADD_IN,
  STMT_MSG_SET_STATE,
  STMT_MSG_GET,
  STMT_MSG_PENDING,
  STMT_MSG_LIST,
  STMT_NOTIF_ADD,
  STMT_NOTIF_LIST,
  N_STMTS
} StoreStmt;

#define MSG_COLUMNS "id, direction, peer, body, type, stanza_id, state, timestamp"

static const char *const store_stmt_sql[N_STMTS] = {
  [STMT_BEGIN] = "BEGIN IMMEDIATE",
  [STMT_COMMIT] = "COMMIT",
  [STMT_ROLLBACK] = "ROLLBACK",
  [STMT_ACCOUNT_GET] = "SELECT jid, password FROM account WHERE one = 1",
  [STMT_ACCOUNT_SET] =
    "INSERT INTO account (one, jid, password) VALUES (1, ?1, ?2)"
    " ON CONFLICT (one) DO UPDATE SET jid = excluded.jid, password = excluded.password",
  [STMT_ACCOUNT_DELETE] = "DELETE FROM account",
  [STMT_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
  [STMT_KV_SET] =
    "INSERT INTO kv (key, value) VALUES (?1, ?2)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  [STMT_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
  /* Stream-management state ("sm.*": GLOB is case-sensitive and has no
   * '_' wildcard) and the roster version. */
  [STMT_KV_DELETE_SESSION] =
    "DELETE FROM kv WHERE key GLOB 'sm.*' OR key = '" STORE_KEY_ROSTER_VER "'",
  [STMT_ROSTER_GET] =
    "SELECT jid, name, subscription, ask, groups FROM roster ORDER BY jid",
  [STMT_ROSTER_CLEAR] = "DELETE FROM roster",
  [STMT_ROSTER_PUT] =
    "INSERT INTO roster (jid, name, subscription, ask, groups)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (jid) DO UPDATE SET name = excluded.name,"
    " subscription = excluded.subscription, ask = excluded.ask,"
    " groups = excluded.groups",
  [STMT_ROSTER_DELETE] = "DELETE FROM roster WHERE jid = ?1",
  [STMT_MSG_ADD_OUT] =
    "INSERT INTO messages (direction, id, peer, body, type, stanza_id, state, timestamp)"
    " VALUES (1, ?1, ?2, ?3, ?4, ?5, 0, ?6)",
  [STMT_MSG_ADD_IN] =
    "INSERT INTO messages (direction, id, peer, body, type, stanza_id, state, timestamp, dedupe)"
    " VALUES (0, ?1, ?2, ?3, ?4, ?5, 4, ?6, ?7) ON CONFLICT DO NOTHING",
  /* Forward moves among QUEUED(0) < SENT(1) < ACKED(2) < DELIVERED(3);
   * FAILED(5) from QUEUED, SENT or ACKED (the server's error answer may
   * follow its acknowledgement); back from SENT to QUEUED only.  FAILED
   * and DELIVERED are final. */
  [STMT_MSG_SET_STATE] =
    "UPDATE messages SET state = ?2 WHERE direction = 1 AND id = ?1"
    " AND ((?2 <= 3 AND state < ?2 AND state <= 3)"
    "   OR (?2 = 5 AND state IN (0, 1, 2))"
    "   OR (?2 = 0 AND state = 1))",
  [STMT_MSG_GET] =
    "SELECT " MSG_COLUMNS " FROM messages WHERE direction = ?1 AND id = ?2"
    " ORDER BY seq DESC LIMIT 1",
  [STMT_MSG_PENDING] =
    "SELECT " MSG_COLUMNS " FROM messages"
    " WHERE direction = 1 AND state IN (0, 1) ORDER BY seq",
  /* ?1 the peer or NULL for all, ?2 the limit (-1: none). */
  [STMT_MSG_LIST] =
    "SELECT " MSG_COLUMNS " FROM ("
    "  SELECT *, seq AS s FROM messages WHERE ?1 IS NULL OR peer = ?1"
    "  ORDER BY timestamp DESC, seq DESC LIMIT ?2)"
    " ORDER BY timestamp, s",
  [STMT_NOTIF_ADD] =
    "INSERT INTO notifications (id, sender, api_key, title, message, uri, timestamp)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
  [STMT_NOTIF_LIST] =
    "SELECT id, sender, api_key, title, message, uri, timestamp FROM notifications"
    " ORDER BY seq",
};

/* The store: one SQLite connection and its cached statements. */
struct _MynaClientStore {
  GObject       parent;
  char         *path;
  sqlite3      *db;
  sqlite3_stmt *stmts[N_STMTS];
};

G_DEFINE_FINAL_TYPE (MynaClientStore, myna_client_store, G_TYPE_OBJECT)

/* A borrowed cached statement: going out of scope resets it and clears its
 * bindings, so no statement keeps a read snapshot open between calls. */
typedef sqlite3_stmt StoreStmtRef;

static void
store_stmt_release (StoreStmtRef *stmt)
{
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StoreStmtRef, store_stmt_release)

/* ---- errors and statements ------------------------------------------------- */

/* Sets @error from @rc and the connection's last message; returns FALSE. */
static gboolean
store_fail (MynaClientStore *self, int rc, const char *what, GError **error)
{
  const char *detail = self->db != NULL ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc);

  g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
               "client store %s: %s: %s", self->path, what, detail);
  return FALSE;
}

/* Logs a failure of a call that has no GError to report it with. */
static void
store_warn (GError *error)
{
  if (error != NULL)
    g_warning ("%s", error->message);
}

/* Returns the cached statement @id, preparing it on first use. */
static StoreStmtRef *
store_stmt (MynaClientStore *self, StoreStmt id, GError **error)
{
  if (self->stmts[id] == NULL)
    {
      int rc = sqlite3_prepare_v3 (self->db, store_stmt_sql[id], -1,
                                   SQLITE_PREPARE_PERSISTENT, &self->stmts[id], NULL);
      if (rc != SQLITE_OK)
        {
          store_fail (self, rc, "preparing a statement", error);
          self->stmts[id] = NULL;
          return NULL;
        }
    }
  return self->stmts[id];
}

/* Binds a string, or SQL NULL for @value NULL (SQLITE_STATIC: the caller
 * keeps @value until the statement is reset). */
static void
bind_text (sqlite3_stmt *stmt, int index, const char *value)
{
  sqlite3_bind_text (stmt, index, value, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static gboolean
store_step_done (MynaClientStore *self, sqlite3_stmt *stmt, const char *what, GError **error)
{
  int rc = sqlite3_step (stmt);

  return rc == SQLITE_DONE || store_fail (self, rc, what, error);
}

/* Runs one of the argument-less cached statements. */
static gboolean
store_run (MynaClientStore *self, StoreStmt id, const char *what, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = store_stmt (self, id, error);

  return stmt != NULL && store_step_done (self, stmt, what, error);
}

static gboolean
store_begin (MynaClientStore *self, GError **error)
{
  return store_run (self, STMT_BEGIN, "starting a transaction", error);
}

static gboolean
store_commit (MynaClientStore *self, GError **error)
{
  return store_run (self, STMT_COMMIT, "committing a transaction", error);
}

/* Undoes the open transaction, if any is still open (some errors roll
 * back by themselves). */
static void
store_rollback (MynaClientStore *self)
{
  g_autoptr (GError) error = NULL;

  if (sqlite3_get_autocommit (self->db))
    return;
  if (!store_run (self, STMT_ROLLBACK, "rolling back", &error))
    store_warn (error);
}

/* Text of column @col, copied (NULL for SQL NULL). */
static char *
column_dup (sqlite3_stmt *stmt, int col)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, col));
}

/* Runs a PRAGMA (or other statement) and reads the first column of its
 * first row as an integer. */
static gboolean
store_query_int (MynaClientStore *self, const char *sql, int *value, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    return store_fail (self, rc, sql, error);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  return rc == SQLITE_ROW || store_fail (self, rc, sql, error);
}

static gboolean
store_exec (MynaClientStore *self, const char *sql, const char *what, GError **error)
{
  int rc = sqlite3_exec (self->db, sql, NULL, NULL, NULL);

  return rc == SQLITE_OK || store_fail (self, rc, what, error);
}

/* ---- opening ------------------------------------------------------------------ */

static gboolean
store_is_memory (const char *path)
{
  return strcmp (path, ":memory:") == 0;
}

/* Creates @path's folder (0700) and the file itself (0600) unless they
 * exist; takes group and other permissions off an existing file. */
static gboolean
store_create_private (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  struct stat st;
  int fd;

  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      int e = errno;
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store %s: cannot create the folder %s: %s", path, dir,
                   g_strerror (e));
      return FALSE;
    }
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store %s: cannot create the file: %s", path, g_strerror (e));
      return FALSE;
    }
  if (fstat (fd, &st) == 0 && (st.st_mode & 077) != 0)
    {
      if (fchmod (fd, st.st_mode & 0700) == 0)
        g_warning ("client store %s was readable by other users (mode %04o): now %04o",
                   path, (unsigned) (st.st_mode & 07777), (unsigned) (st.st_mode & 0700));
      else
        g_warning ("client store %s is readable by other users (mode %04o): %s", path,
                   (unsigned) (st.st_mode & 07777), g_strerror (errno));
    }
  close (fd);
  return TRUE;
}

/* Checks the file is the client's and not newer than this library. */
static gboolean
store_check_version (MynaClientStore *self, int *version, GError **error)
{
  int app_id = 0;

  if (!store_query_int (self, "PRAGMA application_id", &app_id, error)
      || !store_query_int (self, "PRAGMA user_version", version, error))
    return FALSE;
  if (app_id != 0 && app_id != STORE_APPLICATION_ID)
    {
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store %s belongs to another application (application_id %#x)",
                   self->path, (guint) app_id);
      return FALSE;
    }
  if (*version > STORE_SCHEMA_VERSION || *version < 0)
    {
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_VERSION,
                   "client store %s has schema version %d; this library knows versions "
                   "up to %d", self->path, *version, STORE_SCHEMA_VERSION);
      return FALSE;
    }
  return TRUE;
}

/* Switches a file database to WAL. */
static gboolean
store_enable_wal (MynaClientStore *self, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  gboolean wal = FALSE;
  int rc = sqlite3_prepare_v2 (self->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    return store_fail (self, rc, "enabling WAL mode", error);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    wal = g_strcmp0 ((const char *) sqlite3_column_text (stmt, 0), "wal") == 0;
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW)
    return store_fail (self, rc, "enabling WAL mode", error);
  if (!wal)
    {
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store %s: WAL mode is unavailable", self->path);
      return FALSE;
    }
  return TRUE;
}

/* Creates or migrates the schema in one transaction. */
static gboolean
store_migrate (MynaClientStore *self, GError **error)
{
  g_autofree char *set_version =
    g_strdup_printf ("PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
  g_autofree char *set_app_id =
    g_strdup_printf ("PRAGMA application_id = %d", STORE_APPLICATION_ID);
  int version = 0;
  gboolean ok;

  if (!store_exec (self, "BEGIN IMMEDIATE", "starting the migration", error))
    return FALSE;
  ok = store_check_version (self, &version, error);
  for (int v = version; ok && v < STORE_SCHEMA_VERSION; v++)
    ok = store_exec (self, store_migrations[v], "migrating the schema", error);
  if (ok && version < STORE_SCHEMA_VERSION)
    ok = store_exec (self, set_version, "setting the schema version", error)
         && store_exec (self, set_app_id, "setting the application id", error);
  if (!ok || !store_exec (self, "COMMIT", "committing the migration", error))
    {
      sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (version != 0 && version < STORE_SCHEMA_VERSION)
    g_info ("client store %s: schema migrated from version %d to %d", self->path,
            version, STORE_SCHEMA_VERSION);
  return TRUE;
}

/* Opens the connection and prepares the file. */
static gboolean
store_open (MynaClientStore *self, GError **error)
{
  gboolean memory = store_is_memory (self->path);
  int version = 0;
  int rc;

  if (!memory && !store_create_private (self->path, error))
    return FALSE;
  rc = sqlite3_open_v2 (self->path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    return store_fail (self, rc, "opening", error);
  sqlite3_extended_result_codes (self->db, 1);
  sqlite3_busy_timeout (self->db, STORE_BUSY_TIMEOUT_MS);
  /* Reading the header first leaves a foreign, newer or garbage file
   * untouched. */
  return store_check_version (self, &version, error)
         && (memory || store_enable_wal (self, error))
         && store_exec (self, "PRAGMA synchronous = FULL", "setting synchronous", error)
         && store_migrate (self, error);
}

static void
store_close (MynaClientStore *self)
{
  for (guint i = 0; i < N_STMTS; i++)
    g_clear_pointer (&self->stmts[i], sqlite3_finalize);
  if (self->db != NULL)
    {
      int rc = sqlite3_close (self->db);
      if (rc != SQLITE_OK)
        g_warning ("client store %s: closing: %s", self->path, sqlite3_errstr (rc));
      self->db = NULL;
    }
}

static void
store_finalize (GObject *object)
{
  MynaClientStore *self = MYNA_CLIENT_STORE (object);

  store_close (self);
  g_free (self->path);
  G_OBJECT_CLASS (myna_client_store_parent_class)->finalize (object);
}

static void
myna_client_store_class_init (MynaClientStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = store_finalize;
}

static void
myna_client_store_init (MynaClientStore *self)
{
}

MynaClientStore *
myna_client_store_new (const char *path, GError **error)
{
  g_autoptr (MynaClientStore) self = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (MYNA_TYPE_CLIENT_STORE, NULL);
  self->path = g_strdup (path);
  if (*path == '\0')
    {
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store: an empty path");
      return NULL;
    }
  if (!store_open (self, error))
    {
      g_debug ("client store %s: not opened", path);
      return NULL;
    }
  return g_steal_pointer (&self);
}

const char *
myna_client_store_get_path (MynaClientStore *self)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_STORE (self), NULL);
  return self->path;
}

/* An opened store (not one made by g_object_new alone). */
#define STORE_OK(self) (MYNA_IS_CLIENT_STORE (self) && (self)->db != NULL)

/* ---- account -------------------------------------------------------------------- */

gboolean
myna_client_store_get_account (MynaClientStore *self, char **jid, char **password)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;
  int rc;

  g_return_val_if_fail (STORE_OK (self), FALSE);

  stmt = store_stmt (self, STMT_ACCOUNT_GET, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return FALSE;
    }
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    {
      if (rc != SQLITE_DONE)
        {
          store_fail (self, rc, "reading the account", &error);
          store_warn (error);
        }
      return FALSE;
    }
  if (jid != NULL)
    *jid = column_dup (stmt, 0);
  if (password != NULL)
    *password = column_dup (stmt, 1);
  return TRUE;
}

gboolean
myna_client_store_set_account (MynaClientStore *self, const char *jid, const char *password,
                               GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (jid != NULL && *jid != '\0', FALSE);
  g_return_val_if_fail (password != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, STMT_ACCOUNT_SET, error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, jid);
  bind_text (stmt, 2, password);
  return store_step_done (self, stmt, "storing the account", error);
}

gboolean
myna_client_store_clear_account (MynaClientStore *self, GError **error)
{
  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!store_begin (self, error))
    return FALSE;
  if (!store_run (self, STMT_ACCOUNT_DELETE, "deleting the account", error)
      || !store_run (self, STMT_KV_DELETE_SESSION, "deleting the session state", error)
      || !store_commit (self, error))
    {
      store_rollback (self);
      return FALSE;
    }
  return TRUE;
}

/* ---- small settings ------------------------------------------------------------------ */

char *
myna_client_store_get_value (MynaClientStore *self, const char *key)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;
  int rc;

  g_return_val_if_fail (STORE_OK (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);

  stmt = store_stmt (self, STMT_KV_GET, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return NULL;
    }
  bind_text (stmt, 1, key);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return column_dup (stmt, 0);
  if (rc != SQLITE_DONE)
    {
      store_fail (self, rc, "reading a setting", &error);
      store_warn (error);
    }
  return NULL;
}

gboolean
myna_client_store_set_value (MynaClientStore *self, const char *key, const char *value,
                             GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, value != NULL ? STMT_KV_SET : STMT_KV_DELETE, error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, key);
  if (value != NULL)
    bind_text (stmt, 2, value);
  return store_step_done (self, stmt, "storing a setting", error);
}

/* ---- roster ---------------------------------------------------------------------------- */

GPtrArray *
myna_client_store_get_roster (MynaClientStore *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;
  GPtrArray *items;
  int rc;

  g_return_val_if_fail (STORE_OK (self), NULL);

  items = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_roster_item_free);
  stmt = store_stmt (self, STMT_ROSTER_GET, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return items;
    }
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      MynaClientRosterItem *item = g_new0 (MynaClientRosterItem, 1);
      const char *groups = (const char *) sqlite3_column_text (stmt, 4);

      item->jid = column_dup (stmt, 0);
      item->name = column_dup (stmt, 1);
      item->subscription = column_dup (stmt, 2);
      item->ask = column_dup (stmt, 3);
      item->groups = groups != NULL ? g_strsplit (groups, STORE_GROUP_SEP, -1)
                                    : g_new0 (char *, 1);
      g_ptr_array_add (items, item);
    }
  if (rc != SQLITE_DONE)
    {
      store_fail (self, rc, "reading the roster", &error);
      store_warn (error);
    }
  return items;
}

char *
myna_client_store_get_roster_version (MynaClientStore *self)
{
  return myna_client_store_get_value (self, STORE_KEY_ROSTER_VER);
}

/* Writes one item (inside the caller's transaction). */
static gboolean
store_roster_put (MynaClientStore *self, const MynaClientRosterItem *item, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = store_stmt (self, STMT_ROSTER_PUT, error);
  g_autofree char *groups = NULL;

  if (stmt == NULL)
    return FALSE;
  if (item->groups != NULL && item->groups[0] != NULL)
    groups = g_strjoinv (STORE_GROUP_SEP, item->groups);
  bind_text (stmt, 1, item->jid);
  bind_text (stmt, 2, item->name);
  bind_text (stmt, 3, item->subscription != NULL ? item->subscription : "none");
  bind_text (stmt, 4, item->ask);
  bind_text (stmt, 5, groups);
  return store_step_done (self, stmt, "storing a roster item", error);
}

/* Deletes one item (inside the caller's transaction). */
static gboolean
store_roster_delete (MynaClientStore *self, const char *jid, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = store_stmt (self, STMT_ROSTER_DELETE, error);

  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, jid);
  return store_step_done (self, stmt, "deleting a roster item", error);
}

gboolean
myna_client_store_replace_roster (MynaClientStore *self, GPtrArray *items, const char *version,
                                  GError **error)
{
  gboolean ok;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (items != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  for (guint i = 0; i < items->len; i++)
    {
      const MynaClientRosterItem *item = g_ptr_array_index (items, i);
      g_return_val_if_fail (item != NULL && item->jid != NULL, FALSE);
    }

  if (!store_begin (self, error))
    return FALSE;
  ok = store_run (self, STMT_ROSTER_CLEAR, "clearing the roster", error);
  for (guint i = 0; ok && i < items->len; i++)
    ok = store_roster_put (self, g_ptr_array_index (items, i), error);
  ok = ok && myna_client_store_set_value (self, STORE_KEY_ROSTER_VER, version, error)
       && store_commit (self, error);
  if (!ok)
    store_rollback (self);
  return ok;
}

/* @version NULL leaves the stored version as it is (a server that keeps
 * roster versions puts one in every push). */
gboolean
myna_client_store_update_roster_item (MynaClientStore *self, const MynaClientRosterItem *item,
                                      const char *version, GError **error)
{
  gboolean ok;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (item != NULL && item->jid != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!store_begin (self, error))
    return FALSE;
  if (g_strcmp0 (item->subscription, "remove") == 0)
    ok = store_roster_delete (self, item->jid, error);
  else
    ok = store_roster_put (self, item, error);
  ok = ok && (version == NULL
              || myna_client_store_set_value (self, STORE_KEY_ROSTER_VER, version, error))
       && store_commit (self, error);
  if (!ok)
    store_rollback (self);
  return ok;
}

/* ---- messages ------------------------------------------------------------------------------ */

/* Binds the columns ?1 … ?6 (id, peer, body, type, stanza_id, timestamp)
 * common to both directions. */
static void
store_bind_message (sqlite3_stmt *stmt, const MynaClientMessage *m, const char *default_type)
{
  bind_text (stmt, 1, m->id);
  bind_text (stmt, 2, m->peer);
  bind_text (stmt, 3, m->body);
  bind_text (stmt, 4, m->type != NULL ? m->type : default_type);
  bind_text (stmt, 5, m->stanza_id);
  sqlite3_bind_int64 (stmt, 6, m->timestamp != 0 ? m->timestamp : g_get_real_time ());
}

gboolean
myna_client_store_add_outgoing (MynaClientStore *self, const MynaClientMessage *message,
                                GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;
  int rc;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (message->id != NULL && message->peer != NULL
                        && message->body != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, STMT_MSG_ADD_OUT, error);
  if (stmt == NULL)
    return FALSE;
  store_bind_message (stmt, message, "chat");
  rc = sqlite3_step (stmt);
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    {
      g_set_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED,
                   "client store %s: an outgoing message with id %s is stored already",
                   self->path, message->id);
      return FALSE;
    }
  return rc == SQLITE_DONE || store_fail (self, rc, "storing an outgoing message", error);
}

gboolean
myna_client_store_add_incoming (MynaClientStore *self, const MynaClientMessage *message,
                                const char *dedupe_key, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);
  g_return_val_if_fail (message->peer != NULL && message->body != NULL, FALSE);
  g_return_val_if_fail (dedupe_key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, STMT_MSG_ADD_IN, error);
  if (stmt == NULL)
    return FALSE;
  store_bind_message (stmt, message, "normal");
  /* A message without an id is stored with an empty one. */
  if (message->id == NULL)
    bind_text (stmt, 1, "");
  bind_text (stmt, 7, dedupe_key);
  if (!store_step_done (self, stmt, "storing a received message", error))
    return FALSE;
  if (sqlite3_changes (self->db) == 0)
    {
      g_debug ("client store: a duplicate message from %s (key %s)", message->peer, dedupe_key);
      return FALSE;
    }
  return TRUE;
}

gboolean
myna_client_store_set_message_state (MynaClientStore *self, const char *id,
                                     MynaClientMessageState state, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (state <= MYNA_CLIENT_MESSAGE_FAILED
                        && state != MYNA_CLIENT_MESSAGE_RECEIVED, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, STMT_MSG_SET_STATE, error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, id);
  sqlite3_bind_int (stmt, 2, (int) state);
  if (!store_step_done (self, stmt, "changing a message's state", error))
    return FALSE;
  return sqlite3_changes (self->db) > 0;
}

/* Reads a row of MSG_COLUMNS. */
static MynaClientMessage *
store_read_message (sqlite3_stmt *stmt)
{
  MynaClientMessage *m = g_new0 (MynaClientMessage, 1);

  m->id = column_dup (stmt, 0);
  m->direction = sqlite3_column_int (stmt, 1);
  m->peer = column_dup (stmt, 2);
  m->body = column_dup (stmt, 3);
  m->type = column_dup (stmt, 4);
  m->stanza_id = column_dup (stmt, 5);
  m->state = sqlite3_column_int (stmt, 6);
  m->timestamp = sqlite3_column_int64 (stmt, 7);
  return m;
}

/* Steps @stmt to its end, collecting its rows of MSG_COLUMNS. */
static GPtrArray *
store_read_messages (MynaClientStore *self, sqlite3_stmt *stmt)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_message_free);
  int rc;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (list, store_read_message (stmt));
  if (rc != SQLITE_DONE)
    {
      g_autoptr (GError) error = NULL;
      store_fail (self, rc, "reading messages", &error);
      store_warn (error);
    }
  return list;
}

MynaClientMessage *
myna_client_store_get_message (MynaClientStore *self, MynaClientDirection direction,
                               const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;
  g_autoptr (GPtrArray) list = NULL;

  g_return_val_if_fail (STORE_OK (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  stmt = store_stmt (self, STMT_MSG_GET, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return NULL;
    }
  sqlite3_bind_int (stmt, 1, direction == MYNA_CLIENT_DIRECTION_OUT ? 1 : 0);
  bind_text (stmt, 2, id);
  list = store_read_messages (self, stmt);
  return list->len > 0 ? g_ptr_array_steal_index (list, 0) : NULL;
}

GPtrArray *
myna_client_store_get_pending (MynaClientStore *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), NULL);

  stmt = store_stmt (self, STMT_MSG_PENDING, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_message_free);
    }
  return store_read_messages (self, stmt);
}

GPtrArray *
myna_client_store_get_messages (MynaClientStore *self, const char *peer, guint limit)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), NULL);

  stmt = store_stmt (self, STMT_MSG_LIST, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_message_free);
    }
  bind_text (stmt, 1, peer);
  sqlite3_bind_int64 (stmt, 2, limit > 0 ? (gint64) limit : -1);
  return store_read_messages (self, stmt);
}

/* ---- notifications ----------------------------------------------------------------- */

gboolean
myna_client_store_add_notification (MynaClientStore *self,
                                    const MynaClientNotification *n, GError **error)
{
  g_autoptr (StoreStmtRef) stmt = NULL;

  g_return_val_if_fail (STORE_OK (self), FALSE);
  g_return_val_if_fail (n != NULL && n->id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  stmt = store_stmt (self, STMT_NOTIF_ADD, error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, n->id);
  bind_text (stmt, 2, n->from);
  bind_text (stmt, 3, n->api_key);
  bind_text (stmt, 4, n->title);
  bind_text (stmt, 5, n->message);
  bind_text (stmt, 6, n->uri);
  sqlite3_bind_int64 (stmt, 7, n->timestamp != 0 ? n->timestamp : g_get_real_time ());
  if (!store_step_done (self, stmt, "storing a notification", error))
    return FALSE;
  if (sqlite3_changes (self->db) == 0)
    {
      g_debug ("client store: a duplicate notification %s", n->id);
      return FALSE;
    }
  return TRUE;
}

GPtrArray *
myna_client_store_get_notifications (MynaClientStore *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (StoreStmtRef) stmt = NULL;
  GPtrArray *list;
  int rc;

  g_return_val_if_fail (STORE_OK (self), NULL);

  list = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_notification_free);
  stmt = store_stmt (self, STMT_NOTIF_LIST, &error);
  if (stmt == NULL)
    {
      store_warn (error);
      return list;
    }
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      MynaClientNotification *n = g_new0 (MynaClientNotification, 1);

      n->id = column_dup (stmt, 0);
      n->from = column_dup (stmt, 1);
      n->api_key = column_dup (stmt, 2);
      n->title = column_dup (stmt, 3);
      n->message = column_dup (stmt, 4);
      n->uri = column_dup (stmt, 5);
      n->timestamp = sqlite3_column_int64 (stmt, 6);
      g_ptr_array_add (list, n);
    }
  if (rc != SQLITE_DONE)
    {
      store_fail (self, rc, "reading notifications", &error);
      store_warn (error);
    }
  return list;
}
