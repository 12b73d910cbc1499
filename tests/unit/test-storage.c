/* test-storage.c: unit tests of the storage API (include/myna/storage.h)
 * on the SQLite backend: key–value and archive semantics, read-your-writes,
 * callbacks and their main context, batching, the main loop staying
 * responsive, close, failed writes, schema versions, corrupt files, and a
 * the backlog watermarks (backpressure), a
 * crash test that SIGKILLs a writer process (storage-crash-writer) and
 * checks every acknowledged write survived.
 *
 * Nothing sleeps: each wait iterates a main context until its condition
 * holds, bounded by a timeout. */
#include "myna/storage.h"
#include "../../core/storage-guard.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOST "example.org"
#define WAIT_MS 30000

/* Iterates @ctx until @cond holds or @ms elapse, then asserts @cond. */
#define WAIT_UNTIL_IN(ctx, cond, ms)                                        \
  G_STMT_START {                                                            \
    gboolean timed_out_ = FALSE;                                            \
    GSource *timer_ = g_timeout_source_new (ms);                            \
    g_source_set_callback (timer_, set_flag, &timed_out_, NULL);            \
    g_source_attach (timer_, (ctx));                                        \
    while (!(cond) && !timed_out_)                                          \
      g_main_context_iteration ((ctx), TRUE);                               \
    g_source_destroy (timer_);                                              \
    g_source_unref (timer_);                                                \
    g_assert_true (cond);                                                   \
  } G_STMT_END
#define WAIT_UNTIL(cond, ms) WAIT_UNTIL_IN (NULL, cond, ms)

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A temporary directory holding one database; freeing removes both. */
typedef struct {
  char *dir;
  char *path;
  char *uri;
} TempDb;

static TempDb *
temp_db_new (void)
{
  g_autoptr (GError) error = NULL;
  TempDb *db = g_new0 (TempDb, 1);

  db->dir = g_dir_make_tmp ("myna-storage-XXXXXX", &error);
  g_assert_no_error (error);
  db->path = g_build_filename (db->dir, "test.db", NULL);
  db->uri = g_strconcat ("sqlite:", db->path, NULL);
  return db;
}

static void
temp_db_free (TempDb *db)
{
  g_autoptr (GDir) dir = g_dir_open (db->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (db->dir, name, NULL);

      g_unlink (file);
    }
  g_rmdir (db->dir);
  g_free (db->dir);
  g_free (db->path);
  g_free (db->uri);
  g_free (db);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TempDb, temp_db_free)

static MynaStorage *
open_ok (TempDb *db)
{
  g_autoptr (GError) error = NULL;
  MynaStorage *storage = myna_storage_open (db->uri, &error);

  g_assert_no_error (error);
  g_assert_nonnull (storage);
  return storage;
}

static void
flush_ok (MynaStorage *storage)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (myna_storage_flush (storage, &error));
  g_assert_no_error (error);
}

/* Runs SQL on the database behind the storage's back. */
static void
sql_exec (TempDb *db, const char *sql)
{
  sqlite3 *raw = NULL;

  g_assert_cmpint (sqlite3_open (db->path, &raw), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (raw, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_close (raw), ==, SQLITE_OK);
}

static int
sql_int (TempDb *db, const char *sql)
{
  sqlite3 *raw = NULL;
  sqlite3_stmt *stmt = NULL;
  int value;

  g_assert_cmpint (sqlite3_open (db->path, &raw), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_close (raw), ==, SQLITE_OK);
  return value;
}

static char *
sql_text (TempDb *db, const char *sql)
{
  sqlite3 *raw = NULL;
  sqlite3_stmt *stmt = NULL;
  char *value;

  g_assert_cmpint (sqlite3_open (db->path, &raw), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_close (raw), ==, SQLITE_OK);
  return value;
}

/* Records calls of the callbacks below. */
typedef struct {
  guint    calls;
  guint    failures;
  guint    destroys;
  GError  *error;        /* the last failure */
  GThread *thread;       /* where the last call ran */
  GArray  *ids;          /* appended ids, in callback order */
} Counter;

static void
counter_clear (Counter *counter)
{
  g_clear_error (&counter->error);
  g_clear_pointer (&counter->ids, g_array_unref);
}

static void
counter_note (Counter *counter, const GError *error)
{
  counter->calls++;
  counter->thread = g_thread_self ();
  if (error != NULL)
    {
      counter->failures++;
      g_clear_error (&counter->error);
      counter->error = g_error_copy (error);
    }
}

static void
count_done (const GError *error, gpointer user_data)
{
  counter_note (user_data, error);
}

static void
count_appended (gint64 id, const GError *error, gpointer user_data)
{
  Counter *counter = user_data;

  counter_note (counter, error);
  if (counter->ids == NULL)
    counter->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  if (error == NULL)
    g_array_append_val (counter->ids, id);
}

static void
count_destroy (gpointer user_data)
{
  ((Counter *) user_data)->destroys++;
}

static void
assert_kv (MynaStorage *storage, const char *user, const char *store,
           const char *key, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *value = myna_kv_get (storage, HOST, user, store, key,
                                        &error);

  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, expected);
}

static GHashTable *
get_all_ok (MynaStorage *storage, const char *user, const char *store)
{
  g_autoptr (GError) error = NULL;
  GHashTable *all = myna_kv_get_all (storage, HOST, user, store, &error);

  g_assert_no_error (error);
  g_assert_nonnull (all);
  return all;
}

/* Archive queries, waited for on the main loop. */
typedef struct {
  gboolean   done;
  GArray    *ids;
  GPtrArray *items;      /* copies */
  gboolean   complete;
  guint      total;
  GError    *error;
} QueryResult;

static void
query_result_clear (QueryResult *result)
{
  g_clear_pointer (&result->ids, g_array_unref);
  g_clear_pointer (&result->items, g_ptr_array_unref);
  g_clear_error (&result->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (QueryResult, query_result_clear)

static void
query_done (GPtrArray *items, gboolean complete, guint total,
            const GError *error, gpointer user_data)
{
  QueryResult *result = user_data;

  result->done = TRUE;
  result->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  result->items = g_ptr_array_new_with_free_func (
    (GDestroyNotify) myna_archive_item_free);
  for (guint i = 0; i < items->len; i++)
    {
      const MynaArchiveItem *item = items->pdata[i];
      MynaArchiveItem *copy = g_new0 (MynaArchiveItem, 1);

      copy->id = item->id;
      copy->timestamp = item->timestamp;
      copy->with = g_strdup (item->with);
      copy->data = g_strdup (item->data);
      g_ptr_array_add (result->items, copy);
      g_array_append_val (result->ids, item->id);
    }
  result->complete = complete;
  result->total = total;
  if (error != NULL)
    result->error = g_error_copy (error);
}

static void
query_wait (MynaStorage *storage, const char *user, const char *archive,
            const MynaArchiveQuery *query, QueryResult *result)
{
  query_result_clear (result);
  result->done = FALSE;
  myna_archive_query (storage, HOST, user, archive, query, query_done,
                      result, NULL);
  WAIT_UNTIL (result->done, WAIT_MS);
  g_assert_no_error (result->error);
}

static void
query_wait_full (MynaStorage *storage, const char *user, const char *archive,
                 const MynaArchiveQuery *query, MynaArchiveQueryFlags flags,
                 QueryResult *result)
{
  query_result_clear (result);
  result->done = FALSE;
  myna_archive_query_full (storage, HOST, user, archive, query, flags,
                           query_done, result, NULL);
  WAIT_UNTIL (result->done, WAIT_MS);
  g_assert_no_error (result->error);
}

/* Asserts @result holds exactly ids[first .. first + n - 1]. */
static void
assert_page (const QueryResult *result, const GArray *ids, guint first,
             guint n, gboolean complete, guint total)
{
  g_assert_cmpuint (result->ids->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (g_array_index (result->ids, gint64, i), ==,
                     g_array_index (ids, gint64, first + i));
  g_assert_cmpint (result->complete, ==, complete);
  g_assert_cmpuint (result->total, ==, total);
}

/* Key–value. */

static void
test_kv_basic (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GHashTable) all = NULL;
  g_autoptr (GHashTable) empty = NULL;
  Counter counter = { 0 };

  myna_kv_set (storage, HOST, "alice", "roster", "bob", "<item a='1'/>",
               count_done, &counter, count_destroy);
  myna_kv_set (storage, HOST, "alice", "roster", "carol", "<item/>",
               count_done, &counter, count_destroy);
  myna_kv_set (storage, HOST, "alice", "roster", "dave", "gone soon",
               NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "alice", "vcard", "", "<vCard/>",
               NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "bob", "roster", "alice", "<item b='1'/>",
               NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "", "settings", "motd", "hello",
               NULL, NULL, NULL);
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, 2);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, 2);

  /* Overwrite and delete, committed. */
  myna_kv_set (storage, HOST, "alice", "roster", "bob", "<item a='2'/>",
               NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "alice", "roster", "dave", NULL,
               NULL, NULL, NULL);
  flush_ok (storage);
  assert_kv (storage, "alice", "roster", "bob", "<item a='2'/>");
  assert_kv (storage, "alice", "roster", "carol", "<item/>");
  assert_kv (storage, "alice", "roster", "dave", NULL);
  assert_kv (storage, "alice", "roster", "nobody", NULL);
  assert_kv (storage, "alice", "vcard", "", "<vCard/>");
  assert_kv (storage, "", "settings", "motd", "hello");

  all = get_all_ok (storage, "alice", "roster");
  g_assert_cmpuint (g_hash_table_size (all), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (all, "bob"), ==, "<item a='2'/>");
  g_assert_cmpstr (g_hash_table_lookup (all, "carol"), ==, "<item/>");
  empty = get_all_ok (storage, "alice", "nothing");
  g_assert_cmpuint (g_hash_table_size (empty), ==, 0);

  /* Account removal: every store of alice, nobody else's. */
  myna_kv_delete_user (storage, HOST, "alice", count_done, &counter,
                       count_destroy);
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, 3);
  g_assert_cmpuint (counter.destroys, ==, 3);
  assert_kv (storage, "alice", "roster", "bob", NULL);
  assert_kv (storage, "alice", "vcard", "", NULL);
  g_clear_pointer (&all, g_hash_table_unref);
  all = get_all_ok (storage, "alice", "roster");
  g_assert_cmpuint (g_hash_table_size (all), ==, 0);
  assert_kv (storage, "bob", "roster", "alice", "<item b='1'/>");
  myna_storage_close (storage);

  /* Everything persisted. */
  storage = open_ok (db);
  assert_kv (storage, "bob", "roster", "alice", "<item b='1'/>");
  assert_kv (storage, "", "settings", "motd", "hello");
  assert_kv (storage, "alice", "roster", "carol", NULL);
  myna_storage_close (storage);
  counter_clear (&counter);
}

static void
test_kv_read_your_writes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GHashTable) all = NULL;
  MynaStorageStats stats;

  myna_kv_set (storage, HOST, "alice", "roster", "old", "committed",
               NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "alice", "vcard", "", "<vCard/>",
               NULL, NULL, NULL);
  flush_ok (storage);

  /* No main loop iteration between the writes and the reads. */
  myna_kv_set (storage, HOST, "alice", "roster", "a", "1", NULL, NULL, NULL);
  assert_kv (storage, "alice", "roster", "a", "1");
  myna_kv_set (storage, HOST, "alice", "roster", "a", "2", NULL, NULL, NULL);
  assert_kv (storage, "alice", "roster", "a", "2");
  myna_kv_set (storage, HOST, "alice", "roster", "old", NULL,
               NULL, NULL, NULL);
  assert_kv (storage, "alice", "roster", "old", NULL);
  assert_kv (storage, "bob", "roster", "a", NULL);
  all = get_all_ok (storage, "alice", "roster");
  g_assert_cmpuint (g_hash_table_size (all), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (all, "a"), ==, "2");
  g_clear_pointer (&all, g_hash_table_unref);

  /* A pending account removal hides committed and pending keys; later
   * writes show again. */
  myna_kv_delete_user (storage, HOST, "alice", NULL, NULL, NULL);
  assert_kv (storage, "alice", "roster", "a", NULL);
  assert_kv (storage, "alice", "vcard", "", NULL);
  all = get_all_ok (storage, "alice", "vcard");
  g_assert_cmpuint (g_hash_table_size (all), ==, 0);
  g_clear_pointer (&all, g_hash_table_unref);
  myna_kv_set (storage, HOST, "alice", "roster", "new", "3",
               NULL, NULL, NULL);
  assert_kv (storage, "alice", "roster", "new", "3");
  all = get_all_ok (storage, "alice", "roster");
  g_assert_cmpuint (g_hash_table_size (all), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (all, "new"), ==, "3");
  g_clear_pointer (&all, g_hash_table_unref);

  myna_storage_get_stats (storage, &stats);
  g_assert_cmpuint (stats.writes_queued, ==, 7);

  /* The same answers once committed, now from the database. */
  flush_ok (storage);
  myna_storage_get_stats (storage, &stats);
  g_assert_cmpuint (stats.pending, ==, 0);
  g_assert_cmpuint (stats.writes_committed, ==, 7);
  assert_kv (storage, "alice", "roster", "a", NULL);
  assert_kv (storage, "alice", "vcard", "", NULL);
  assert_kv (storage, "alice", "roster", "new", "3");
  all = get_all_ok (storage, "alice", "roster");
  g_assert_cmpuint (g_hash_table_size (all), ==, 1);
  myna_storage_close (storage);
}

/* Callbacks run later, on the context that was thread-default at open,
 * on this thread; flush runs them too. */
static void
test_callbacks_main_context (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GMainContext) context = g_main_context_new ();
  MynaStorage *storage;
  Counter counter = { 0 };

  g_main_context_push_thread_default (context);
  storage = open_ok (db);
  g_main_context_pop_thread_default (context);

  myna_kv_set (storage, HOST, "alice", "s", "k", "v", count_done, &counter,
               count_destroy);
  g_assert_cmpuint (counter.calls, ==, 0);
  /* The global default context never runs them. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  WAIT_UNTIL_IN (context, counter.calls == 1, WAIT_MS);
  g_assert_true (counter.thread == g_thread_self ());
  g_assert_cmpuint (counter.destroys, ==, 1);
  g_assert_cmpuint (counter.failures, ==, 0);

  myna_archive_append (storage, HOST, "alice", "mam", "bob@example.org", 0,
                       "<m/>", count_appended, &counter, count_destroy);
  myna_kv_set (storage, HOST, "alice", "s", "k", NULL, count_done, &counter,
               count_destroy);
  g_assert_cmpuint (counter.calls, ==, 1);
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, 3);
  g_assert_cmpuint (counter.destroys, ==, 3);
  g_assert_cmpuint (counter.ids->len, ==, 1);
  g_assert_cmpint (g_array_index (counter.ids, gint64, 0), >, 0);
  myna_storage_close (storage);
  counter_clear (&counter);
}

/* Archives. */

static GArray *
append_items (MynaStorage *storage, const char *user, const char *archive,
              guint n, gint64 ts0)
{
  Counter counter = { 0 };
  GArray *ids;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *data = g_strdup_printf ("<m i='%u'/>", i);

      const char *with = i % 2 == 0 ? "bob@example.org"
                                    : "carol@example.org";

      myna_archive_append (storage, HOST, user, archive, with,
                           ts0 + 1000 * i, data, count_appended, &counter,
                           count_destroy);
    }
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, n);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, n);
  ids = g_steal_pointer (&counter.ids);
  counter_clear (&counter);
  return ids;
}

/* myna_archive_query_full: NO_TOTAL leaves the count out (and a page
 * finding nothing after an id does not mark the archive empty); FORWARD
 * pages from the oldest item before before_id. */
static void
test_archive_query_flags (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GArray) ids = append_items (storage, "alice", "mam", 10, 1000);
  g_auto (QueryResult) r = { 0 };
  MynaArchiveQuery q = { .max = 3 };

  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_NO_TOTAL, &r);
  assert_page (&r, ids, 0, 3, FALSE, 0);
  q.after_id = g_array_index (ids, gint64, 9);
  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_NO_TOTAL, &r);
  assert_page (&r, ids, 0, 0, TRUE, 0);
  q.after_id = 0;
  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_NO_TOTAL, &r);
  assert_page (&r, ids, 0, 3, FALSE, 0);

  /* Before item 5: the last page by default, the first one FORWARD. */
  q.before_id = g_array_index (ids, gint64, 5);
  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_DEFAULT, &r);
  assert_page (&r, ids, 2, 3, FALSE, 10);
  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_FORWARD, &r);
  assert_page (&r, ids, 0, 3, FALSE, 10);
  q.after_id = g_array_index (ids, gint64, 2);
  query_wait_full (storage, "alice", "mam", &q, MYNA_ARCHIVE_QUERY_FORWARD
                                                | MYNA_ARCHIVE_QUERY_NO_TOTAL, &r);
  assert_page (&r, ids, 3, 2, TRUE, 0);
  myna_storage_close (storage);
}

static void
test_archive_query (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GArray) ids = NULL;
  g_autoptr (GArray) noise = NULL;
  g_auto (QueryResult) r = { 0 };
  MynaArchiveQuery q = { 0 };
  const MynaArchiveItem *item;

  /* Items 0..9 at ts 1000..10000; even ones with bob, odd with carol. */
  ids = append_items (storage, "alice", "mam", 10, 1000);
  noise = append_items (storage, "bob", "mam", 3, 1000);
  g_clear_pointer (&noise, g_array_unref);
  noise = append_items (storage, "alice", "offline", 3, 1000);
  for (guint i = 1; i < ids->len; i++)
    g_assert_cmpint (g_array_index (ids, gint64, i), >,
                     g_array_index (ids, gint64, i - 1));

  /* Everything, oldest first, with the fields as stored. */
  query_wait (storage, "alice", "mam", NULL, &r);
  assert_page (&r, ids, 0, 10, TRUE, 10);
  item = r.items->pdata[3];
  g_assert_cmpint (item->timestamp, ==, 4000);
  g_assert_cmpstr (item->with, ==, "carol@example.org");
  g_assert_cmpstr (item->data, ==, "<m i='3'/>");

  /* By peer. */
  q = (MynaArchiveQuery) { .with = "bob@example.org" };
  query_wait (storage, "alice", "mam", &q, &r);
  g_assert_cmpuint (r.ids->len, ==, 5);
  g_assert_cmpuint (r.total, ==, 5);
  g_assert_true (r.complete);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (g_array_index (r.ids, gint64, i), ==,
                     g_array_index (ids, gint64, 2 * i));

  /* By time, both bounds inclusive. */
  q = (MynaArchiveQuery) { .start = 3000, .end = 6000 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 2, 4, TRUE, 4);
  q = (MynaArchiveQuery) { .start = 9000 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 8, 2, TRUE, 2);
  q = (MynaArchiveQuery) { .end = 1000 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 1, TRUE, 1);

  /* Forward paging with after_id; total ignores paging. */
  q = (MynaArchiveQuery) { .max = 4 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 4, FALSE, 10);
  q.after_id = g_array_index (ids, gint64, 3);
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 4, 4, FALSE, 10);
  q.after_id = g_array_index (ids, gint64, 7);
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 8, 2, TRUE, 10);
  q.after_id = g_array_index (ids, gint64, 9);
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 0, TRUE, 10);

  /* Backward paging with before_id: the last page before it, oldest
   * first; complete once nothing earlier exists. */
  q = (MynaArchiveQuery) { .max = 4, .before_id = G_MAXINT64 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 6, 4, FALSE, 10);
  q.before_id = g_array_index (ids, gint64, 6);
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 2, 4, FALSE, 10);
  q.before_id = g_array_index (ids, gint64, 2);
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 2, TRUE, 10);

  /* A page that holds exactly the rest is complete. */
  q = (MynaArchiveQuery) { .max = 10 };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 10, TRUE, 10);
  q = (MynaArchiveQuery) { .max = 4,
                           .before_id = g_array_index (ids, gint64, 4) };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 4, TRUE, 10);

  /* Filters and paging together: carol's items, 2 per page, backward. */
  q = (MynaArchiveQuery) { .with = "carol@example.org", .max = 2,
                           .before_id = g_array_index (ids, gint64, 9) };
  query_wait (storage, "alice", "mam", &q, &r);
  g_assert_cmpuint (r.ids->len, ==, 2);
  g_assert_cmpint (g_array_index (r.ids, gint64, 0), ==,
                   g_array_index (ids, gint64, 5));
  g_assert_cmpint (g_array_index (r.ids, gint64, 1), ==,
                   g_array_index (ids, gint64, 7));
  g_assert_false (r.complete);
  g_assert_cmpuint (r.total, ==, 5);
  /* ... and both ids bound the range. */
  q = (MynaArchiveQuery) { .after_id = g_array_index (ids, gint64, 2),
                           .before_id = g_array_index (ids, gint64, 5) };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 3, 2, TRUE, 10);

  /* Nothing there. */
  query_wait (storage, "nobody", "mam", NULL, &r);
  assert_page (&r, ids, 0, 0, TRUE, 0);
  q = (MynaArchiveQuery) { .with = "nobody@example.org" };
  query_wait (storage, "alice", "mam", &q, &r);
  assert_page (&r, ids, 0, 0, TRUE, 0);
  myna_storage_close (storage);
}

/* A query sees every write queued before it, committed or not; the
 * default page size is 100. */
static void
test_archive_query_sees_queued_writes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_auto (QueryResult) r = { 0 };
  gint64 before = g_get_real_time ();

  for (guint i = 0; i < 150; i++)
    myna_archive_append (storage, HOST, "alice", "mam", NULL, 0, "<m/>",
                         NULL, NULL, NULL);
  query_wait (storage, "alice", "mam", NULL, &r);
  g_assert_cmpuint (r.ids->len, ==, 100);
  g_assert_cmpuint (r.total, ==, 150);
  g_assert_false (r.complete);
  /* Timestamp 0 means now; NULL peer is "". */
  g_assert_cmpint (((MynaArchiveItem *) r.items->pdata[0])->timestamp, >=,
                   before);
  g_assert_cmpstr (((MynaArchiveItem *) r.items->pdata[0])->with, ==, "");
  myna_storage_close (storage);
}

static guint
archive_count (MynaStorage *storage, const char *user, const char *archive)
{
  g_auto (QueryResult) r = { 0 };

  query_wait (storage, user, archive, NULL, &r);
  return r.total;
}

static void
test_archive_delete_expire (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GArray) ids = NULL;
  g_autoptr (GArray) other = NULL;
  g_auto (QueryResult) r = { 0 };
  Counter counter = { 0 };

  ids = append_items (storage, "alice", "mam", 6, 1000);   /* ts 1000..6000 */
  other = append_items (storage, "bob", "mam", 3, 1000);   /* ts 1000..3000 */
  g_clear_pointer (&other, g_array_unref);
  other = append_items (storage, "alice", "offline", 2, 1000);

  /* Up to an id, one user's archive only. */
  myna_archive_delete (storage, HOST, "alice", "mam",
                       g_array_index (ids, gint64, 2), count_done, &counter,
                       count_destroy);
  flush_ok (storage);
  query_wait (storage, "alice", "mam", NULL, &r);
  assert_page (&r, ids, 3, 3, TRUE, 3);
  g_assert_cmpuint (archive_count (storage, "bob", "mam"), ==, 3);
  g_assert_cmpuint (archive_count (storage, "alice", "offline"), ==, 2);

  /* Expiry: one archive of every user, strictly older than the limit. */
  myna_archive_expire (storage, "mam", 3000, count_done, &counter,
                       count_destroy);
  flush_ok (storage);
  g_assert_cmpuint (archive_count (storage, "bob", "mam"), ==, 1);
  g_assert_cmpuint (archive_count (storage, "alice", "mam"), ==, 3);
  g_assert_cmpuint (archive_count (storage, "alice", "offline"), ==, 2);
  myna_archive_expire (storage, "mam", 5000, NULL, NULL, NULL);
  query_wait (storage, "alice", "mam", NULL, &r);
  assert_page (&r, ids, 4, 2, TRUE, 2);

  /* 0: the whole archive. */
  myna_archive_delete (storage, HOST, "alice", "mam", 0, count_done,
                       &counter, count_destroy);
  g_assert_cmpuint (archive_count (storage, "alice", "mam"), ==, 0);
  g_assert_cmpuint (archive_count (storage, "alice", "offline"), ==, 2);
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, 3);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, 3);

  /* Ids keep increasing after deletions. */
  g_clear_pointer (&other, g_array_unref);
  other = append_items (storage, "alice", "mam", 1, 1000);
  g_assert_cmpint (g_array_index (other, gint64, 0), >,
                   g_array_index (ids, gint64, 5));
  myna_storage_close (storage);
  counter_clear (&counter);
}

/* An append whose transaction rolls back takes the owner it added with
 * it: the next new owner, which SQLite numbers the same, does not get
 * the first one's later items. */
static void
test_archive_owner_rollback (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) ids = NULL;
  g_auto (QueryResult) r = { 0 };

  myna_storage_close (storage);
  sql_exec (db, "CREATE TRIGGER poison BEFORE INSERT ON archive"
                " WHEN NEW.data = 'poison'"
                " BEGIN SELECT RAISE (ABORT, 'poisoned item'); END");
  storage = open_ok (db);
  g_test_expect_message ("myna-storage", G_LOG_LEVEL_WARNING, "*operations failed*1 failed");
  myna_archive_append (storage, HOST, "alice", "mam", "bob@example.org", 1, "poison",
                       NULL, NULL, NULL);
  g_assert_false (myna_storage_flush (storage, &error));
  g_test_assert_expected_messages ();
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM archive_owner"), ==, 0);

  ids = append_items (storage, "bob", "mam", 1, 1000);
  g_clear_pointer (&ids, g_array_unref);
  ids = append_items (storage, "alice", "mam", 2, 1000);
  query_wait (storage, "bob", "mam", NULL, &r);
  g_assert_cmpuint (r.total, ==, 1);
  query_wait (storage, "alice", "mam", NULL, &r);
  assert_page (&r, ids, 0, 2, TRUE, 2);
  myna_storage_close (storage);
}

/* Account removal: every store and every archive of one user. */
static void
test_delete_user (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GArray) ids = NULL;
  Counter counter = { 0 };

  myna_kv_set (storage, HOST, "alice", "roster", "bob", "1", NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "alice", "vcard", "vcard", "v", NULL, NULL, NULL);
  myna_kv_set (storage, HOST, "bob", "roster", "alice", "1", NULL, NULL, NULL);
  g_clear_pointer (&ids, g_array_unref);
  ids = append_items (storage, "alice", "offline", 2, 1000);
  g_clear_pointer (&ids, g_array_unref);
  ids = append_items (storage, "alice", "mam", 2, 1000);
  g_clear_pointer (&ids, g_array_unref);
  ids = append_items (storage, "bob", "offline", 1, 1000);
  flush_ok (storage);

  myna_storage_delete_user (storage, HOST, "alice", count_done, &counter, count_destroy);
  /* Read-your-writes before the commit, the backend after it. */
  assert_kv (storage, "alice", "roster", "bob", NULL);
  g_assert_cmpuint (archive_count (storage, "alice", "offline"), ==, 0);
  flush_ok (storage);
  g_assert_cmpuint (counter.calls, ==, 1);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM kv WHERE user = 'alice'"), ==, 0);
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM archive_owner WHERE user = 'alice'"), ==, 0);
  /* No item is left without its owner. */
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM archive"
                                " WHERE owner NOT IN (SELECT owner FROM archive_owner)"), ==, 0);
  assert_kv (storage, "bob", "roster", "alice", "1");
  g_assert_cmpuint (archive_count (storage, "bob", "offline"), ==, 1);
  myna_storage_close (storage);
  counter_clear (&counter);
}

/* The barrier: its callback runs after every write queued before it, in
 * the callbacks' order, and at once (next dispatch) with nothing queued. */
static void
order_note (const GError *error, gpointer data)
{
  g_ptr_array_add (data, GINT_TO_POINTER (error == NULL ? 1 : -1));
}

static void
barrier_note (const GError *error, gpointer data)
{
  g_ptr_array_add (data, GINT_TO_POINTER (error == NULL ? 2 : -2));
}

static void
test_after_writes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GPtrArray) seen = g_ptr_array_new ();
  MynaStorageStats stats;

  /* Nothing queued: runs on the next dispatch, never within the call. */
  myna_storage_after_writes (storage, barrier_note, seen, NULL);
  g_assert_cmpuint (seen->len, ==, 0);
  WAIT_UNTIL (seen->len == 1, 5000);
  g_assert_cmpint (GPOINTER_TO_INT (seen->pdata[0]), ==, 2);

  g_ptr_array_set_size (seen, 0);
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      myna_kv_set (storage, HOST, "alice", "s", key, "v", order_note, seen, NULL);
    }
  myna_storage_after_writes (storage, barrier_note, seen, NULL);
  WAIT_UNTIL (seen->len == 51, 5000);
  for (guint i = 0; i < 50; i++)
    g_assert_cmpint (GPOINTER_TO_INT (seen->pdata[i]), ==, 1);
  g_assert_cmpint (GPOINTER_TO_INT (seen->pdata[50]), ==, 2);
  /* Committed when it ran; not counted as a write. */
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM kv WHERE user = 'alice'"), ==, 50);
  myna_storage_get_stats (storage, &stats);
  g_assert_cmpuint (stats.writes_queued, ==, 50);
  g_assert_cmpuint (stats.pending, ==, 0);
  myna_storage_close (storage);
}

/* Schema versions and damaged files. */

static void
test_schema_reopen (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autofree char *mode = NULL;
  int version;

  myna_kv_set (storage, HOST, "alice", "s", "k", "v", NULL, NULL, NULL);
  myna_archive_append (storage, HOST, "alice", "mam", "", 1, "<m/>",
                       NULL, NULL, NULL);
  myna_storage_close (storage);

  version = sql_int (db, "PRAGMA user_version");
  g_assert_cmpint (version, >=, 1);
  g_assert_cmpint (sql_int (db, "PRAGMA application_id"), ==, 0x4d796e61);
  mode = sql_text (db, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");

  for (int round = 0; round < 2; round++)
    {
      storage = open_ok (db);
      assert_kv (storage, "alice", "s", "k", "v");
      g_assert_cmpuint (archive_count (storage, "alice", "mam"), ==, 1);
      myna_storage_close (storage);
      g_assert_cmpint (sql_int (db, "PRAGMA user_version"), ==, version);
    }
}

/* A database of schema 1, with the built-in modules' stores and archive
 * under their old global names, is migrated: each module finds its data
 * through its view ("MODULE/NAME"), the core's account store stays. */
static void
test_schema_module_scopes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  static const char *const moved[][3] = {
    /* old store, module, key */
    { "roster", "roster", "romeo@example.net" },
    { "roster-version", "roster", "current" },
    { "roster-count", "roster", "items" },
    { "roster-approved-by", "roster", "nurse@example.org" },
    { "vcard", "vcard", "vcard" },
    { "private", "private", "{storage:bookmarks}storage" },
    { "last", "last", "logout" },
    { "blocklist", "blocking", "tybalt@example.net" },
  };
  MynaStorage *storage;

  sql_exec (db,
            "CREATE TABLE kv (host TEXT NOT NULL, user TEXT NOT NULL, store TEXT NOT NULL,"
            "  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (host, user, store, key));"
            "CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL,"
            "  user TEXT NOT NULL, archive TEXT NOT NULL, \"with\" TEXT NOT NULL,"
            "  ts INTEGER NOT NULL, data TEXT NOT NULL);"
            "CREATE INDEX archive_by_id ON archive (host, user, archive, id);"
            "CREATE INDEX archive_by_with ON archive (host, user, archive, \"with\", id);"
            "CREATE INDEX archive_by_ts ON archive (host, user, archive, ts);"
            "CREATE INDEX archive_by_expiry ON archive (archive, ts);"
            "PRAGMA application_id = 1299803745; PRAGMA user_version = 1;");
  for (guint i = 0; i < G_N_ELEMENTS (moved); i++)
    {
      g_autofree char *sql = g_strdup_printf ("INSERT INTO kv VALUES ('" HOST "', 'juliet', "
                                              "'%s', '%s', 'value %u')", moved[i][0],
                                              moved[i][2], i);
      sql_exec (db, sql);
    }
  sql_exec (db, "INSERT INTO kv VALUES ('" HOST "', 'juliet', 'account', 'scram', 'keys');"
                "INSERT INTO archive (host, user, archive, \"with\", ts, data)"
                "  VALUES ('" HOST "', 'juliet', 'offline', 'romeo@example.net', 1, '<m/>');"
                "INSERT INTO archive (host, user, archive, \"with\", ts, data)"
                "  VALUES ('" HOST "', 'juliet', 'offline', 'romeo@example.net', 2, '<m2/>');"
                "DELETE FROM archive WHERE id = 2;");

  storage = open_ok (db);
  g_assert_cmpint (sql_int (db, "PRAGMA user_version"), >=, 3);
  /* Schema 3: the item moved under its owner; ids go on from the highest
   * ever given (2, deleted), not from the highest left. */
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM archive_owner"), ==, 1);
  g_assert_cmpint (sql_int (db, "SELECT count(*) FROM archive JOIN archive_owner USING (owner)"
                                " WHERE user = 'juliet' AND archive = 'offline/offline'"
                                "  AND id = 1 AND data = '<m/>'"), ==, 1);
  {
    MynaStorage *offline = myna_storage_new_view (storage, "offline");
    g_autoptr (GArray) ids = append_items (offline, "juliet", "offline", 1, 3);

    g_assert_cmpint (g_array_index (ids, gint64, 0), ==, 3);
    myna_storage_view_free (offline);
  }
  for (guint i = 0; i < G_N_ELEMENTS (moved); i++)
    {
      MynaStorage *view = myna_storage_new_view (storage, moved[i][1]);
      g_autofree char *expected = g_strdup_printf ("value %u", i);
      g_autofree char *old = myna_kv_get (storage, HOST, "juliet", moved[i][0], moved[i][2],
                                          NULL);

      assert_kv (view, "juliet", moved[i][0], moved[i][2], expected);
      g_assert_null (old);
      myna_storage_view_free (view);
    }
  {
    MynaStorage *offline = myna_storage_new_view (storage, "offline");
    MynaStorage *roster = myna_storage_new_view (storage, "roster");
    g_autofree char *through_view = myna_kv_get (roster, HOST, "juliet", "account", "scram",
                                                 NULL);

    g_assert_cmpuint (archive_count (offline, "juliet", "offline"), ==, 2);
    g_assert_cmpuint (archive_count (storage, "juliet", "offline"), ==, 0);
    /* The core's store stays where it was, out of every view's reach. */
    assert_kv (storage, "juliet", "account", "scram", "keys");
    g_assert_null (through_view);
    myna_storage_view_free (offline);
    myna_storage_view_free (roster);
  }
  myna_storage_close (storage);
}

static void
test_schema_too_new (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GError) error = NULL;
  MynaStorage *storage = open_ok (db);
  int version;

  myna_storage_close (storage);
  version = sql_int (db, "PRAGMA user_version");
  sql_exec (db, "PRAGMA user_version = 9999");

  storage = myna_storage_open (db->uri, &error);
  g_assert_null (storage);
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_VERSION);
  g_test_message ("%s", error->message);
  /* Left untouched. */
  g_assert_cmpint (sql_int (db, "PRAGMA user_version"), ==, 9999);

  /* Back to the known version, it opens again. */
  {
    g_autofree char *sql = g_strdup_printf ("PRAGMA user_version = %d",
                                            version);

    sql_exec (db, sql);
  }
  storage = open_ok (db);
  myna_storage_close (storage);
}

static void
test_foreign_database (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GError) error = NULL;
  MynaStorage *storage;

  sql_exec (db, "PRAGMA application_id = 1234; CREATE TABLE t (x)");
  storage = myna_storage_open (db->uri, &error);
  g_assert_null (storage);
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED);
}

static void
test_corrupt_file (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) garbage = g_string_new (NULL);
  MynaStorage *storage;

  for (guint i = 0; i < 8192; i++)
    g_string_append_c (garbage, (char) g_test_rand_int_range (0, 256));
  g_assert_true (g_file_set_contents (db->path, garbage->str, garbage->len,
                                      NULL));
  storage = myna_storage_open (db->uri, &error);
  g_assert_null (storage);
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  /* Text, like a misnamed configuration file. */
  g_assert_true (g_file_set_contents (db->path,
                                      "[server]\nhost = example.org\n", -1,
                                      NULL));
  storage = myna_storage_open (db->path, &error);
  g_assert_null (storage);
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_CORRUPT);
}

static int
file_mode (const char *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (int) (st.st_mode & 07777) : -1;
}

/* The database (SCRAM keys) and its -wal and -shm are private whatever
 * the umask and the directory's mode; a file an older version left
 * readable is tightened. */
static void
test_file_modes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autofree char *wal = g_strconcat (db->path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (db->path, "-shm", NULL);
  mode_t old = umask (022);
  MynaStorage *storage;

  g_assert_cmpint (g_chmod (db->dir, 0755), ==, 0);
  storage = open_ok (db);
  myna_kv_set (storage, HOST, "alice", "auth", "scram", "secret", NULL, NULL, NULL);
  flush_ok (storage);
  g_assert_cmpint (file_mode (db->path), ==, 0600);
  g_assert_cmpint (file_mode (wal), ==, 0600);
  g_assert_cmpint (file_mode (shm), ==, 0600);
  myna_storage_close (storage);

  g_assert_cmpint (g_chmod (db->path, 0644), ==, 0);
  g_test_expect_message ("myna-storage", G_LOG_LEVEL_WARNING,
                         "*was readable by other users (mode 0644): now 0600");
  storage = open_ok (db);
  g_test_assert_expected_messages ();
  g_assert_cmpint (file_mode (db->path), ==, 0600);
  myna_storage_close (storage);
  umask (old);
}

static void
test_bad_uris (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autofree char *missing_dir = g_build_filename (db->dir, "no", "such.db",
                                                   NULL);
  g_autofree char *uri = g_strconcat ("sqlite:", missing_dir, NULL);
  const char *failing[] = { "sqlite:", "sqlite::memory:", uri };
  g_autoptr (GError) error = NULL;
  MynaStorage *storage;

  storage = myna_storage_open ("postgresql://localhost/myna", &error);
  g_assert_null (storage);
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_BACKEND);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (failing); i++)
    {
      storage = myna_storage_open (failing[i], &error);
      g_assert_null (storage);
      g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED);
      g_clear_error (&error);
    }

  /* A bare path is SQLite. */
  storage = myna_storage_open (db->path, &error);
  g_assert_no_error (error);
  myna_storage_close (storage);
  myna_storage_close (NULL);
}

/* Batching and the main loop. */

static void
queue_kv_writes (MynaStorage *storage, guint n, Counter *counter)
{
  for (guint i = 0; i < n; i++)
    {
      char key[32];

      g_snprintf (key, sizeof key, "key-%u", i);
      myna_kv_set (storage, HOST, "alice", "bulk", key, "small value",
                   count_done, counter, count_destroy);
    }
}

static void
test_batching (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  Counter counter = { 0 };
  MynaStorageStats stats;

  queue_kv_writes (storage, 10000, &counter);
  myna_storage_get_stats (storage, &stats);
  g_assert_cmpuint (stats.writes_queued, ==, 10000);
  flush_ok (storage);
  myna_storage_get_stats (storage, &stats);
  g_test_message ("10000 writes committed in %" G_GUINT64_FORMAT " batches",
                  stats.batches);
  g_assert_cmpuint (stats.writes_committed, ==, 10000);
  g_assert_cmpuint (stats.pending, ==, 0);
  g_assert_cmpuint (stats.batches, >=, 1);
  g_assert_cmpuint (stats.batches, <=, 100);
  g_assert_cmpuint (counter.calls, ==, 10000);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, 10000);
  assert_kv (storage, "alice", "bulk", "key-9999", "small value");
  myna_storage_close (storage);
  counter_clear (&counter);
}

static void
test_throughput (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  Counter counter = { 0 };
  MynaStorageStats stats;
  gint64 start = g_get_monotonic_time ();
  double seconds;

  queue_kv_writes (storage, 100000, &counter);
  flush_ok (storage);
  seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  myna_storage_get_stats (storage, &stats);
  g_test_message ("100000 kv writes: %.3f s, %" G_GUINT64_FORMAT " batches",
                  seconds, stats.batches);
  g_assert_cmpuint (counter.calls, ==, 100000);
  g_assert_cmpuint (counter.destroys, ==, 100000);
  g_assert_cmpuint (stats.writes_committed, ==, 100000);
  /* Generous for sanitizer builds; an optimised build takes well under
   * a second. */
  g_assert_cmpfloat (seconds, <, 20.0);
  myna_storage_close (storage);
  counter_clear (&counter);
}

typedef struct {
  MynaStorage *storage;
  Counter     *counter;
  sqlite3     *blocker;       /* holds the write lock while set */
  guint        ticks;
  guint        ticks_blocked; /* while the writer could not write */
  guint        ticks_busy;    /* while writes were pending, after that */
} Ticker;

static gboolean
ticker_tick (gpointer data)
{
  Ticker *t = data;
  MynaStorageStats stats;

  t->ticks++;
  myna_storage_get_stats (t->storage, &stats);
  if (t->blocker != NULL)
    {
      t->ticks_blocked++;
      /* The main thread still reads, from the overlay and the database. */
      assert_kv (t->storage, "alice", "bulk", "key-0", "small value");
      assert_kv (t->storage, "alice", "other", "committed", "yes");
      g_assert_cmpuint (t->counter->calls, ==, 0);
      if (t->ticks_blocked == 20)
        {
          g_assert_cmpint (sqlite3_exec (t->blocker, "ROLLBACK", NULL, NULL,
                                         NULL), ==, SQLITE_OK);
          g_assert_cmpint (sqlite3_close (t->blocker), ==, SQLITE_OK);
          t->blocker = NULL;
        }
    }
  else if (stats.pending > 0)
    t->ticks_busy++;
  return G_SOURCE_CONTINUE;
}

/* Another connection holds the write lock, so the writer thread waits in
 * SQLite's busy handler: the main loop must keep running meanwhile, and
 * during the big batch that follows. */
static void
test_main_loop_not_stalled (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  Counter counter = { 0 };
  Ticker ticker = { storage, &counter, NULL, 0, 0, 0 };
  guint timer;

  myna_kv_set (storage, HOST, "alice", "other", "committed", "yes",
               NULL, NULL, NULL);
  flush_ok (storage);
  g_assert_cmpint (sqlite3_open (db->path, &ticker.blocker), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (ticker.blocker, "BEGIN IMMEDIATE", NULL,
                                 NULL, NULL), ==, SQLITE_OK);

  queue_kv_writes (storage, 50000, &counter);
  timer = g_timeout_add (2, ticker_tick, &ticker);
  WAIT_UNTIL (counter.calls == 50000, 60000);
  g_source_remove (timer);
  g_test_message ("%u ticks: %u while blocked, %u while the batch ran",
                  ticker.ticks, ticker.ticks_blocked, ticker.ticks_busy);
  g_assert_null (ticker.blocker);
  g_assert_cmpuint (ticker.ticks_blocked, ==, 20);
  g_assert_cmpuint (ticker.ticks_busy, >=, 1);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, 50000);
  myna_storage_close (storage);
  counter_clear (&counter);
}

/* Close. */

static void
test_close_runs_pending_callbacks (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  Counter counter = { 0 };
  Counter quiet = { 0 };
  g_auto (QueryResult) r = { 0 };

  queue_kv_writes (storage, 2000, &counter);
  for (guint i = 0; i < 100; i++)
    myna_archive_append (storage, HOST, "alice", "mam", "", 0, "<m/>",
                         count_appended, &counter, count_destroy);
  myna_archive_query (storage, HOST, "alice", "mam", NULL, query_done, &r,
                      NULL);
  /* No callback: the destroy notify still runs, once. */
  myna_kv_set (storage, HOST, "alice", "s", "k", "v", NULL, &quiet,
               count_destroy);
  myna_kv_delete_user (storage, HOST, "bob", NULL, &quiet, count_destroy);
  g_assert_cmpuint (counter.calls, ==, 0);
  myna_storage_close (storage);

  g_assert_cmpuint (counter.calls, ==, 2100);
  g_assert_cmpuint (counter.failures, ==, 0);
  g_assert_cmpuint (counter.destroys, ==, 2100);
  g_assert_cmpuint (quiet.destroys, ==, 2);
  g_assert_true (r.done);
  g_assert_cmpuint (r.total, ==, 100);

  /* Nothing fires later. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (counter.calls, ==, 2100);

  storage = open_ok (db);
  assert_kv (storage, "alice", "bulk", "key-1999", "small value");
  assert_kv (storage, "alice", "s", "k", "v");
  myna_storage_close (storage);
  counter_clear (&counter);
  counter_clear (&quiet);
}

typedef struct {
  MynaStorage *storage;
  Counter      late;
  gboolean     closed_here;
} Closer;

/* Writes refused while closing still complete, with CLOSED. */
static void
write_while_closing (const GError *error, gpointer user_data)
{
  Closer *closer = user_data;

  g_assert_no_error (error);
  myna_kv_set (closer->storage, HOST, "alice", "s", "late", "v",
               count_done, &closer->late, count_destroy);
}

static void
test_close_refuses_new_writes (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  Closer closer = { open_ok (db), { 0 }, FALSE };

  myna_kv_set (closer.storage, HOST, "alice", "s", "k", "v",
               write_while_closing, &closer, NULL);
  myna_storage_close (closer.storage);
  g_assert_cmpuint (closer.late.calls, ==, 1);
  g_assert_cmpuint (closer.late.destroys, ==, 1);
  g_assert_error (closer.late.error, MYNA_STORAGE_ERROR,
                  MYNA_STORAGE_ERROR_CLOSED);
  counter_clear (&closer.late);
}

/* A callback closes the storage while others are due: they all run before
 * that close returns, and the dispatch survives it. */
static void
close_from_callback (const GError *error, gpointer user_data)
{
  Closer *closer = user_data;

  g_assert_no_error (error);
  closer->late.calls++;
  if (closer->late.calls == 10)
    {
      myna_storage_close (closer->storage);
      closer->closed_here = TRUE;
      g_assert_cmpuint (closer->late.calls, ==, 1000);
    }
}

static void
test_close_from_callback (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  Closer closer = { open_ok (db), { 0 }, FALSE };

  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);

      myna_kv_set (closer.storage, HOST, "alice", "s", key, "v",
                   close_from_callback, &closer, NULL);
    }
  WAIT_UNTIL (closer.closed_here, WAIT_MS);
  g_assert_cmpuint (closer.late.calls, ==, 1000);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
}

/* A failed write: the batch is retried write by write, so only the bad
 * one fails, and the overlay forgets it. */
static void
test_failed_write (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GError) error = NULL;
  MynaStorage *storage = open_ok (db);
  Counter good = { 0 };
  Counter bad = { 0 };
  MynaStorageStats stats;

  myna_kv_set (storage, HOST, "alice", "s", "b", "before", NULL, NULL, NULL);
  myna_storage_close (storage);
  sql_exec (db, "CREATE TRIGGER poison BEFORE UPDATE ON kv"
                " WHEN NEW.value = 'poison'"
                " BEGIN SELECT RAISE (ABORT, 'poisoned value'); END");
  storage = open_ok (db);

  g_test_expect_message ("myna-storage", G_LOG_LEVEL_WARNING,
                         "*operations failed*1 failed");
  myna_kv_set (storage, HOST, "alice", "s", "a", "1", count_done, &good,
               count_destroy);
  myna_kv_set (storage, HOST, "alice", "s", "b", "poison", count_done, &bad,
               count_destroy);
  myna_kv_set (storage, HOST, "alice", "s", "c", "3", count_done, &good,
               count_destroy);
  assert_kv (storage, "alice", "s", "b", "poison");
  g_assert_false (myna_storage_flush (storage, &error));
  g_assert_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED);
  g_test_message ("%s", error->message);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (good.calls, ==, 2);
  g_assert_cmpuint (good.failures, ==, 0);
  g_assert_cmpuint (bad.calls, ==, 1);
  g_assert_cmpuint (bad.failures, ==, 1);
  g_assert_error (bad.error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED);
  g_assert_cmpuint (good.destroys + bad.destroys, ==, 3);
  assert_kv (storage, "alice", "s", "a", "1");
  assert_kv (storage, "alice", "s", "b", "before");
  assert_kv (storage, "alice", "s", "c", "3");
  myna_storage_get_stats (storage, &stats);
  g_assert_cmpuint (stats.writes_committed, ==, 2);
  g_assert_cmpuint (stats.pending, ==, 0);

  /* The next flush is clean again. */
  myna_kv_set (storage, HOST, "alice", "s", "d", "4", NULL, NULL, NULL);
  g_clear_error (&error);
  flush_ok (storage);
  myna_storage_close (storage);
  counter_clear (&good);
  counter_clear (&bad);
}

/* The crash test. */

typedef struct {
  GString    *buf;
  GHashTable *keys;      /* acknowledged kv keys, all rounds */
  GHashTable *ids;       /* acknowledged archive ids (gint64*), all rounds */
  guint       acked;     /* this round */
  gboolean    eof;
  gboolean    exited;
  int         status;
} CrashRound;

static void
crash_parse_lines (CrashRound *round)
{
  char *nl;

  while ((nl = memchr (round->buf->str, '\n', round->buf->len)) != NULL)
    {
      g_autofree char *line = g_strndup (round->buf->str,
                                         nl - round->buf->str);

      g_string_erase (round->buf, 0, nl - round->buf->str + 1);
      if (g_str_has_prefix (line, "kv "))
        g_hash_table_add (round->keys, g_strdup (line + 3));
      else if (g_str_has_prefix (line, "ar "))
        {
          gint64 id = g_ascii_strtoll (line + 3, NULL, 10);

          g_assert_cmpint (id, >, 0);
          g_hash_table_add (round->ids, g_memdup2 (&id, sizeof id));
        }
      else
        g_error ("unexpected line from the crash writer: %s", line);
      round->acked++;
    }
}

static gboolean
crash_readable (int fd, GIOCondition condition, gpointer user_data)
{
  CrashRound *round = user_data;
  char chunk[4096];
  ssize_t n = read (fd, chunk, sizeof chunk);

  if (n > 0)
    {
      g_string_append_len (round->buf, chunk, n);
      crash_parse_lines (round);
      return G_SOURCE_CONTINUE;
    }
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return G_SOURCE_CONTINUE;
  /* EOF: a line cut by the kill was never acknowledged. */
  round->eof = TRUE;
  return G_SOURCE_REMOVE;
}

static void
crash_exited (GPid pid, int status, gpointer user_data)
{
  CrashRound *round = user_data;

  round->exited = TRUE;
  round->status = status;
  g_spawn_close_pid (pid);
}

static void
crash_run_writer (const char *exe, TempDb *db, CrashRound *round)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { exe, db->uri, NULL };
  guint target = 2000 + g_test_rand_int_range (0, 1000);
  GPid pid;
  int out = -1;

  round->acked = 0;
  round->eof = round->exited = FALSE;
  g_string_truncate (round->buf, 0);
  g_assert_true (g_spawn_async_with_pipes_and_fds (
    NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, -1, -1, -1,
    NULL, NULL, 0, &pid, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_unix_set_fd_nonblocking (out, TRUE, &error));
  g_unix_fd_add (out, G_IO_IN | G_IO_HUP | G_IO_ERR, crash_readable, round);
  g_child_watch_add (pid, crash_exited, round);

  WAIT_UNTIL (round->acked >= target || round->exited, 60000);
  g_assert_false (round->exited);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  /* Lines still in the pipe were acknowledged before the kill. */
  WAIT_UNTIL (round->eof && round->exited, WAIT_MS);
  g_assert_true (WIFSIGNALED (round->status));
  g_assert_cmpint (WTERMSIG (round->status), ==, SIGKILL);
  close (out);
}

static void
crash_verify (TempDb *db, CrashRound *round)
{
  MynaStorage *storage = open_ok (db);
  g_auto (QueryResult) r = { 0 };
  MynaArchiveQuery q = { .max = 10000000 };
  g_autoptr (GHashTable) present = g_hash_table_new (g_int64_hash,
                                                     g_int64_equal);
  g_autofree char *integrity = NULL;
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, round->keys);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *expected = g_strconcat ("v-", key, NULL);
      g_autofree char *value = myna_kv_get (storage, "crash.example",
                                            "writer", "crash", key, &error);

      g_assert_no_error (error);
      if (g_strcmp0 (value, expected) != 0)
        g_error ("acknowledged key %s was lost", (const char *) key);
    }

  myna_archive_query (storage, "crash.example", "writer", "crash", &q,
                      query_done, &r, NULL);
  WAIT_UNTIL (r.done, WAIT_MS);
  g_assert_no_error (r.error);
  for (guint i = 0; i < r.ids->len; i++)
    g_hash_table_add (present, &g_array_index (r.ids, gint64, i));
  g_hash_table_iter_init (&iter, round->ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (present, key))
      g_error ("acknowledged archive item %" G_GINT64_FORMAT " was lost",
               *(gint64 *) key);
  myna_storage_close (storage);

  integrity = sql_text (db, "PRAGMA integrity_check");
  g_assert_cmpstr (integrity, ==, "ok");
}

static void
test_crash (void)
{
  const char *root = g_getenv ("MYNA_BUILD_ROOT");
  g_autofree char *exe = NULL;
  g_autoptr (TempDb) db = temp_db_new ();
  CrashRound round = { 0 };

  if (root == NULL)
    {
      g_test_skip ("MYNA_BUILD_ROOT is unset; run through meson test");
      return;
    }
  exe = g_build_filename (root, "tests", "unit", "storage-crash-writer",
                          NULL);
  if (!g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_fail_printf ("%s is missing; build it first", exe);
      return;
    }
  round.buf = g_string_new (NULL);
  round.keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  round.ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                     NULL);
  for (int i = 0; i < 3; i++)
    {
      gint64 start = g_get_monotonic_time ();

      crash_run_writer (exe, db, &round);
      crash_verify (db, &round);
      g_test_message ("crash round %d: %u writes acknowledged before the "
                      "kill (%u keys, %u items so far), verified in "
                      "%.2f s", i + 1, round.acked,
                      g_hash_table_size (round.keys),
                      g_hash_table_size (round.ids),
                      (g_get_monotonic_time () - start) / 1e6);
    }
  g_string_free (round.buf, TRUE);
  g_hash_table_unref (round.keys);
  g_hash_table_unref (round.ids);
}

/* The read cache against a model: random sets, deletes, user deletions,
 * reads of one key and of whole stores, with callbacks dispatched and
 * flushes at random points, for a cache that is off, one that evicts all
 * the time, and one that holds everything.  Every read must equal the
 * model; after a reopen without cache the database must equal it too. */
static const char *const model_users[] = { "alice", "bob", "" };
static const char *const model_stores[] = { "roster", "accounts" };
static const char *const model_keys[] = { "k1", "k2", "k3" };

static char *
model_key (guint u, guint s, guint k)
{
  return g_strdup_printf ("%u/%u/%u", u, s, k);
}

static void
check_against_model (MynaStorage *storage, GHashTable *model, guint u, guint s)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) all = myna_kv_get_all (storage, HOST, model_users[u],
                                                model_stores[s], &error);
  guint expected = 0;

  g_assert_no_error (error);
  for (guint k = 0; k < G_N_ELEMENTS (model_keys); k++)
    {
      g_autofree char *mk = model_key (u, s, k);
      const char *want = g_hash_table_lookup (model, mk);
      g_autofree char *got = myna_kv_get (storage, HOST, model_users[u],
                                          model_stores[s], model_keys[k], &error);

      g_assert_no_error (error);
      g_assert_cmpstr (got, ==, want);
      g_assert_cmpstr (g_hash_table_lookup (all, model_keys[k]), ==, want);
      expected += want != NULL;
    }
  g_assert_cmpuint (g_hash_table_size (all), ==, expected);
}

/* An archive query of the model: the count the archive must hold when
 * the query runs, which is its count when it was queued. */
typedef struct {
  guint  expected;
  guint *answered;
} ModelQuery;

static void
model_query_done (GPtrArray *items, gboolean complete, guint total,
                  const GError *error, gpointer user_data)
{
  ModelQuery *q = user_data;

  g_assert_no_error (error);
  g_assert_cmpuint (total, ==, q->expected);
  g_assert_cmpuint (items->len, ==, MIN (q->expected, 100));
  (*q->answered)++;
}

static void
run_cache_model (guint cache_size, guint32 seed)
{
  g_autoptr (TempDb) db = temp_db_new ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr (GHashTable) model = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                        g_free, g_free);
  MynaStorage *storage = open_ok (db);
  guint64 hits = 0;
  guint archive_count[G_N_ELEMENTS (model_users)] = { 0 };
  guint queries = 0, answered = 0;

  myna_storage_set_cache_size (storage, cache_size);
  for (guint step = 0; step < 3000; step++)
    {
      guint u = g_rand_int_range (rand, 0, G_N_ELEMENTS (model_users));
      guint st = g_rand_int_range (rand, 0, G_N_ELEMENTS (model_stores));
      guint k = g_rand_int_range (rand, 0, G_N_ELEMENTS (model_keys));
      guint what = g_rand_int_range (rand, 0, 100);

      if (what < 30)
        {
          g_autofree char *mk = model_key (u, st, k);
          g_autofree char *value = g_rand_boolean (rand)
            ? g_strdup_printf ("v%u", step) : NULL;

          myna_kv_set (storage, HOST, model_users[u], model_stores[st],
                       model_keys[k], value, NULL, NULL, NULL);
          if (value != NULL)
            g_hash_table_insert (model, g_steal_pointer (&mk),
                                 g_steal_pointer (&value));
          else
            g_hash_table_remove (model, mk);
        }
      else if (what < 33)
        {
          myna_kv_delete_user (storage, HOST, model_users[u], NULL, NULL, NULL);
          for (guint s2 = 0; s2 < G_N_ELEMENTS (model_stores); s2++)
            for (guint k2 = 0; k2 < G_N_ELEMENTS (model_keys); k2++)
              {
                g_autofree char *mk = model_key (u, s2, k2);

                g_hash_table_remove (model, mk);
              }
        }
      else if (what < 40)
        {
          myna_archive_append (storage, HOST, model_users[u], "offline", "x", 0,
                               "<m/>", NULL, NULL, NULL);
          archive_count[u]++;
        }
      else if (what < 43)
        {
          myna_archive_delete (storage, HOST, model_users[u], "offline", 0,
                               NULL, NULL, NULL);
          archive_count[u] = 0;
        }
      else if (what < 55)
        {
          ModelQuery *q = g_new0 (ModelQuery, 1);

          q->expected = archive_count[u];
          q->answered = &answered;
          queries++;
          myna_archive_query (storage, HOST, model_users[u], "offline", NULL,
                              model_query_done, q, g_free);
        }
      else if (what < 80)
        check_against_model (storage, model, u, st);
      else if (what < 95)
        g_main_context_iteration (NULL, FALSE);
      else
        flush_ok (storage);
    }
  flush_ok (storage);
  g_assert_cmpuint (answered, ==, queries);
  for (guint u = 0; u < G_N_ELEMENTS (model_users); u++)
    for (guint st = 0; st < G_N_ELEMENTS (model_stores); st++)
      check_against_model (storage, model, u, st);
  myna_storage_get_cache_stats (storage, NULL, &hits, NULL);
  if (cache_size == 0)
    g_assert_cmpuint (hits, ==, 0);
  else if (cache_size >= 100)
    g_assert_cmpuint (hits, >, 0);
  myna_storage_close (storage);

  storage = open_ok (db);
  myna_storage_set_cache_size (storage, 0);
  for (guint u = 0; u < G_N_ELEMENTS (model_users); u++)
    for (guint st = 0; st < G_N_ELEMENTS (model_stores); st++)
      check_against_model (storage, model, u, st);
  myna_storage_close (storage);
}

static void
test_cache_model (void)
{
  static const guint sizes[] = { 0, 1, 2, 1000 };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (guint32 seed = 1; seed <= 3; seed++)
      run_cache_model (sizes[i], seed * 7919 + i);
}

/* A failed write leaves the cache showing what the database holds. */
static void
test_cache_failed_write (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL, *after = NULL;

  myna_kv_set (storage, HOST, "alice", "s", "k", "old", NULL, NULL, NULL);
  flush_ok (storage);
  before = myna_kv_get (storage, HOST, "alice", "s", "k", &error);
  g_assert_cmpstr (before, ==, "old");
  sql_exec (db, "CREATE TRIGGER refuse BEFORE UPDATE ON kv "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END;");
  g_test_expect_message ("myna-storage", G_LOG_LEVEL_WARNING,
                         "*operations failed*1 failed");
  myna_kv_set (storage, HOST, "alice", "s", "k", "new", NULL, NULL, NULL);
  g_assert_false (myna_storage_flush (storage, &error));
  g_test_assert_expected_messages ();
  g_clear_error (&error);
  after = myna_kv_get (storage, HOST, "alice", "s", "k", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (after, ==, "old");
  myna_storage_close (storage);
}

static void count_query_done (GPtrArray *, gboolean, guint, const GError *, gpointer);

/* More empty archives than the known-empty set holds: the set is cleared
 * (and its blocks unmapped) on the way, lookups after the clear work, and
 * an append after it is seen by the next query. */
static void
test_archive_known_empty_clear (void)
{
  g_autoptr (TempDb) db = temp_db_new ();
  MynaStorage *storage = open_ok (db);
  g_auto (QueryResult) r = { 0 };
  guint pending = 0;

  for (guint i = 0; i < 70000; i++)
    {
      /* Keys of two lengths, so that entries of both sizes share blocks. */
      g_autofree char *u = g_strdup_printf ("user-%u-%s", i, i % 7 ? "x"
                                            : "a-longer-name-abcdefghijklmnopqrstuvwxyz");
      myna_archive_query (storage, HOST, u, "offline", NULL, count_query_done, &pending, NULL);
      pending++;
      if (i % 5000 == 0)
        flush_ok (storage);
    }
  flush_ok (storage);
  WAIT_UNTIL (pending == 0, 60000);
  for (guint i = 0; i < 70000; i += 3)
    {
      g_autofree char *u = g_strdup_printf ("user-%u-%s", i, i % 7 ? "x"
                                            : "a-longer-name-abcdefghijklmnopqrstuvwxyz");
      query_wait (storage, u, "offline", NULL, &r);
      g_assert_cmpuint (r.total, ==, 0);
    }
  /* One known empty since the clear, one from before it. */
  myna_archive_append (storage, HOST, "user-69999-x", "offline", "", 0, "<m/>", NULL, NULL, NULL);
  query_wait (storage, "user-69999-x", "offline", NULL, &r);
  g_assert_cmpuint (r.total, ==, 1);
  myna_archive_append (storage, HOST, "user-1-x", "offline", "", 0, "<m/>", NULL, NULL, NULL);
  query_wait (storage, "user-1-x", "offline", NULL, &r);
  g_assert_cmpuint (r.total, ==, 1);
  myna_storage_close (storage);
}

static void
count_query_done (GPtrArray *items, gboolean complete, guint total,
                  const GError *error, gpointer user_data)
{
  (*(guint *) user_data)--;
}

/* The backlog watch: each crossing reported once, in order. */
typedef struct {
  guint  overs;
  guint  unders;
  guint  pending_at_over;
  guint  pending_at_under;
  guint64 bytes_at_over;
  GThread *owner;      /* the thread that opened the storage */
} BacklogSeen;

static void
backlog_seen (MynaStorage *storage, gboolean over, guint pending, guint64 pending_bytes,
              gpointer data)
{
  BacklogSeen *seen = data;

  g_assert_true (g_thread_self () == seen->owner);
  if (over)
    {
      g_assert_cmpuint (seen->overs, ==, seen->unders);
      seen->overs++;
      seen->pending_at_over = pending;
      seen->bytes_at_over = pending_bytes;
    }
  else
    {
      g_assert_cmpuint (seen->overs, ==, seen->unders + 1);
      seen->unders++;
      seen->pending_at_under = pending;
    }
}

/* Writes queued behind a held writer reach the high watermark of
 * myna_storage_set_backlog_limits: reported once, from the write that
 * crossed it; pending_bytes counts them; once the writer commits, the
 * drop under the low watermark (half) is reported once from the main
 * loop, and nothing is lost.  A byte watermark works alone. */
static void
test_backlog_watermarks (void)
{
  g_autoptr (GError) error = NULL;
  TempDb *db = temp_db_new ();
  MynaStorage *storage = myna_storage_open (db->uri, &error);
  BacklogSeen seen = { .owner = g_thread_self () };
  MynaStorageStats st;
  g_autofree char *big = g_strnfill (1000, 'v');

  g_assert_no_error (error);
  myna_storage_set_backlog_limits (storage, 10, 0, backlog_seen, &seen);
  myna_storage_hold_writer_for_testing (storage, TRUE);
  for (guint i = 0; i < 9; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      myna_kv_set (storage, HOST, "u", "s", key, "v", NULL, NULL, NULL);
    }
  g_assert_cmpuint (seen.overs, ==, 0);
  g_assert_false (myna_storage_backlog_is_over (storage));
  myna_kv_set (storage, HOST, "u", "s", "k9", "v", NULL, NULL, NULL);
  g_assert_cmpuint (seen.overs, ==, 1);
  g_assert_cmpuint (seen.pending_at_over, ==, 10);
  g_assert_cmpuint (seen.bytes_at_over, >=, 10 * (strlen (HOST) + strlen ("u") + strlen ("s") + 2));
  g_assert_true (myna_storage_backlog_is_over (storage));
  /* Further writes while over are not reported again; reads still work. */
  myna_archive_append (storage, HOST, "u", "a", NULL, 1, "x", NULL, NULL, NULL);
  g_assert_cmpuint (seen.overs, ==, 1);
  g_autofree char *value = myna_kv_get (storage, HOST, "u", "s", "k3", &error);
  g_assert_cmpstr (value, ==, "v");
  /* The writer catches up: back under half, reported once. */
  myna_storage_hold_writer_for_testing (storage, FALSE);
  WAIT_UNTIL (seen.unders == 1, WAIT_MS);
  g_assert_cmpuint (seen.pending_at_under, <=, 5);
  g_assert_false (myna_storage_backlog_is_over (storage));
  g_assert_true (myna_storage_flush (storage, &error));
  g_assert_no_error (error);
  myna_storage_get_stats (storage, &st);
  g_assert_cmpuint (st.pending, ==, 0);
  g_assert_cmpuint (myna_storage_get_pending_bytes (storage), ==, 0);
  g_assert_cmpuint (st.writes_committed, ==, 11);
  g_assert_cmpuint (seen.overs, ==, 1);

  /* Bytes alone: reported by the write that passes 20000 bytes. */
  myna_storage_set_backlog_limits (storage, 0, 20000, backlog_seen, &seen);
  myna_storage_hold_writer_for_testing (storage, TRUE);
  guint n = 0;
  while (seen.overs == 1 && n < 40)
    {
      g_autofree char *key = g_strdup_printf ("b%u", n++);
      myna_kv_set (storage, HOST, "u", "s", key, big, NULL, NULL, NULL);
    }
  g_assert_cmpuint (seen.overs, ==, 2);
  g_assert_cmpuint (n, >=, 20000 / 1500);
  g_assert_cmpuint (n, <=, 20);
  g_assert_cmpuint (seen.bytes_at_over, >=, 20000);
  g_assert_cmpuint (seen.bytes_at_over, <, 20000 + 1500);
  g_assert_cmpuint (seen.pending_at_over, ==, n);
  /* Limits lifted: reported back at once. */
  myna_storage_set_backlog_limits (storage, 0, 0, backlog_seen, &seen);
  g_assert_cmpuint (seen.unders, ==, 2);
  g_assert_false (myna_storage_backlog_is_over (storage));
  /* Close releases a held writer and commits everything. */
  myna_storage_close (storage);
  storage = myna_storage_open (db->uri, &error);
  g_assert_no_error (error);
  g_autofree char *last = myna_kv_get (storage, HOST, "u", "s", "b0", &error);
  g_assert_cmpstr (last, ==, big);
  myna_storage_close (storage);
  temp_db_free (db);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Databases the tests make behind the storage's back are private, as
   * the storage makes its own (else opening one warns that it was not). */
  umask (077);

  g_test_add_func ("/storage/kv/basic", test_kv_basic);
  g_test_add_func ("/storage/kv/read-your-writes", test_kv_read_your_writes);
  g_test_add_func ("/storage/callbacks/main-context",
                   test_callbacks_main_context);
  g_test_add_func ("/storage/archive/query", test_archive_query);
  g_test_add_func ("/storage/archive/query-flags", test_archive_query_flags);
  g_test_add_func ("/storage/archive/query-sees-queued-writes",
                   test_archive_query_sees_queued_writes);
  g_test_add_func ("/storage/archive/delete-expire",
                   test_archive_delete_expire);
  g_test_add_func ("/storage/delete-user", test_delete_user);
  g_test_add_func ("/storage/after-writes", test_after_writes);
  g_test_add_func ("/storage/archive/owner-rollback", test_archive_owner_rollback);
  g_test_add_func ("/storage/schema/reopen", test_schema_reopen);
  g_test_add_func ("/storage/schema/module-scopes", test_schema_module_scopes);
  g_test_add_func ("/storage/schema/too-new", test_schema_too_new);
  g_test_add_func ("/storage/schema/foreign", test_foreign_database);
  g_test_add_func ("/storage/open/corrupt", test_corrupt_file);
  g_test_add_func ("/storage/open/bad-uris", test_bad_uris);
  g_test_add_func ("/storage/batching", test_batching);
  g_test_add_func ("/storage/throughput", test_throughput);
  g_test_add_func ("/storage/main-loop-not-stalled",
                   test_main_loop_not_stalled);
  g_test_add_func ("/storage/close/pending-callbacks",
                   test_close_runs_pending_callbacks);
  g_test_add_func ("/storage/close/refuses-new-writes",
                   test_close_refuses_new_writes);
  g_test_add_func ("/storage/close/from-callback", test_close_from_callback);
  g_test_add_func ("/storage/failed-write", test_failed_write);
  g_test_add_func ("/storage/crash", test_crash);
  g_test_add_func ("/storage/file-modes", test_file_modes);
  g_test_add_func ("/storage/archive/known-empty-clear", test_archive_known_empty_clear);
  g_test_add_func ("/storage/cache/model", test_cache_model);
  g_test_add_func ("/storage/cache/failed-write", test_cache_failed_write);
  g_test_add_func ("/storage/backlog/watermarks", test_backlog_watermarks);

  return g_test_run ();
}
