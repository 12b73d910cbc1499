/* loop.c: every socket of the server in one epoll set, exposed to the GLib
 * main loop as a single GSource.
 *
 * GLib polls each attached GSource on every iteration, so one source per
 * connection makes each wakeup O(connections).  Here the epoll fd is the
 * only fd GLib sees; dispatch drains ready events in batches. */
#include "private.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define POLL_BATCH 256

struct _MynaPollWatch {
  MynaPoller  *poller;
  int          fd;
  guint32      events;
  MynaPollFunc func;
  gpointer     user_data;
  gboolean     dead;
  MynaPollWatch *next_dead;
};

typedef struct {
  GSource     source;
  MynaPoller *poller;
} PollerSource;

struct _MynaPoller {
  int            epfd;
  GSource       *source;
  gpointer       tag;
  guint          count;
  gboolean       dispatching;
  MynaPollWatch *dead;          /* removed during dispatch, freed after */
  void         (*after_batch) (gpointer data);
  gpointer       after_batch_data;
  gint64         spin_us;       /* busy-poll this long after an event */
  guint64        spin_laps;     /* epoll_wait calls made while spinning */
  guint          depth;         /* poller_dispatch calls on the stack */
  gboolean       muted;         /* epfd taken out of GLib's poll meanwhile */
};

/* The most a dispatch spins in all, so timers and other sources run. */
#define SPIN_BOUND_US 2000

/* The end of a batch: output queued by it goes out now, one write per
 * peer; watches removed meanwhile are freed. */
static void
poller_batch_finish (MynaPoller *poller)
{
  if (poller->after_batch != NULL)
    poller->after_batch (poller->after_batch_data);
  poller->dispatching = FALSE;
  while (poller->dead != NULL)
    {
      MynaPollWatch *w = poller->dead;
      poller->dead = w->next_dead;
      g_free (w);
    }
}

static void
poller_run_batch (MynaPoller *poller, struct epoll_event *events, int n)
{
  poller->dispatching = TRUE;
  for (int i = 0; i < n; i++)
    {
      MynaPollWatch *w = events[i].data.ptr;
      if (!w->dead)
        w->func (w, events[i].events, w->user_data);
    }
  poller_batch_finish (poller);
}

gboolean
myna_poller_batch_begin (gpointer poller_ptr)
{
  MynaPoller *poller = poller_ptr;

  if (poller == NULL || poller->dispatching)
    return FALSE;
  poller->dispatching = TRUE;
  return TRUE;
}

void
myna_poller_batch_end (gpointer poller_ptr)
{
  poller_batch_finish (poller_ptr);
}

static void
poller_dispatch_events (MynaPoller *poller)
{
  struct epoll_event events[POLL_BATCH];
  gint64 start, last;
  gboolean handled = FALSE;
  int n;

  /* A bounded number of batches per wakeup keeps timers and other sources
   * fair under load. */
  for (int round = 0; round < 4; round++)
    {
      n = epoll_wait (poller->epfd, events, POLL_BATCH, 0);
      if (n <= 0)
        break;
      poller_run_batch (poller, events, n);
      handled = TRUE;
      if (n < POLL_BATCH)
        break;
    }
  /* Nor while worker threads have jobs: they may share this core (mynad
   * pinned to one CPU), and the loop would only spin until they finish. */
  if (poller->spin_us <= 0 || !handled || myna_work_outstanding () > 0)
    return;

  /* Busy polling (poll_spin_us): rather than sleep in poll() and wait for
   * the kernel, or a hypervisor, to wake the core, look again for a while
   * after the last event; a server with nothing to do never gets here. */
  start = last = g_get_monotonic_time ();
  for (;;)
    {
      gint64 now;

      n = epoll_wait (poller->epfd, events, POLL_BATCH, 0);
      now = g_get_monotonic_time ();
      poller->spin_laps++;
      if (n > 0)
        {
          poller_run_batch (poller, events, n);
          last = now;
        }
      else if (n < 0 && errno != EINTR)
        break;
      if (now - last >= poller->spin_us || now - start >= SPIN_BOUND_US
          || myna_work_outstanding () > 0)
        break;
    }
}

/* The source may recurse (G_SOURCE_CAN_RECURSE), so that GLib does not
 * take the epoll fd out of its poll set and put it back around every
 * dispatch: that costs two eventfd writes, a read and a wakeup of the next
 * poll() per main-loop iteration.  Recursion itself only happens when a
 * callback runs a nested main loop (a module reload waiting for callbacks
 * of the unloaded code): then sockets wait until it returns, as they would
 * for a blocked source, and the epoll fd leaves the poll set meanwhile so
 * that the nested loop does not spin on it. */
static gboolean
poller_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  MynaPoller *poller = ((PollerSource *) source)->poller;

  if (poller->depth > 0)
    {
      if (!poller->muted)
        {
          g_source_modify_unix_fd (source, poller->tag, 0);
          poller->muted = TRUE;
        }
      return G_SOURCE_CONTINUE;
    }
  poller->depth++;
  poller_dispatch_events (poller);
  poller->depth--;
  if (poller->muted)
    {
      g_source_modify_unix_fd (source, poller->tag, G_IO_IN);
      poller->muted = FALSE;
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs poller_funcs = {
  .dispatch = poller_dispatch,
};

void
myna_poller_set_spin (MynaPoller *poller, gint64 spin_us)
{
  g_return_if_fail (poller != NULL);

  poller->spin_us = MAX (spin_us, 0);
}

guint64
myna_poller_spin_laps (MynaPoller *poller)
{
  g_return_val_if_fail (poller != NULL, 0);

  return poller->spin_laps;
}

MynaPoller *
myna_poller_new (GMainContext *context)
{
  MynaPoller *poller = g_new0 (MynaPoller, 1);

  poller->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (poller->epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  poller->source = g_source_new (&poller_funcs, sizeof (PollerSource));
  ((PollerSource *) poller->source)->poller = poller;
  g_source_set_name (poller->source, "myna-poller");
  poller->tag = g_source_add_unix_fd (poller->source, poller->epfd, G_IO_IN);
  g_source_set_can_recurse (poller->source, TRUE);
  g_source_attach (poller->source, context);
  return poller;
}

/* Not from inside a dispatch: the server frees its poller after the main
 * loop has returned. */
void
myna_poller_free (MynaPoller *poller)
{
  if (poller == NULL)
    return;
  g_source_destroy (poller->source);
  g_source_unref (poller->source);
  close (poller->epfd);
  g_free (poller);
}

MynaPollWatch *
myna_poller_add (MynaPoller *poller, int fd, guint32 events, MynaPollFunc func,
                 gpointer user_data)
{
  g_return_val_if_fail (poller != NULL, NULL);
  g_return_val_if_fail (fd >= 0, NULL);

  MynaPollWatch *w = g_new0 (MynaPollWatch, 1);
  struct epoll_event ev = { .events = events, .data.ptr = w };

  w->poller = poller;
  w->fd = fd;
  w->events = events;
  w->func = func;
  w->user_data = user_data;
  if (epoll_ctl (poller->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    {
      /* Out of memory or of epoll watches (ENOMEM, ENOSPC): every new
       * connection fails alike, so the log says so once per interval. */
      static gint64 reported_at;
      static guint failed;
      gint64 now = g_get_monotonic_time ();
      int e = errno;

      failed++;
      if (reported_at == 0 || now - reported_at >= 10 * G_USEC_PER_SEC)
        {
          g_warning ("epoll_ctl(ADD, %d): %s (%u failure(s) in the last 10 s)", fd,
                     g_strerror (e), failed);
          reported_at = now;
          failed = 0;
        }
      g_free (w);
      errno = e;
      return NULL;
    }
  poller->count++;
  return w;
}

void
myna_poller_modify (MynaPollWatch *watch, guint32 events)
{
  g_return_if_fail (watch != NULL);

  if (watch->events == events || watch->dead)
    return;
  struct epoll_event ev = { .events = events, .data.ptr = watch };
  if (epoll_ctl (watch->poller->epfd, EPOLL_CTL_MOD, watch->fd, &ev) < 0)
    g_warning ("epoll_ctl(MOD, %d): %s", watch->fd, g_strerror (errno));
  watch->events = events;
}

static void
poller_drop (MynaPollWatch *watch, gboolean deregister)
{
  if (watch == NULL || watch->dead)
    return;

  MynaPoller *poller = watch->poller;

  if (deregister)
    epoll_ctl (poller->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
  poller->count--;
  watch->dead = TRUE;
  if (poller->dispatching)
    {
      watch->next_dead = poller->dead;
      poller->dead = watch;
    }
  else
    g_free (watch);
}

void
myna_poller_remove (MynaPollWatch *watch)
{
  poller_drop (watch, TRUE);
}

/* For a watch whose fd the caller closes next, and has not duplicated:
 * closing the last descriptor of a socket takes it out of the epoll set,
 * so the EPOLL_CTL_DEL call is skipped (one system call per connection). */
void
myna_poller_remove_closing (MynaPollWatch *watch)
{
  poller_drop (watch, FALSE);
}

void
myna_poller_set_after_batch (MynaPoller *poller, void (*func) (gpointer), gpointer data)
{
  poller->after_batch = func;
  poller->after_batch_data = data;
}

gboolean
myna_poller_in_dispatch (MynaPoller *poller)
{
  return poller != NULL && poller->dispatching;
}

guint
myna_poller_count (MynaPoller *poller)
{
  return poller->count;
}

guint
myna_main_context_count_sources (GMainContext *context)
{
  /* Source ids are handed out in increasing order: probe each id up to the
   * newest with a throwaway source. */
  GSource *probe = g_idle_source_new ();
  guint last = g_source_attach (probe, context);
  guint n = 0;

  g_source_destroy (probe);
  g_source_unref (probe);
  for (guint id = 1; id < last; id++)
    if (g_main_context_find_source_by_id (context, id) != NULL)
      n++;
  return n;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

void
myna_ptr_array_sort_strings (GPtrArray *array)
{
  g_ptr_array_sort (array, compare_strings);
}
