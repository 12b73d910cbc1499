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

/* ---- known addresses: the last AUTH_KNOWN_PER_ACCOUNT addresses each
 * account logged in from, for at most `max_accounts` accounts (the least
 * recently logged in go first).  See throttle.c. */
#define AUTH_KNOWN_PER_ACCOUNT 4

typedef struct _AuthKnown AuthKnown;

AuthKnown *auth_known_new (guint max_accounts);
void       auth_known_free (AuthKnown *k);
/* @user logged in from @addr. */
void       auth_known_add (AuthKnown *k, const char *user, const char *addr);
gboolean   auth_known_has (AuthKnown *k, const char *user, const char *addr);
guint      auth_known_size (AuthKnown *k);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuthKnown, auth_known_free)

/* ---- account lines: per account under the delay, the one attempt being
 * evaluated (its slot is taken until `free_at`) and the attempts waiting
 * for the slot, those from addresses without failures on the account
 * ("clean") before the others, each group oldest first.  The items and
 * the timer are the caller's. */
typedef struct {
  gint64   free_at;        /* the slot is taken until then */
  GQueue   clean, dirty;   /* waiting items */
  gpointer owner;          /* the caller's */
  gpointer timer;          /* the caller's, freed with the line */
  gboolean full_logged;    /* the bound was reported */
  char     user[];
} AuthLine;

typedef struct _AuthLines AuthLines;

AuthLines *auth_lines_new (GDestroyNotify timer_free);
/* Frees the lines; @item_free gets every waiting item first. */
void       auth_lines_free (AuthLines *l, GFunc item_free, gpointer data);
/* @user's line, made (slot free, nobody waiting) if @create. */
AuthLine  *auth_lines_get (AuthLines *l, const char *user, gboolean create);
void       auth_lines_drop (AuthLines *l, AuthLine *line);
guint      auth_lines_size (AuthLines *l);
guint      auth_line_waiting (AuthLine *line);
/* Queues @item; returns its link, for auth_line_unlink(). */
GList     *auth_line_push (AuthLine *line, gpointer item, gboolean clean);
void       auth_line_unlink (AuthLine *line, GList *link, gboolean clean);
/* The next item (the oldest clean one, else the oldest other), or NULL. */
gpointer   auth_line_pop (AuthLine *line);

G_END_DECLS
