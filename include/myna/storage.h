/* storage.h: the one storage API every module uses.
 *
 * Two shapes:
 *  - key–value, addressed by (host, user, store, key), for rosters, vCards,
 *    private XML, settings.  @user may be "" for host-wide data.
 *  - archives, addressed by (host, user, archive), append-only lists of items
 *    (an id, a timestamp, a peer and a payload) queried by peer, time and id
 *    with paging, for offline messages, message archives, MUC history.
 *
 * Writes are queued and committed in batches on one writer thread; their
 * completion callbacks run later on the main context that opened the
 * storage.  Once a write's callback reports success the write is durable.
 * Key–value reads are synchronous and see every write queued before them
 * (read-your-writes), even those not yet committed.  Archive queries are
 * asynchronous and see every write queued before them.
 *
 * Backends: "sqlite:PATH" (the embedded default: one file, WAL, schema
 * versions with migrations).  A backend is a MynaStorageBackend vtable;
 * others (PostgreSQL) plug in behind the same API. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MYNA_STORAGE_ERROR (myna_storage_error_quark ())
GQuark myna_storage_error_quark (void);

typedef enum {
  MYNA_STORAGE_ERROR_FAILED,
  MYNA_STORAGE_ERROR_BACKEND,     /* unknown backend in the URI */
  MYNA_STORAGE_ERROR_CORRUPT,     /* the database is unreadable */
  MYNA_STORAGE_ERROR_VERSION,     /* schema newer than this build knows */
  MYNA_STORAGE_ERROR_CLOSED,      /* the storage is closing */
  MYNA_STORAGE_ERROR_QUOTA,       /* an archive quota would be exceeded */
} MynaStorageError;

typedef struct _MynaStorage MynaStorage;

/* One archive item.  Strings are owned by the item. */
typedef struct {
  gint64  id;            /* assigned by the storage, increasing per archive */
  gint64  timestamp;     /* microseconds since the epoch (g_get_real_time) */
  char   *with;          /* the peer, usually a bare JID; may be "" */
  char   *data;          /* the payload, usually serialised XML */
} MynaArchiveItem;

void myna_archive_item_free (MynaArchiveItem *item);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaArchiveItem, myna_archive_item_free)

/* A query; zero fields do not filter. */
typedef struct {
  const char *with;      /* only items with this peer */
  gint64      start;     /* timestamp >= start */
  gint64      end;       /* timestamp <= end */
  gint64      after_id;  /* id > after_id */
  gint64      before_id; /* id < before_id; the page is then the last one */
  guint       max;       /* page size; 0 means 100 */
} MynaArchiveQuery;

/* @error is NULL on success. */
typedef void (*MynaStorageDone) (const GError *error, gpointer user_data);
typedef void (*MynaArchiveAppended) (gint64 id, const GError *error,
                                     gpointer user_data);
/* @items holds MynaArchiveItem*, oldest first, borrowed for the call;
 * @complete is TRUE when no further page exists in the query's direction;
 * @total is the count of matching items ignoring paging. */
typedef void (*MynaArchiveResult) (GPtrArray *items, gboolean complete,
                                   guint total, const GError *error,
                                   gpointer user_data);

/* Opens @uri ("sqlite:/path/to/file.db", or a bare path for SQLite),
 * creating or migrating the schema.  Callbacks run on the thread-default
 * main context of the caller.  Returns: (transfer full) (nullable) */
MynaStorage *myna_storage_open (const char *uri, GError **error);
/* Waits until every queued write is committed (their callbacks run), then
 * closes.  NULL-safe. */
void         myna_storage_close (MynaStorage *storage);
/* Blocks until every write queued so far is committed; runs their
 * callbacks.  Returns FALSE with @error when a commit failed. */
gboolean     myna_storage_flush (MynaStorage *storage, GError **error);

/* Runs @done once every write queued before this call has finished
 * (committed or failed), without blocking: callbacks run in the order
 * their operations were queued, so @done runs after theirs.  A module
 * answers a client from @done when the answer must not come before some
 * earlier write is durable, e.g. a read that sees writes still in flight,
 * or writes queued by other modules while a stanza was routed.  @done
 * gets no write's failure (NULL, or CLOSED while closing): give the writes
 * their own callbacks for that.  With nothing queued ahead, @done runs on
 * the next main-loop dispatch. */
void   myna_storage_after_writes (MynaStorage *storage, MynaStorageDone done,
                                  gpointer user_data, GDestroyNotify destroy);

/* Key–value.  @value NULL deletes.  @done may be NULL. */
void   myna_kv_set (MynaStorage *storage, const char *host, const char *user,
                    const char *store, const char *key, const char *value,
                    MynaStorageDone done, gpointer user_data,
                    GDestroyNotify destroy);
/* Returns: (transfer full) (nullable) the value, NULL when absent (with
 * @error unset) or on failure (with @error set). */
char  *myna_kv_get (MynaStorage *storage, const char *host, const char *user,
                    const char *store, const char *key, GError **error);
/* All keys and values of one store.  Returns: (transfer full) a
 * GHashTable of char* → char*, empty when none; NULL with @error. */
GHashTable *myna_kv_get_all (MynaStorage *storage, const char *host,
                             const char *user, const char *store,
                             GError **error);
/* Deletes every key of every store of @user. */
void   myna_kv_delete_user (MynaStorage *storage, const char *host,
                            const char *user, MynaStorageDone done,
                            gpointer user_data, GDestroyNotify destroy);
/* Account removal: deletes everything stored under @user (not ""), every
 * key of every store and every item of every archive, whichever module
 * wrote it, so a name registered again starts empty. */
void   myna_storage_delete_user (MynaStorage *storage, const char *host,
                                 const char *user, MynaStorageDone done,
                                 gpointer user_data, GDestroyNotify destroy);

/* Archives.  @timestamp 0 means now. */
void   myna_archive_append (MynaStorage *storage, const char *host,
                            const char *user, const char *archive,
                            const char *with, gint64 timestamp,
                            const char *data, MynaArchiveAppended done,
                            gpointer user_data, GDestroyNotify destroy);
void   myna_archive_query (MynaStorage *storage, const char *host,
                           const char *user, const char *archive,
                           const MynaArchiveQuery *query,
                           MynaArchiveResult done, gpointer user_data,
                           GDestroyNotify destroy);
/* Options of myna_archive_query_full(). */
typedef enum {
  MYNA_ARCHIVE_QUERY_DEFAULT  = 0,
  /* @total is not counted (the callback gets 0): counting reads every
   * matching index entry, a page only its own items, so a page of a
   * large archive (a message archive) costs the same wherever it is. */
  MYNA_ARCHIVE_QUERY_NO_TOTAL = 1 << 0,
  /* With before_id: the first page of the items before it (oldest
   * first, @complete when none is left before before_id), not the last
   * one.  Without before_id it changes nothing. */
  MYNA_ARCHIVE_QUERY_FORWARD  = 1 << 1,
} MynaArchiveQueryFlags;
/* myna_archive_query() with @flags. */
void   myna_archive_query_full (MynaStorage *storage, const char *host,
                                const char *user, const char *archive,
                                const MynaArchiveQuery *query,
                                MynaArchiveQueryFlags flags,
                                MynaArchiveResult done, gpointer user_data,
                                GDestroyNotify destroy);
/* Deletes items with id <= @up_to_id (0: all) of one user's archive. */
void   myna_archive_delete (MynaStorage *storage, const char *host,
                            const char *user, const char *archive,
                            gint64 up_to_id, MynaStorageDone done,
                            gpointer user_data, GDestroyNotify destroy);
/* Deletes items older than @before (microseconds) across all users. */
void   myna_archive_expire (MynaStorage *storage, const char *archive,
                            gint64 before, MynaStorageDone done,
                            gpointer user_data, GDestroyNotify destroy);

/* The read cache: committed key–value state of the most recently read
 * (host, user, store) triples, kept in step with every write made through
 * this API, so repeated logins' account, roster and settings reads need
 * not reach the database.  @entries bounds the triples held; 0 (the
 * default) turns the cache off: it costs memory, and when the users who
 * log in outnumber the entries it only churns the heap.  Archives known
 * to be empty are remembered either way. */
#define MYNA_STORAGE_CACHE_DEFAULT 0
void   myna_storage_set_cache_size (MynaStorage *storage, guint entries);
void   myna_storage_get_cache_stats (MynaStorage *storage, guint *entries,
                                     guint64 *hits, guint64 *misses);

/* Counters for metrics and tests. */
typedef struct {
  guint64 writes_queued;
  guint64 writes_committed;
  guint64 batches;          /* transactions committed */
  guint   pending;          /* writes queued, not yet committed */
} MynaStorageStats;
void   myna_storage_get_stats (MynaStorage *storage, MynaStorageStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaStorage, myna_storage_close)

G_END_DECLS
