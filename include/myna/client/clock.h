/* clock.h: the time source of a MynaClient — real (the thread-default
 * main context) or a test clock that a test advances by hand, so that
 * reconnect waits, heartbeats and IQ timeouts are checked without sleeps. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define MYNA_TYPE_CLIENT_CLOCK (myna_client_clock_get_type ())
G_DECLARE_DERIVABLE_TYPE (MynaClientClock, myna_client_clock, MYNA, CLIENT_CLOCK, GObject)

/**
 * MynaClientClockClass:
 * @now: the current time in microseconds (monotonic).
 * @add_timeout: calls @func once after @ms milliseconds; returns a nonzero id.
 * @remove: cancels a timeout by id (no effect once it has run).
 *
 * The default (real) clock uses g_get_monotonic_time() and GSources on
 * the thread-default main context.
 */
struct _MynaClientClockClass {
  GObjectClass parent_class;

  gint64 (*now)         (MynaClientClock *clock);
  guint  (*add_timeout) (MynaClientClock *clock, guint ms, GSourceFunc func,
                         gpointer data, GDestroyNotify destroy);
  void   (*remove)      (MynaClientClock *clock, guint id);

  gpointer padding[8];
};

/**
 * myna_client_clock_new_real:
 * Returns: (transfer full): a clock on the real time and the thread-default
 *   main context
 */
MynaClientClock *myna_client_clock_new_real (void);

gint64 myna_client_clock_now (MynaClientClock *clock);
/**
 * myna_client_clock_add_timeout:
 * @clock: a clock
 * @ms: delay in milliseconds
 * @func: (scope notified) (closure data) (destroy destroy): called once
 * @data: (nullable): for @func
 * @destroy: (nullable): frees @data after @func ran or the timeout was removed
 *
 * @func's return value is ignored: a timeout runs once.
 *
 * Returns: a nonzero id for myna_client_clock_remove()
 */
guint  myna_client_clock_add_timeout (MynaClientClock *clock, guint ms, GSourceFunc func,
                                      gpointer data, GDestroyNotify destroy);
void   myna_client_clock_remove (MynaClientClock *clock, guint id);

#define MYNA_TYPE_CLIENT_TEST_CLOCK (myna_client_test_clock_get_type ())
G_DECLARE_FINAL_TYPE (MynaClientTestClock, myna_client_test_clock, MYNA, CLIENT_TEST_CLOCK,
                      MynaClientClock)

/**
 * myna_client_test_clock_new:
 * Returns: (transfer full): a clock that stands still until advanced
 */
MynaClientClock *myna_client_test_clock_new (void);
/* Moves the clock forward by @ms, running every timeout that falls due, in
 * order of due time (a timeout added by one that runs, and due within the
 * step, runs too). */
void   myna_client_test_clock_advance (MynaClientTestClock *clock, guint ms);
/* The delay in milliseconds until the next pending timeout, or -1 when
 * none is pending. */
gint64 myna_client_test_clock_next (MynaClientTestClock *clock);
/* Pending timeouts. */
guint  myna_client_test_clock_pending (MynaClientTestClock *clock);

G_END_DECLS
