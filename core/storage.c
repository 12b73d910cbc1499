/* storage.c: the storage API of include/myna/storage.h in front of a
 * backend (storage-backend.h).
 *
 * Writes and archive queries become operations ("ops") queued, under one
 * mutex, to a single writer thread.  The writer takes everything queued,
 * runs it in one transaction (a batch), commits, and moves the ops to a
 * "done" queue.  At most one idle source on the opener's main context is
 * pending at a time, shared by every batch finished meanwhile; it runs the
 * callbacks, DISPATCH_CHUNK per dispatch so the main loop stays responsive.
 * flush and close run them directly.
 *
 * Failures: when one op of a batch fails, the batch is rolled back and
 * retried op by op, each in its own transaction, so a bad write fails
 * alone; when BEGIN or COMMIT fails, every op of the batch gets the error.
 * flush reports the first failure since the previous flush.  Ops queued
 * while close runs complete with MYNA_STORAGE_ERROR_CLOSED before close
 * returns.
 *
 * Read-your-writes: until a key–value op's callback has run, the main
 * thread keeps its effect in an overlay (pending values per store, pending
 * user deletions), both stamped with the op's sequence number; reads
 * consult the overlay before the backend's reader connection.  An entry
 * leaves the overlay when the op that wrote it completes, after its commit
 * (or failure), so a read never sees a gap.
 *
 * Archive queries: total counts the items matching with/start/end,
 * ignoring after_id, before_id and max; before_id = G_MAXINT64 asks for
 * the last page.
 *
 * Guard: the server may set a MynaStorageGuard (storage-guard.h); an op
 * with a callback then holds whoever queued it until the callback ran.
 *
 * Backlog: writes queued and not yet committed (stats.pending, and their
 * approximate bytes in pending_bytes) are watched against the
 * limits of myna_storage_set_backlog_limits.  The op that takes the
 * backlog over the high watermark reports it from submit (owner thread);
 * the writer's dispatch, which runs on the owner's main context after
 * every batch, reports it back under the low watermark.
 *
 * Threads: the API is for the thread that opened the storage (the overlay
 * and the reader connection are unlocked); myna_storage_get_stats may be
 * called from any thread.  The writer connection is opened and migrated in
 * myna_storage_open, then belongs to the writer thread, which closes it. */
#include "storage-backend.h"
#include "storage-guard.h"

#include <string.h>
#include <sys/mman.h>

/* Callbacks run per dispatch of the idle source before it yields. */
#define DISPATCH_CHUNK 1024
/* A query without max gets this page size. */
#define DEFAULT_PAGE 100

G_DEFINE_QUARK (myna-storage-error-quark, myna_storage_error)

static const MynaStorageBackend *const backends[] = {
  &myna_storage_backend_sqlite,
};

typedef enum {
  OP_KV_SET,
  OP_KV_DELETE_USER,
  OP_DELETE_USER,      /* keys and archives */
  OP_ARCHIVE_APPEND,
  OP_ARCHIVE_DELETE,
  OP_ARCHIVE_EXPIRE,
  OP_ARCHIVE_QUERY,
  OP_BARRIER,          /* myna_storage_after_writes: runs nothing */
} OpKind;

/* One queued operation.  The request fields are set on the main thread
 * before queueing and only read afterwards; the outcome fields are written
 * by the writer thread and read on the main thread after the handover
 * through the done queue. */
typedef struct {
  OpKind   kind;
  guint64  seq;        /* order of queueing; 0 when refused while closing */
  char    *host;
  char    *user;
  char    *name;       /* the store or the archive */
  char    *key;
  char    *value;      /* kv value (NULL deletes) or archive data */
  char    *with;
  gint64   number;     /* timestamp, up_to_id, or expiry limit */
  MynaArchiveQuery query;  /* .with points into @with */
  MynaArchiveQueryFlags query_flags;
  gboolean known_empty;    /* a query answered without the backend */

  MynaStorageDone     done;
  MynaArchiveAppended appended;
  MynaArchiveResult   result;
  gpointer            user_data;
  GDestroyNotify      destroy;
  gpointer            held;      /* the guard's hold on who queued it */
  gsize               bytes;     /* counted in pending_bytes (writes) */

  GError    *error;
  gint64     id;
  GPtrArray *items;
  gboolean   complete;
  guint      total;
} Op;

/* A pending key–value write in the overlay. */
typedef struct {
  char    *value;      /* NULL: a pending delete */
  guint64  seq;
} Pending;

struct _MynaStorage {
  /* A module's view (myna_storage_new_view): only these two are set, and
   * every call goes to @base with store and archive names scoped. */
  MynaStorage              *base;
  char                     *scope;      /* "M/": the prefix of the view's names */
  int                       ref_count;  /* owner thread only */
  const MynaStorageBackend *backend;
  char                     *location;
  GMainContext             *context;
  GThread                  *owner;
  GThread                  *writer;
  const MynaStorageGuard   *guard;        /* owner thread only */
  MynaStorageConn          *writer_conn;  /* writer thread only */
  MynaStorageConn          *reader;       /* owner thread only */

  /* Owner thread only. */
  GHashTable *kv_overlay;    /* store key → (key → Pending) */
  GHashTable *user_deletes;  /* user key → guint64 seq */
  gboolean    closing;
  /* The backlog watch (myna_storage_set_backlog_limits). */
  guint                  backlog_high;        /* writes; 0: no limit */
  guint64                backlog_high_bytes;  /* 0: no limit */
  MynaStorageBacklogFunc backlog_func;
  gpointer               backlog_data;
  gboolean               backlog_over;        /* reported over, not yet back */
  /* Callbacks around each dispatched chunk (myna_storage_set_dispatch_batch). */
  gboolean             (*batch_begin) (gpointer);
  void                 (*batch_end) (gpointer);
  gpointer               batch_data;
  /* Read cache of committed key–value state, least recently used first
   * evicted: store key → CacheEntry. */
  GHashTable *cache;
  GQueue      cache_lru;     /* CacheEntry, most recent at the head */
  guint       cache_max;     /* entries; 0 disables the cache */
  guint64     cache_hits;
  guint64     cache_misses;
  /* Archives known to hold nothing: store key → ArchiveState.  A login
   * asks for the user's offline messages; most users have none, and the
   * answer then needs neither the writer thread nor the database. */
  GHashTable *archives;             /* store key -> ArchiveState */
  struct ArchiveBlock *archive_blocks;  /* where the ArchiveStates live */
  guint64     archives_cleared_seq;  /* queries up to it may not mark */

  GMutex      lock;          /* guards everything below */
  GCond       work_cond;     /* the writer waits for ops */
  GCond       done_cond;     /* flush waits for batches */
  GQueue      queue;         /* ops for the writer */
  GQueue      done;          /* ops whose callbacks are due */
  gboolean    stopping;
  gboolean    writer_held;   /* myna_storage_hold_writer_for_testing */
  guint64     last_seq;      /* of the last op queued */
  guint64     finished_seq;  /* of the last op the writer finished */
  GSource    *dispatch_source;
  GError     *flush_error;   /* first failure since the last flush */
  MynaStorageStats stats;
  guint64          pending_bytes; /* the approximate size of stats.pending */
};

#define IS_OWNER(self) (g_thread_self () == (self)->owner)

/* Resolves a view to the storage behind it and scopes *@name (a store or
 * an archive, may be NULL) into *@scoped; a storage resolves to itself. */
static MynaStorage *
view_resolve (MynaStorage *storage, const char **name, char **scoped)
{
  if (storage == NULL || storage->base == NULL)
    return storage;
  if (name != NULL && *name != NULL)
    {
      *scoped = g_strconcat (storage->scope, *name, NULL);
      *name = *scoped;
    }
  return storage->base;
}

/* Items. */

void
myna_archive_item_free (MynaArchiveItem *item)
{
  if (item == NULL)
    return;
  g_free (item->with);
  g_free (item->data);
  g_free (item);
}

/* Ops. */

static Op *
op_new (OpKind kind, gpointer user_data, GDestroyNotify destroy)
{
  Op *op = g_new0 (Op, 1);

  op->kind = kind;
  op->user_data = user_data;
  op->destroy = destroy;
  return op;
}

static void
op_free (Op *op)
{
  g_free (op->host);
  g_free (op->user);
  g_free (op->name);
  g_free (op->key);
  g_free (op->value);
  g_free (op->with);
  g_clear_error (&op->error);
  g_clear_pointer (&op->items, g_ptr_array_unref);
  g_free (op);
}

static gboolean
op_is_write (const Op *op)
{
  return op->kind != OP_ARCHIVE_QUERY && op->kind != OP_BARRIER;
}

/* Whether @op deletes every key of a user. */
static gboolean
op_deletes_user (const Op *op)
{
  return op->kind == OP_KV_DELETE_USER || op->kind == OP_DELETE_USER;
}

static void
op_clear_outcome (Op *op)
{
  g_clear_error (&op->error);
  g_clear_pointer (&op->items, g_ptr_array_unref);
  op->id = 0;
  op->complete = FALSE;
  op->total = 0;
}

/* Runs @op on the writer connection (writer thread). */
static gboolean
op_execute (MynaStorage *self, Op *op, GError **error)
{
  const MynaStorageBackend *be = self->backend;
  MynaStorageConn *conn = self->writer_conn;

  switch (op->kind)
    {
    case OP_KV_SET:
      return be->kv_put (conn, op->host, op->user, op->name, op->key,
                         op->value, error);
    case OP_KV_DELETE_USER:
      return be->kv_delete_user (conn, op->host, op->user, error);
    case OP_DELETE_USER:
      return be->kv_delete_user (conn, op->host, op->user, error)
             && be->archive_delete_user (conn, op->host, op->user, error);
    case OP_ARCHIVE_APPEND:
      return be->archive_append (conn, op->host, op->user, op->name,
                                 op->with, op->number, op->value, &op->id,
                                 error);
    case OP_ARCHIVE_DELETE:
      return be->archive_delete (conn, op->host, op->user, op->name,
                                 op->number, error);
    case OP_ARCHIVE_EXPIRE:
      return be->archive_expire (conn, op->name, op->number, error);
    case OP_BARRIER:
      return TRUE;
    case OP_ARCHIVE_QUERY:
      op->items = g_ptr_array_new_with_free_func (
        (GDestroyNotify) myna_archive_item_free);
      if (op->known_empty)
        {
          op->complete = TRUE;
          return TRUE;
        }
      return be->archive_query (conn, op->host, op->user, op->name,
                                &op->query, op->query_flags, op->items,
                                &op->complete,
                                &op->total, error);
    default:
      g_assert_not_reached ();
    }
}

/* Whether the op calls back into who queued it. */
static gboolean
op_has_callback (const Op *op)
{
  return op->done != NULL || op->appended != NULL || op->result != NULL
         || op->destroy != NULL;
}

/* Runs the callback and the destroy notify of a finished op (owner
 * thread), then frees it. */
static void
op_complete (MynaStorage *self, Op *op)
{
  const MynaStorageGuard *guard = op_has_callback (op) ? self->guard : NULL;
  gpointer saved = guard != NULL ? guard->enter (op->held) : NULL;

  switch (op->kind)
    {
    case OP_ARCHIVE_APPEND:
      if (op->appended != NULL)
        op->appended (op->error == NULL ? op->id : 0, op->error,
                      op->user_data);
      break;
    case OP_ARCHIVE_QUERY:
      if (op->items == NULL || op->error != NULL)
        {
          /* A failed query reports an empty page. */
          g_clear_pointer (&op->items, g_ptr_array_unref);
          op->items = g_ptr_array_new ();
          op->complete = FALSE;
          op->total = 0;
        }
      if (op->result != NULL)
        op->result (op->items, op->complete, op->total, op->error,
                    op->user_data);
      break;
    default:
      if (op->done != NULL)
        op->done (op->error, op->user_data);
      break;
    }
  if (op->destroy != NULL)
    op->destroy (op->user_data);
  if (guard != NULL)
    {
      guard->leave (saved);
      guard->release (op->held);
    }
  op_free (op);
}

/* The read-your-writes overlay (owner thread). */

/* Length prefixes keep ("a", "bc") and ("ab", "c") apart. */
static char *
user_key (const char *host, const char *user)
{
  return g_strdup_printf ("%zu:%s%zu:%s", strlen (host), host,
                          strlen (user), user);
}

/* Appends "LEN:TEXT" to @key. */
static void
key_append (GString *key, const char *text)
{
  gsize len = strlen (text);
  char digits[24];
  int n = 0;

  do
    digits[n++] = (char) ('0' + len % 10);
  while ((len /= 10) > 0 && n < (int) sizeof digits);
  while (n > 0)
    g_string_append_c (key, digits[--n]);
  g_string_append_c (key, ':');
  g_string_append (key, text);
}

/* user_key's format with the store, built without printf: every archive
 * append makes one on the main thread. */
static char *
store_key (const char *host, const char *user, const char *store)
{
  GString *key = g_string_sized_new (64);

  key_append (key, host);
  key_append (key, user);
  key_append (key, store);
  return g_string_free (key, FALSE);
}

static void
pending_free (Pending *pending)
{
  g_free (pending->value);
  g_free (pending);
}

static GHashTable *
overlay_store (MynaStorage *self, const char *host, const char *user,
               const char *store)
{
  g_autofree char *skey = NULL;

  if (g_hash_table_size (self->kv_overlay) == 0)
    return NULL;
  skey = store_key (host, user, store);
  return g_hash_table_lookup (self->kv_overlay, skey);
}

/* The seq of the user's pending deletion, 0 when none. */
static guint64
overlay_user_deleted (MynaStorage *self, const char *host, const char *user)
{
  g_autofree char *ukey = NULL;
  guint64 *seq;

  if (g_hash_table_size (self->user_deletes) == 0)
    return 0;
  ukey = user_key (host, user);
  seq = g_hash_table_lookup (self->user_deletes, ukey);
  return seq != NULL ? *seq : 0;
}

static void
overlay_add (MynaStorage *self, const Op *op)
{
  if (op->kind == OP_KV_SET)
    {
      g_autofree char *skey = store_key (op->host, op->user, op->name);
      GHashTable *store = g_hash_table_lookup (self->kv_overlay, skey);
      Pending *pending = g_new0 (Pending, 1);

      if (store == NULL)
        {
          store = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) pending_free);
          g_hash_table_insert (self->kv_overlay, g_steal_pointer (&skey),
                               store);
        }
      pending->value = g_strdup (op->value);
      pending->seq = op->seq;
      g_hash_table_insert (store, g_strdup (op->key), pending);
    }
  else if (op_deletes_user (op))
    g_hash_table_insert (self->user_deletes, user_key (op->host, op->user),
                         g_memdup2 (&op->seq, sizeof op->seq));
}

/* Drops what @op put in the overlay unless a later op replaced it. */
static void
overlay_forget (MynaStorage *self, const Op *op)
{
  if (op->seq == 0)
    return;
  if (op->kind == OP_KV_SET)
    {
      g_autofree char *skey = store_key (op->host, op->user, op->name);
      GHashTable *store = g_hash_table_lookup (self->kv_overlay, skey);
      Pending *pending = store != NULL ? g_hash_table_lookup (store, op->key)
                                       : NULL;

      if (pending == NULL || pending->seq != op->seq)
        return;
      g_hash_table_remove (store, op->key);
      if (g_hash_table_size (store) == 0)
        g_hash_table_remove (self->kv_overlay, skey);
    }
  else if (op_deletes_user (op))
    {
      g_autofree char *ukey = user_key (op->host, op->user);
      guint64 *seq = g_hash_table_lookup (self->user_deletes, ukey);

      if (seq != NULL && *seq == op->seq)
        g_hash_table_remove (self->user_deletes, ukey);
    }
}

/* The read cache (owner thread).
 *
 * It holds what the reader connection returned (committed state) per
 * (host, user, store): single keys, with NULL for a key known absent, or
 * the whole store once kv_get_all has read it.  The overlay still masks
 * it for writes in flight; when a write op completes, its effect is
 * applied here before the overlay forgets it, so the two never disagree.
 * A failed write drops the entries it touched.  Nothing else writes the
 * key–value tables while the storage is open: one mynad owns its
 * database. */

typedef struct {
  char       *skey;
  GHashTable *values;     /* key → value, NULL value: known absent */
  gboolean    complete;   /* every key of the store is in values */
  GList       link;       /* in cache_lru */
} CacheEntry;

static void
cache_entry_free (CacheEntry *entry)
{
  g_free (entry->skey);
  g_hash_table_unref (entry->values);
  g_free (entry);
}

static void
cache_remove (MynaStorage *self, CacheEntry *entry)
{
  g_queue_unlink (&self->cache_lru, &entry->link);
  g_hash_table_remove (self->cache, entry->skey);  /* frees entry */
}

static CacheEntry *
cache_lookup (MynaStorage *self, const char *skey)
{
  CacheEntry *entry;

  if (self->cache_max == 0)
    return NULL;
  entry = g_hash_table_lookup (self->cache, skey);
  if (entry != NULL && self->cache_lru.head != &entry->link)
    {
      g_queue_unlink (&self->cache_lru, &entry->link);
      g_queue_push_head_link (&self->cache_lru, &entry->link);
    }
  return entry;
}

/* The entry for @skey, made (and the oldest evicted) when absent.  NULL
 * when the cache is off. */
static CacheEntry *
cache_ensure (MynaStorage *self, const char *skey)
{
  CacheEntry *entry = cache_lookup (self, skey);

  if (entry != NULL || self->cache_max == 0)
    return entry;
  while (g_hash_table_size (self->cache) >= self->cache_max)
    cache_remove (self, self->cache_lru.tail->data);
  entry = g_new0 (CacheEntry, 1);
  entry->skey = g_strdup (skey);
  entry->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         g_free);
  entry->link.data = entry;
  g_hash_table_insert (self->cache, entry->skey, entry);
  g_queue_push_head_link (&self->cache_lru, &entry->link);
  return entry;
}

static void
cache_forget_user (MynaStorage *self, const char *host, const char *user)
{
  g_autofree char *prefix = user_key (host, user);
  GList *link = self->cache_lru.head;

  while (link != NULL)
    {
      CacheEntry *entry = link->data;

      link = link->next;
      if (g_str_has_prefix (entry->skey, prefix))
        cache_remove (self, entry);
    }
}

/* Applies a finished write op to the cache, before overlay_forget. */
static void
cache_apply (MynaStorage *self, const Op *op)
{
  if (self->cache_max == 0 || g_hash_table_size (self->cache) == 0)
    return;
  if (op->kind == OP_KV_SET)
    {
      g_autofree char *skey = store_key (op->host, op->user, op->name);
      CacheEntry *entry = g_hash_table_lookup (self->cache, skey);

      if (entry == NULL)
        return;
      if (op->error != NULL)
        cache_remove (self, entry);
      else if (op->value != NULL || !entry->complete)
        g_hash_table_insert (entry->values, g_strdup (op->key),
                             g_strdup (op->value));
      else
        g_hash_table_remove (entry->values, op->key);
    }
  else if (op_deletes_user (op))
    cache_forget_user (self, op->host, op->user);
}

/* Archives known to be empty (owner thread).  An append marks its
 * archive non-empty when queued; a query that found no item at all marks
 * it empty when it completes, unless an append was queued after the query
 * (or the table was cleared since).  About 100 bytes an archive; cleared
 * whole when full.
 *
 * Entries never leave one by one, so they live in blocks mapped apart
 * from the malloc heap, with their keys: one small allocation per user
 * spread over the heap kept glibc from trimming it after a wave of
 * sessions left (RSS 48 MB against 28 MB without the set). */
#define ARCHIVES_KNOWN_MAX 65536
#define ARCHIVE_BLOCK_SIZE (256 * 1024)

typedef struct ArchiveBlock {
  struct ArchiveBlock *next;
  gsize                used;
  guint64              data[];
} ArchiveBlock;

typedef struct {
  guint64  append_seq;  /* of the last append queued */
  gboolean empty;
  char     key[];
} ArchiveState;

static void
archive_blocks_free (MynaStorage *self)
{
  while (self->archive_blocks != NULL)
    {
      ArchiveBlock *b = self->archive_blocks;

      self->archive_blocks = b->next;
      munmap (b, ARCHIVE_BLOCK_SIZE);
    }
}

/* NULL when no memory could be mapped: the archive is then not known,
 * which only costs its next query a trip to the backend. */
static ArchiveState *
archive_state_alloc (MynaStorage *self, const char *skey)
{
  gsize len = strlen (skey) + 1;
  gsize need = (sizeof (ArchiveState) + len + 7) & ~(gsize) 7;
  gsize room = ARCHIVE_BLOCK_SIZE - sizeof (ArchiveBlock);
  ArchiveBlock *b = self->archive_blocks;
  ArchiveState *state;

  if (need > room)
    return NULL;
  if (b == NULL || b->used + need > room)
    {
      void *m = mmap (NULL, ARCHIVE_BLOCK_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

      if (m == MAP_FAILED)
        return NULL;
      b = m;
      b->next = self->archive_blocks;
      b->used = 0;
      self->archive_blocks = b;
    }
  state = (ArchiveState *) ((char *) b->data + b->used);
  b->used += need;
  state->append_seq = 0;
  state->empty = FALSE;
  memcpy (state->key, skey, len);
  return state;
}

static ArchiveState *
archive_state_ensure (MynaStorage *self, const char *skey)
{
  ArchiveState *state = g_hash_table_lookup (self->archives, skey);

  if (state != NULL)
    return state;
  if (g_hash_table_size (self->archives) >= ARCHIVES_KNOWN_MAX)
    {
      g_hash_table_remove_all (self->archives);
      archive_blocks_free (self);
      self->archives_cleared_seq = self->last_seq;
    }
  state = archive_state_alloc (self, skey);
  if (state != NULL)
    g_hash_table_insert (self->archives, state->key, state);
  return state;
}

static gboolean
archive_known_empty (MynaStorage *self, const char *skey)
{
  ArchiveState *state;

  if (g_hash_table_size (self->archives) == 0)
    return FALSE;
  state = g_hash_table_lookup (self->archives, skey);
  return state != NULL && state->empty;
}

static void
archive_note_append (MynaStorage *self, const Op *op)
{
  g_autofree char *skey = NULL;
  ArchiveState *state;

  if (op->seq == 0)
    return;
  skey = store_key (op->host, op->user, op->name);
  state = archive_state_ensure (self, skey);
  if (state == NULL)
    return;  /* not in the set: not known to be empty */
  state->empty = FALSE;
  state->append_seq = op->seq;
}

/* A finished query without filters that matched nothing. */
static void
archive_note_query (MynaStorage *self, const Op *op)
{
  g_autofree char *skey = NULL;
  ArchiveState *state;

  if (op->known_empty || op->error != NULL
      || op->total != 0 || op->seq <= self->archives_cleared_seq
      || (op->with != NULL && *op->with != '\0')
      || op->query.start != 0 || op->query.end != 0)
    return;
  /* Not counted: only a page of everything that found nothing. */
  if ((op->query_flags & MYNA_ARCHIVE_QUERY_NO_TOTAL)
      && (op->items == NULL || op->items->len != 0 || op->query.after_id != 0
          || (op->query.before_id != 0 && op->query.before_id != G_MAXINT64)))
    return;
  skey = store_key (op->host, op->user, op->name);
  state = g_hash_table_lookup (self->archives, skey);
  if (state != NULL && state->append_seq > op->seq)
    return;
  state = archive_state_ensure (self, skey);
  if (state != NULL)
    state->empty = TRUE;
}

/* Lifetime. */

static void
storage_free (MynaStorage *self)
{
  g_assert (g_queue_is_empty (&self->queue));
  g_assert (g_queue_is_empty (&self->done));
  g_hash_table_unref (self->kv_overlay);
  g_hash_table_unref (self->user_deletes);
  /* The LRU links live in the entries: freeing the table frees them. */
  g_hash_table_unref (self->cache);
  g_hash_table_unref (self->archives);
  archive_blocks_free (self);
  g_clear_error (&self->flush_error);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->work_cond);
  g_cond_clear (&self->done_cond);
  g_free (self->location);
  g_free (self);
}

static MynaStorage *
storage_ref (MynaStorage *self)
{
  self->ref_count++;
  return self;
}

static void
storage_unref (MynaStorage *self)
{
  if (--self->ref_count == 0)
    storage_free (self);
}

/* Callback dispatch (owner thread). */

static Op *
done_pop (MynaStorage *self)
{
  Op *op;

  g_mutex_lock (&self->lock);
  op = g_queue_pop_head (&self->done);
  g_mutex_unlock (&self->lock);
  return op;
}

/* Completes up to @limit finished ops.  A callback may flush or close the
 * storage; ops are popped one at a time so nested dispatches share the
 * queue, and the reference keeps @self alive until the loop ends. */
static void
dispatch_done (MynaStorage *self, guint limit)
{
  Op *op;

  storage_ref (self);
  for (guint i = 0; i < limit && (op = done_pop (self)) != NULL; i++)
    {
      cache_apply (self, op);
      if (op->kind == OP_ARCHIVE_QUERY)
        archive_note_query (self, op);
      overlay_forget (self, op);
      op_complete (self, op);
    }
  storage_unref (self);
}

/* Whether the backlog is over the high watermark (@high) or, with @high
 * FALSE, still over the low one (half of it).  Called with the lock held. */
static gboolean
backlog_above_locked (MynaStorage *self, gboolean high)
{
  guint items = high ? self->backlog_high : self->backlog_high / 2;
  guint64 bytes = high ? self->backlog_high_bytes : self->backlog_high_bytes / 2;

  return (self->backlog_high > 0 && self->stats.pending >= MAX (items, 1))
         || (self->backlog_high_bytes > 0 && self->pending_bytes >= MAX (bytes, 1));
}

/* Reports the backlog back under the low watermark once it is (owner
 * thread). */
static void
backlog_check_low (MynaStorage *self)
{
  gboolean above;
  guint pending;
  guint64 bytes;

  if (!self->backlog_over)
    return;
  g_mutex_lock (&self->lock);
  above = backlog_above_locked (self, FALSE);
  pending = self->stats.pending;
  bytes = self->pending_bytes;
  g_mutex_unlock (&self->lock);
  if (above)
    return;
  self->backlog_over = FALSE;
  if (self->backlog_func != NULL)
    self->backlog_func (self, FALSE, pending, bytes, self->backlog_data);
}

/* Reports the backlog over the high watermark once it is (owner thread,
 * after queueing a write). */
static void
backlog_check_high (MynaStorage *self)
{
  gboolean above;
  guint pending;
  guint64 bytes;

  if (self->backlog_over || (self->backlog_high == 0 && self->backlog_high_bytes == 0))
    return;
  g_mutex_lock (&self->lock);
  above = backlog_above_locked (self, TRUE);
  pending = self->stats.pending;
  bytes = self->pending_bytes;
  g_mutex_unlock (&self->lock);
  if (!above)
    return;
  self->backlog_over = TRUE;
  if (self->backlog_func != NULL)
    self->backlog_func (self, TRUE, pending, bytes, self->backlog_data);
}

void
myna_storage_set_dispatch_batch (MynaStorage *storage, gboolean (*begin) (gpointer),
                                 void (*end) (gpointer), gpointer data)
{
  g_return_if_fail (storage != NULL && storage->base == NULL);
  storage->batch_begin = begin;
  storage->batch_end = end;
  storage->batch_data = data;
}

static gboolean
dispatch_source_cb (gpointer data)
{
  MynaStorage *self = storage_ref (data);
  gboolean more;
  gboolean batch = self->batch_begin != NULL && self->batch_begin (self->batch_data);

  dispatch_done (self, DISPATCH_CHUNK);
  if (batch)
    self->batch_end (self->batch_data);
  backlog_check_low (self);
  g_mutex_lock (&self->lock);
  /* close may have destroyed this source (from a callback). */
  more = self->dispatch_source != NULL && !g_queue_is_empty (&self->done);
  if (!more)
    g_clear_pointer (&self->dispatch_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  storage_unref (self);
  return more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Called with the lock held, from the writer thread. */
static void
schedule_dispatch_locked (MynaStorage *self)
{
  GSource *source;

  if (self->dispatch_source != NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, dispatch_source_cb, self, NULL);
  g_source_set_static_name (source, "myna-storage-dispatch");
  g_source_attach (source, self->context);
  self->dispatch_source = source;
}

/* The writer thread. */

typedef struct {
  guint writes;          /* write ops in the batch */
  guint64 bytes;         /* their bytes counted in pending_bytes */
  guint committed;       /* of which committed */
  guint transactions;    /* committed transactions holding writes */
  const GError *first_error;
} BatchOutcome;

static gboolean
batch_has_writes (GQueue *batch)
{
  for (GList *l = batch->head; l != NULL; l = l->next)
    if (op_is_write (l->data))
      return TRUE;
  return FALSE;
}

typedef enum {
  BATCH_COMMITTED,
  BATCH_OP_FAILED,   /* one op failed: the others may well succeed */
  BATCH_FAILED,      /* begin or commit failed: nothing would */
} BatchStatus;

/* The whole batch in one transaction. */
static BatchStatus
run_batch_at_once (MynaStorage *self, GQueue *batch, GError **error)
{
  const MynaStorageBackend *be = self->backend;

  if (!be->begin (self->writer_conn, error))
    return BATCH_FAILED;
  for (GList *l = batch->head; l != NULL; l = l->next)
    if (!op_execute (self, l->data, error))
      {
        be->rollback (self->writer_conn);
        return BATCH_OP_FAILED;
      }
  if (!be->commit (self->writer_conn, error))
    {
      be->rollback (self->writer_conn);
      return BATCH_FAILED;
    }
  return BATCH_COMMITTED;
}

/* One op in its own transaction; its error goes to the op. */
static gboolean
run_op_alone (MynaStorage *self, Op *op)
{
  const MynaStorageBackend *be = self->backend;

  op_clear_outcome (op);
  if (be->begin (self->writer_conn, &op->error)
      && op_execute (self, op, &op->error)
      && be->commit (self->writer_conn, &op->error))
    return TRUE;
  be->rollback (self->writer_conn);
  return FALSE;
}

/* Retries a batch op by op so one bad write fails alone. */
static guint
run_one_by_one (MynaStorage *self, GQueue *batch, BatchOutcome *outcome)
{
  guint failed = 0;

  for (GList *l = batch->head; l != NULL; l = l->next)
    {
      Op *op = l->data;

      if (run_op_alone (self, op))
        {
          outcome->committed += op_is_write (op);
          outcome->transactions += op_is_write (op);
          continue;
        }
      failed++;
      if (outcome->first_error == NULL)
        outcome->first_error = op->error;
    }
  return failed;
}

static void
fail_all (GQueue *batch, const GError *error, BatchOutcome *outcome)
{
  for (GList *l = batch->head; l != NULL; l = l->next)
    {
      Op *op = l->data;

      op_clear_outcome (op);
      op->error = g_error_copy (error);
    }
  outcome->first_error = ((Op *) batch->head->data)->error;
}

static void
run_batch (MynaStorage *self, GQueue *batch, BatchOutcome *outcome)
{
  g_autoptr (GError) error = NULL;
  guint failed;

  for (GList *l = batch->head; l != NULL; l = l->next)
    {
      const Op *op = l->data;

      outcome->writes += op_is_write (op);
      outcome->bytes += op->bytes;
    }
  switch (run_batch_at_once (self, batch, &error))
    {
    case BATCH_COMMITTED:
      outcome->committed = outcome->writes;
      outcome->transactions = batch_has_writes (batch);
      break;
    case BATCH_OP_FAILED:
      failed = run_one_by_one (self, batch, outcome);
      g_warning ("storage %s: a batch of %u operations failed (%s); "
                 "retried one by one: %u failed", self->location,
                 batch->length, error->message, failed);
      break;
    case BATCH_FAILED:
      fail_all (batch, error, outcome);
      g_warning ("storage %s: a batch of %u operations failed: %s",
                 self->location, batch->length, error->message);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Appends every op of @batch to the done queue and empties @batch. */
static void
queue_append_all (GQueue *queue, GQueue *batch)
{
  if (batch->head == NULL)
    return;
  if (queue->tail != NULL)
    {
      queue->tail->next = batch->head;
      batch->head->prev = queue->tail;
    }
  else
    queue->head = batch->head;
  queue->tail = batch->tail;
  queue->length += batch->length;
  g_queue_init (batch);
}

static void
finish_batch (MynaStorage *self, GQueue *batch, const BatchOutcome *outcome)
{
  Op *last = g_queue_peek_tail (batch);

  g_mutex_lock (&self->lock);
  self->stats.batches += outcome->transactions;
  self->stats.writes_committed += outcome->committed;
  self->stats.pending -= outcome->writes;
  self->pending_bytes -= outcome->bytes;
  if (outcome->first_error != NULL && self->flush_error == NULL)
    self->flush_error = g_error_copy (outcome->first_error);
  self->finished_seq = last->seq;
  queue_append_all (&self->done, batch);
  schedule_dispatch_locked (self);
  g_cond_broadcast (&self->done_cond);
  g_mutex_unlock (&self->lock);
}

static gpointer
writer_thread (gpointer data)
{
  MynaStorage *self = data;

  for (;;)
    {
      GQueue batch;
      BatchOutcome outcome = { 0 };
      gint64 started;

      g_mutex_lock (&self->lock);
      while ((g_queue_is_empty (&self->queue) || self->writer_held) && !self->stopping)
        g_cond_wait (&self->work_cond, &self->lock);
      batch = self->queue;
      g_queue_init (&self->queue);
      g_mutex_unlock (&self->lock);
      if (batch.length == 0)
        break;

      started = g_get_monotonic_time ();
      run_batch (self, &batch, &outcome);
      g_debug ("storage %s: batch of %u operations in %" G_GINT64_FORMAT
               " us", self->location, batch.length,
               g_get_monotonic_time () - started);
      finish_batch (self, &batch, &outcome);
    }
  g_clear_pointer (&self->writer_conn, self->backend->close);
  return NULL;
}

/* Queueing (owner thread). */

/* Refuses @op while closing: it completes with CLOSED before close
 * returns. */
static void
refuse (MynaStorage *self, Op *op)
{
  g_set_error (&op->error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_CLOSED,
               "storage %s is closing", self->location);
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->done, op);
  g_mutex_unlock (&self->lock);
}

/* What @op holds in memory until it is committed, roughly. */
static gsize
op_size (const Op *op)
{
  gsize size = sizeof (Op) + 2 * sizeof (GList);
  const char *strings[] = { op->host, op->user, op->name, op->key, op->value, op->with };

  for (guint i = 0; i < G_N_ELEMENTS (strings); i++)
    if (strings[i] != NULL)
      size += strlen (strings[i]) + 1;
  return size;
}

static void
submit (MynaStorage *self, Op *op)
{
  if (self->guard != NULL && op_has_callback (op))
    op->held = self->guard->hold ();
  if (self->closing)
    {
      refuse (self, op);
      return;
    }
  g_mutex_lock (&self->lock);
  op->seq = ++self->last_seq;
  if ((op->known_empty || op->kind == OP_BARRIER) && g_queue_is_empty (&self->queue)
      && self->finished_seq == op->seq - 1)
    {
      /* Nothing ahead of it: complete it here, in order. */
      op_execute (self, op, NULL);
      self->finished_seq = op->seq;
      g_queue_push_tail (&self->done, op);
      schedule_dispatch_locked (self);
      g_mutex_unlock (&self->lock);
      return;
    }
  if (op_is_write (op))
    {
      op->bytes = op_size (op);
      self->stats.writes_queued++;
      self->stats.pending++;
      self->pending_bytes += op->bytes;
    }
  /* The writer only waits on an empty queue. */
  if (g_queue_is_empty (&self->queue))
    g_cond_signal (&self->work_cond);
  g_queue_push_tail (&self->queue, op);
  g_mutex_unlock (&self->lock);
  /* Safe after the handover: the op completes on this thread only. */
  overlay_add (self, op);
  if (op_is_write (op))
    backlog_check_high (self);
}

/* Opening and closing. */

/* A scheme is at least two characters ("C:" is a drive, not a scheme). */
static gboolean
parse_scheme (const char *uri, gsize *len)
{
  const char *p = uri;

  if (!g_ascii_isalpha (*p))
    return FALSE;
  while (g_ascii_isalnum (*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  *len = p - uri;
  return *p == ':' && *len >= 2;
}

static const MynaStorageBackend *
backend_for_uri (const char *uri, const char **location, GError **error)
{
  gsize len;

  if (!parse_scheme (uri, &len))
    {
      *location = uri;
      return &myna_storage_backend_sqlite;
    }
  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    if (strlen (backends[i]->name) == len
        && strncmp (backends[i]->name, uri, len) == 0)
      {
        *location = uri + len + 1;
        return backends[i];
      }
  g_set_error (error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_BACKEND,
               "unknown storage backend \"%.*s\" (known: sqlite)",
               (int) len, uri);
  return NULL;
}

MynaStorage *
myna_storage_open (const char *uri, GError **error)
{
  const MynaStorageBackend *backend;
  const char *location = NULL;
  MynaStorageConn *writer_conn;
  MynaStorageConn *reader;
  MynaStorage *self;

  g_return_val_if_fail (uri != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  backend = backend_for_uri (uri, &location, error);
  if (backend == NULL)
    return NULL;
  writer_conn = backend->open (location, MYNA_STORAGE_CONN_WRITER, error);
  if (writer_conn == NULL)
    return NULL;
  reader = backend->open (location, MYNA_STORAGE_CONN_READER, error);
  if (reader == NULL)
    {
      backend->close (writer_conn);
      return NULL;
    }

  self = g_new0 (MynaStorage, 1);
  self->ref_count = 1;
  self->backend = backend;
  /* A backend whose location holds credentials must not be logged so. */
  self->location = g_strdup (location);
  self->context = g_main_context_ref_thread_default ();
  self->owner = g_thread_self ();
  self->writer_conn = writer_conn;
  self->reader = reader;
  self->kv_overlay =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                           (GDestroyNotify) g_hash_table_unref);
  self->user_deletes = g_hash_table_new_full (g_str_hash, g_str_equal,
                                              g_free, g_free);
  self->cache = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) cache_entry_free);
  g_queue_init (&self->cache_lru);
  self->cache_max = MYNA_STORAGE_CACHE_DEFAULT;
  self->archives = g_hash_table_new (g_str_hash, g_str_equal);
  g_mutex_init (&self->lock);
  g_cond_init (&self->work_cond);
  g_cond_init (&self->done_cond);
  g_queue_init (&self->queue);
  g_queue_init (&self->done);

  self->writer = g_thread_try_new ("myna-storage", writer_thread, self, error);
  if (self->writer == NULL)
    {
      backend->close (g_steal_pointer (&self->writer_conn));
      backend->close (g_steal_pointer (&self->reader));
      storage_free (self);
      return NULL;
    }
  g_info ("storage opened: %s backend, %s", backend->name, self->location);
  return self;
}

gboolean
myna_storage_flush (MynaStorage *storage, GError **error)
{
  g_autoptr (GError) failure = NULL;
  guint64 target;

  g_return_val_if_fail (storage != NULL, FALSE);
  storage = view_resolve (storage, NULL, NULL);
  g_return_val_if_fail (IS_OWNER (storage), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&storage->lock);
  target = storage->last_seq;
  while (storage->finished_seq < target)
    g_cond_wait (&storage->done_cond, &storage->lock);
  failure = g_steal_pointer (&storage->flush_error);
  g_mutex_unlock (&storage->lock);

  dispatch_done (storage, G_MAXUINT);
  backlog_check_low (storage);
  if (failure != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&failure),
                                  "a storage write failed: ");
      return FALSE;
    }
  return TRUE;
}

void
myna_storage_close (MynaStorage *storage)
{
  GSource *source;

  if (storage == NULL)
    return;
  if (storage->base != NULL)
    {
      g_critical ("myna_storage_close: a module's storage view is closed by the server");
      return;
    }
  g_return_if_fail (IS_OWNER (storage));
  /* A callback run by close itself closing again. */
  if (storage->closing)
    return;

  storage->closing = TRUE;
  storage->backlog_func = NULL;
  g_mutex_lock (&storage->lock);
  storage->writer_held = FALSE;
  g_cond_signal (&storage->work_cond);
  g_mutex_unlock (&storage->lock);
  myna_storage_flush (storage, NULL);

  g_mutex_lock (&storage->lock);
  storage->stopping = TRUE;
  g_cond_signal (&storage->work_cond);
  g_mutex_unlock (&storage->lock);
  g_thread_join (g_steal_pointer (&storage->writer));

  g_mutex_lock (&storage->lock);
  source = g_steal_pointer (&storage->dispatch_source);
  g_mutex_unlock (&storage->lock);
  if (source != NULL)
    {
      g_source_destroy (source);
      g_source_unref (source);
    }
  /* Ops refused while the flush ran their callbacks. */
  dispatch_done (storage, G_MAXUINT);
  g_assert (g_hash_table_size (storage->kv_overlay) == 0);
  g_assert (g_hash_table_size (storage->user_deletes) == 0);

  g_clear_pointer (&storage->reader, storage->backend->close);
  g_info ("storage closed: %s", storage->location);
  storage_unref (storage);
}

/* Views. */

MynaStorage *
myna_storage_new_view (MynaStorage *base, const char *scope)
{
  MynaStorage *view;

  g_return_val_if_fail (base != NULL && base->base == NULL, NULL);
  g_return_val_if_fail (scope != NULL && *scope != '\0' && strchr (scope, '/') == NULL, NULL);

  view = g_new0 (MynaStorage, 1);
  view->base = base;
  view->scope = g_strconcat (scope, "/", NULL);
  return view;
}

void
myna_storage_view_free (MynaStorage *view)
{
  if (view == NULL)
    return;
  g_return_if_fail (view->base != NULL);
  g_free (view->scope);
  g_free (view);
}

MynaStorage *
myna_storage_get_base (MynaStorage *storage)
{
  return storage != NULL && storage->base != NULL ? storage->base : storage;
}

/* What a view may not do (it would reach other modules' data): @done gets
 * the error at once. */
static void
view_refuse (MynaStorage *view, const char *what, MynaStorageDone done,
             gpointer user_data, GDestroyNotify destroy)
{
  g_autoptr (GError) error = NULL;

  g_set_error (&error, MYNA_STORAGE_ERROR, MYNA_STORAGE_ERROR_FAILED,
               "%s deletes other modules' data too: not available from a module's "
               "storage (module %.*s); use myna_account_delete", what,
               (int) strlen (view->scope) - 1, view->scope);
  g_warning ("%s", error->message);
  if (done != NULL)
    done (error, user_data);
  if (destroy != NULL)
    destroy (user_data);
}

void
myna_storage_set_guard (MynaStorage *storage, const MynaStorageGuard *guard)
{
  g_return_if_fail (storage != NULL);
  storage = view_resolve (storage, NULL, NULL);
  g_return_if_fail (IS_OWNER (storage));

  storage->guard = guard;
}

void
myna_storage_get_stats (MynaStorage *storage, MynaStorageStats *stats)
{
  g_return_if_fail (storage != NULL);
  storage = view_resolve (storage, NULL, NULL);
  g_return_if_fail (stats != NULL);

  g_mutex_lock (&storage->lock);
  *stats = storage->stats;
  g_mutex_unlock (&storage->lock);
}

guint64
myna_storage_get_pending_bytes (MynaStorage *storage)
{
  guint64 bytes;

  g_return_val_if_fail (storage != NULL, 0);
  storage = view_resolve (storage, NULL, NULL);
  g_mutex_lock (&storage->lock);
  bytes = storage->pending_bytes;
  g_mutex_unlock (&storage->lock);
  return bytes;
}

void
myna_storage_set_backlog_limits (MynaStorage *storage, guint high, guint64 high_bytes,
                                 MynaStorageBacklogFunc func, gpointer user_data)
{
  g_return_if_fail (storage != NULL && storage->base == NULL);
  g_return_if_fail (IS_OWNER (storage));

  storage->backlog_high = high;
  storage->backlog_high_bytes = high_bytes;
  storage->backlog_func = func;
  storage->backlog_data = user_data;
  /* New limits apply at once, both ways. */
  backlog_check_low (storage);
  backlog_check_high (storage);
}

gboolean
myna_storage_backlog_is_over (MynaStorage *storage)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  storage = view_resolve (storage, NULL, NULL);
  return storage->backlog_over;
}

void
myna_storage_hold_writer_for_testing (MynaStorage *storage, gboolean hold)
{
  g_return_if_fail (storage != NULL && storage->base == NULL);

  g_mutex_lock (&storage->lock);
  storage->writer_held = hold;
  g_cond_signal (&storage->work_cond);
  g_mutex_unlock (&storage->lock);
}

void
myna_storage_set_cache_size (MynaStorage *storage, guint entries)
{
  g_return_if_fail (storage != NULL);
  storage = view_resolve (storage, NULL, NULL);
  g_return_if_fail (IS_OWNER (storage));

  storage->cache_max = entries;
  while (g_hash_table_size (storage->cache) > entries)
    cache_remove (storage, storage->cache_lru.tail->data);
}

void
myna_storage_get_cache_stats (MynaStorage *storage, guint *entries,
                              guint64 *hits, guint64 *misses)
{
  g_return_if_fail (storage != NULL);
  storage = view_resolve (storage, NULL, NULL);
  g_return_if_fail (IS_OWNER (storage));

  if (entries != NULL)
    *entries = g_hash_table_size (storage->cache);
  if (hits != NULL)
    *hits = storage->cache_hits;
  if (misses != NULL)
    *misses = storage->cache_misses;
}

/* Key–value. */

void
myna_kv_set (MynaStorage *storage, const char *host, const char *user,
             const char *store, const char *key, const char *value,
             MynaStorageDone done, gpointer user_data,
             GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &store, &scoped);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL);
  g_return_if_fail (store != NULL && key != NULL);

  op = op_new (OP_KV_SET, user_data, destroy);
  op->done = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  op->name = g_strdup (store);
  op->key = g_strdup (key);
  op->value = g_strdup (value);
  submit (storage, op);
}

char *
myna_kv_get (MynaStorage *storage, const char *host, const char *user,
             const char *store, const char *key, GError **error)
{
  GHashTable *pending_store;
  const Pending *pending = NULL;
  g_autofree char *skey = NULL;
  CacheEntry *entry;
  guint64 deleted;
  char *value = NULL;

  g_return_val_if_fail (storage != NULL, NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &store, &scoped);
  g_return_val_if_fail (IS_OWNER (storage), NULL);
  g_return_val_if_fail (host != NULL && user != NULL, NULL);
  g_return_val_if_fail (store != NULL && key != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  pending_store = overlay_store (storage, host, user, store);
  if (pending_store != NULL)
    pending = g_hash_table_lookup (pending_store, key);
  deleted = overlay_user_deleted (storage, host, user);
  if (pending != NULL && pending->seq > deleted)
    return g_strdup (pending->value);
  if (deleted != 0)
    return NULL;

  skey = store_key (host, user, store);
  entry = cache_lookup (storage, skey);
  if (entry != NULL)
    {
      gpointer cached;

      if (g_hash_table_lookup_extended (entry->values, key, NULL, &cached))
        {
          storage->cache_hits++;
          return g_strdup (cached);
        }
      if (entry->complete)
        {
          storage->cache_hits++;
          return NULL;
        }
    }
  storage->cache_misses++;
  if (!storage->backend->kv_get (storage->reader, host, user, store, key,
                                 &value, error))
    return NULL;
  entry = cache_ensure (storage, skey);
  if (entry != NULL)
    g_hash_table_insert (entry->values, g_strdup (key), g_strdup (value));
  return value;
}

GHashTable *
myna_kv_get_all (MynaStorage *storage, const char *host, const char *user,
                 const char *store, GError **error)
{
  g_autoptr (GHashTable) all = NULL;
  GHashTable *pending_store;
  GHashTableIter iter;
  gpointer key, value;
  guint64 deleted;

  g_return_val_if_fail (storage != NULL, NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &store, &scoped);
  g_return_val_if_fail (IS_OWNER (storage), NULL);
  g_return_val_if_fail (host != NULL && user != NULL && store != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  all = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  deleted = overlay_user_deleted (storage, host, user);
  if (deleted == 0)
    {
      g_autofree char *skey = store_key (host, user, store);
      CacheEntry *entry = cache_lookup (storage, skey);

      if (entry != NULL && entry->complete)
        {
          storage->cache_hits++;
          g_hash_table_iter_init (&iter, entry->values);
          while (g_hash_table_iter_next (&iter, &key, &value))
            if (value != NULL)
              g_hash_table_insert (all, g_strdup (key), g_strdup (value));
        }
      else
        {
          storage->cache_misses++;
          if (!storage->backend->kv_get_all (storage->reader, host, user,
                                             store, all, error))
            return NULL;
          entry = cache_ensure (storage, skey);
          if (entry != NULL)
            {
              g_hash_table_remove_all (entry->values);
              g_hash_table_iter_init (&iter, all);
              while (g_hash_table_iter_next (&iter, &key, &value))
                g_hash_table_insert (entry->values, g_strdup (key),
                                     g_strdup (value));
              entry->complete = TRUE;
            }
        }
    }

  pending_store = overlay_store (storage, host, user, store);
  if (pending_store == NULL)
    return g_steal_pointer (&all);
  g_hash_table_iter_init (&iter, pending_store);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const Pending *pending = value;

      if (pending->seq <= deleted)
        continue;
      if (pending->value != NULL)
        g_hash_table_insert (all, g_strdup (key), g_strdup (pending->value));
      else
        g_hash_table_remove (all, key);
    }
  return g_steal_pointer (&all);
}

void
myna_kv_delete_user (MynaStorage *storage, const char *host,
                     const char *user, MynaStorageDone done,
                     gpointer user_data, GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  if (storage->base != NULL)
    {
      view_refuse (storage, "myna_kv_delete_user", done, user_data, destroy);
      return;
    }
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL);

  op = op_new (OP_KV_DELETE_USER, user_data, destroy);
  op->done = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  submit (storage, op);
}

void
myna_storage_delete_user (MynaStorage *storage, const char *host,
                          const char *user, MynaStorageDone done,
                          gpointer user_data, GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  if (storage->base != NULL)
    {
      view_refuse (storage, "myna_storage_delete_user", done, user_data, destroy);
      return;
    }
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL);
  g_return_if_fail (*user != '\0');

  op = op_new (OP_DELETE_USER, user_data, destroy);
  op->done = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  submit (storage, op);
}

/* Archives. */

void
myna_archive_append (MynaStorage *storage, const char *host,
                     const char *user, const char *archive,
                     const char *with, gint64 timestamp, const char *data,
                     MynaArchiveAppended done, gpointer user_data,
                     GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &archive, &scoped);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL && archive != NULL);
  g_return_if_fail (data != NULL);

  op = op_new (OP_ARCHIVE_APPEND, user_data, destroy);
  op->appended = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  op->name = g_strdup (archive);
  op->with = g_strdup (with != NULL ? with : "");
  op->number = timestamp != 0 ? timestamp : g_get_real_time ();
  op->value = g_strdup (data);
  submit (storage, op);
  archive_note_append (storage, op);
}

void
myna_archive_query (MynaStorage *storage, const char *host,
                    const char *user, const char *archive,
                    const MynaArchiveQuery *query, MynaArchiveResult done,
                    gpointer user_data, GDestroyNotify destroy)
{
  myna_archive_query_full (storage, host, user, archive, query,
                           MYNA_ARCHIVE_QUERY_DEFAULT, done, user_data,
                           destroy);
}

void
myna_archive_query_full (MynaStorage *storage, const char *host,
                         const char *user, const char *archive,
                         const MynaArchiveQuery *query,
                         MynaArchiveQueryFlags flags, MynaArchiveResult done,
                         gpointer user_data, GDestroyNotify destroy)
{
  g_autofree char *skey = NULL;
  Op *op;

  g_return_if_fail (storage != NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &archive, &scoped);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL && archive != NULL);

  op = op_new (OP_ARCHIVE_QUERY, user_data, destroy);
  op->result = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  op->name = g_strdup (archive);
  if (query != NULL)
    op->query = *query;
  op->with = g_strdup (op->query.with);
  op->query.with = op->with;
  op->query_flags = flags;
  if (op->query.max == 0)
    op->query.max = DEFAULT_PAGE;
  skey = store_key (host, user, archive);
  op->known_empty = archive_known_empty (storage, skey);
  submit (storage, op);
}

void
myna_archive_delete (MynaStorage *storage, const char *host,
                     const char *user, const char *archive,
                     gint64 up_to_id, MynaStorageDone done,
                     gpointer user_data, GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &archive, &scoped);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (host != NULL && user != NULL && archive != NULL);
  g_return_if_fail (up_to_id >= 0);

  op = op_new (OP_ARCHIVE_DELETE, user_data, destroy);
  op->done = done;
  op->host = g_strdup (host);
  op->user = g_strdup (user);
  op->name = g_strdup (archive);
  op->number = up_to_id;
  submit (storage, op);
}

void
myna_archive_expire (MynaStorage *storage, const char *archive,
                     gint64 before, MynaStorageDone done,
                     gpointer user_data, GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  g_autofree char *scoped = NULL;
  storage = view_resolve (storage, &archive, &scoped);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (archive != NULL);

  op = op_new (OP_ARCHIVE_EXPIRE, user_data, destroy);
  op->done = done;
  op->name = g_strdup (archive);
  op->number = before;
  submit (storage, op);
}

/* Barriers. */

void
myna_storage_after_writes (MynaStorage *storage, MynaStorageDone done,
                           gpointer user_data, GDestroyNotify destroy)
{
  Op *op;

  g_return_if_fail (storage != NULL);
  storage = view_resolve (storage, NULL, NULL);
  g_return_if_fail (IS_OWNER (storage));
  g_return_if_fail (done != NULL);

  op = op_new (OP_BARRIER, user_data, destroy);
  op->done = done;
  submit (storage, op);
}
