/* timer.h: cheap one-shot timers for per-connection and per-module timeouts.
 *
 * Every MynaTimer of a thread sits in one hashed timer wheel that is a single
 * GSource on the thread-default main context, however many timers there are:
 * arming, re-arming and stopping are O(1).  Resolution is
 * MYNA_TIMER_RESOLUTION_MS; a timer never fires early. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MYNA_TIMER_RESOLUTION_MS 50

typedef struct _MynaTimer MynaTimer;
typedef void (*MynaTimerFunc) (gpointer user_data);

/* A stopped timer calling @func with @user_data when it fires.  A timer
 * made by a module's code is stopped when the module unloads (freeing it
 * stays the module's).  Returns: (transfer full); free with
 * myna_timer_free(). */
MynaTimer *myna_timer_new (MynaTimerFunc func, gpointer user_data);
/* Arms (or re-arms) @timer to fire once, @ms milliseconds from now. */
void       myna_timer_start (MynaTimer *timer, guint ms);
void       myna_timer_stop (MynaTimer *timer);
gboolean   myna_timer_is_active (const MynaTimer *timer);
/* Stops and frees; safe from inside the timer's own callback.  NULL-safe. */
void       myna_timer_free (MynaTimer *timer);

/* How many timers are armed on this thread's wheel. */
guint      myna_timer_count_active (void);

G_END_DECLS
