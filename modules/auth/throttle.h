/* throttle.h: the auth module's table of recent failed attempts — a
 * count per key ("a" address, "p" address and account, "u" account; the
 * keys are the caller's) that expires `window` after its first failure,
 * bounded to `max_entries` entries.
 *
 * Expired entries go on lookup and in auth_throttle_sweep(), which the
 * module runs from a timer.  When a new key finds the table full, expired
 * entries go first; then the entries with the lowest counts, the newest
 * first among equal counts, until a sixteenth of the table is free.  So
 * flooding the table with fresh keys evicts the flood itself: wiping a
 * victim's count of n takes filling the whole table with counts above n
 * (or newer ones of n), and every one of them is a failed login the other
 * counters see.  Clocks are passed in, for tests.  No locking: the main
 * loop owns it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AuthThrottle AuthThrottle;

AuthThrottle *auth_throttle_new (gint64 window_us, guint max_entries);
void          auth_throttle_free (AuthThrottle *t);
/* The count of @key now, 0 when absent or expired. */
guint         auth_throttle_count (AuthThrottle *t, const char *key, gint64 now);
/* Adds one to @key's count (creating it, evicting others if full). */
void          auth_throttle_add (AuthThrottle *t, const char *key, gint64 now);
/* Takes one back from @key's count (an attempt counted up front that
 * turned out right). */
void          auth_throttle_take_back (AuthThrottle *t, const char *key, gint64 now);
void          auth_throttle_forget (AuthThrottle *t, const char *key);
/* Removes the expired entries; returns how many went. */
guint         auth_throttle_sweep (AuthThrottle *t, gint64 now);
guint         auth_throttle_size (AuthThrottle *t);
/* Entries evicted so far to make room (for logs and tests). */
guint64       auth_throttle_evicted (AuthThrottle *t);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuthThrottle, auth_throttle_free)

G_END_DECLS
