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

G_END_DECLS
