/* storage-guard.h: how the server ties storage operations to the code that
 * queued them.  The storage knows nothing of modules; the server gives it
 * a guard: when an operation with a callback or a destroy notify is
 * queued, `hold` takes a reference on whoever is queueing it (a module: its
 * code and state then stay until the callback has run); the callback and
 * the destroy notify run between `enter` and `leave` (as that module), and
 * `release` drops the reference after them. */
#pragma once

#include <myna/storage.h>

G_BEGIN_DECLS

typedef struct {
  gpointer (*hold)    (void);
  /* Returns what `leave` restores. */
  gpointer (*enter)   (gpointer held);
  void     (*leave)   (gpointer saved);
  void     (*release) (gpointer held);
} MynaStorageGuard;

/* Sets the guard for the operations queued from now on (NULL: none). */
void myna_storage_set_guard (MynaStorage *storage, const MynaStorageGuard *guard);

/* A module's view of @base: store and archive name S is stored as
 * "@scope/S", so nothing outside the scope (core stores, other modules')
 * is reachable through it; flushes, barriers and stats are @base's.  The
 * view does not own @base.  Returns: (transfer full) */
MynaStorage *myna_storage_new_view (MynaStorage *base, const char *scope);
void         myna_storage_view_free (MynaStorage *view);
/* The storage behind a view (itself for a storage).  Returns: (transfer none) */
MynaStorage *myna_storage_get_base (MynaStorage *storage);

/* The server's backpressure on writers: called on the owner thread when
 * the writes queued and not yet committed reach @high or @high_bytes
 * (@over TRUE; from inside the call that queued the write), and again
 * when they are back under half of both (@over FALSE; from the main
 * context, after the writer committed a batch, or from a flush). */
typedef void (*MynaStorageBacklogFunc) (MynaStorage *storage, gboolean over, guint pending,
                                        guint64 pending_bytes, gpointer user_data);
/* The approximate size in memory of the writes queued and not yet
 * committed (MynaStorageStats.pending counts them; the public struct keeps
 * its size, so modules built against it stay compatible). */
guint64  myna_storage_get_pending_bytes (MynaStorage *storage);

/* Sets the high watermarks (0: none of that kind) and who is told; new
 * limits apply at once.  @func may be NULL. */
/* Completions as one batch: @begin runs before the storage calls back a
 * chunk of finished operations (TRUE when it opened a batch) and @end
 * after them when it did.  The server opens a poller batch, so that what
 * the callbacks send (a reply, a fan-out of notifications) goes out as
 * one write per peer, as for a batch of network input.  Owner thread. */
void     myna_storage_set_dispatch_batch (MynaStorage *storage, gboolean (*begin) (gpointer),
                                          void (*end) (gpointer), gpointer data);
void     myna_storage_set_backlog_limits (MynaStorage *storage, guint high, guint64 high_bytes,
                                          MynaStorageBacklogFunc func, gpointer user_data);
/* Whether the backlog was reported over and not yet back under. */
gboolean myna_storage_backlog_is_over (MynaStorage *storage);

/* Tests only: while held, the writer thread commits nothing (queued writes
 * pile up as behind a slow disk).  Close releases it. */
void     myna_storage_hold_writer_for_testing (MynaStorage *storage, gboolean hold);

G_END_DECLS
