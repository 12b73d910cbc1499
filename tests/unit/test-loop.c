/* test-loop: the event loop at scale — the timer wheel, and a server whose
 * attached GSources do not grow with thousands of connections. */
#include "server-harness.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

typedef struct {
  gint64 armed_at;
  gint64 fired_at;
  guint  ms;
  int    fired;
} Shot;

static void
shot_fire (gpointer data)
{
  Shot *s = data;
  s->fired++;
  s->fired_at = g_get_monotonic_time ();
}

static gboolean
all_fired (gpointer data)
{
  GArray *shots = data;
  for (guint i = 0; i < shots->len; i++)
    if (g_array_index (shots, Shot, i).fired == 0)
      return FALSE;
  return TRUE;
}

static void
test_timer_never_early (void)
{
  g_autoptr(GArray) shots = g_array_new (FALSE, TRUE, sizeof (Shot));
  g_autoptr(GPtrArray) timers = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_timer_free);
  const guint delays[] = { 0, 1, 20, 60, 120, 333, 50, 10 };

  g_array_set_size (shots, G_N_ELEMENTS (delays));
  for (guint i = 0; i < G_N_ELEMENTS (delays); i++)
    {
      Shot *s = &g_array_index (shots, Shot, i);
      MynaTimer *t = myna_timer_new (shot_fire, s);
      s->ms = delays[i];
      s->armed_at = g_get_monotonic_time ();
      myna_timer_start (t, delays[i]);
      g_ptr_array_add (timers, t);
    }
  g_assert_cmpuint (myna_timer_count_active (), ==, G_N_ELEMENTS (delays));
  g_assert_true (harness_wait (all_fired, shots, 5000));
  for (guint i = 0; i < shots->len; i++)
    {
      Shot *s = &g_array_index (shots, Shot, i);
      g_assert_cmpint (s->fired, ==, 1);
      g_assert_cmpint (s->fired_at - s->armed_at, >=, (gint64) s->ms * 1000);
    }
  g_assert_cmpuint (myna_timer_count_active (), ==, 0);
}

static void
test_timer_stop_and_rearm (void)
{
  Shot a = { 0 }, b = { 0 };
  MynaTimer *ta = myna_timer_new (shot_fire, &a);
  MynaTimer *tb = myna_timer_new (shot_fire, &b);

  myna_timer_start (ta, 50);
  myna_timer_start (tb, 5000);
  myna_timer_stop (ta);
  g_assert_false (myna_timer_is_active (ta));
  /* Re-arming moves b from 5 s to 100 ms. */
  b.armed_at = g_get_monotonic_time ();
  myna_timer_start (tb, 100);
  g_assert_cmpuint (myna_timer_count_active (), ==, 1);
  while (b.fired == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (a.fired, ==, 0);
  g_assert_cmpint (b.fired_at - b.armed_at, <, 4000000);
  myna_timer_free (ta);
  myna_timer_free (tb);
}

static MynaTimer *self_freeing;

static void
free_self (gpointer data)
{
  (*(int *) data)++;
  myna_timer_free (self_freeing);
  self_freeing = NULL;
}

static gboolean
int_set (gpointer data)
{
  return *(int *) data != 0;
}

static void
test_timer_free_in_callback (void)
{
  int n = 0;

  self_freeing = myna_timer_new (free_self, &n);
  myna_timer_start (self_freeing, 10);
  g_assert_true (harness_wait (int_set, &n, 2000));
  g_assert_cmpint (n, ==, 1);
}

static void
test_timer_many (void)
{
  const guint N = 20000;
  g_autoptr(GArray) shots = g_array_new (FALSE, TRUE, sizeof (Shot));
  g_autoptr(GPtrArray) timers = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_timer_free);

  g_array_set_size (shots, N);
  for (guint i = 0; i < N; i++)
    {
      Shot *s = &g_array_index (shots, Shot, i);
      MynaTimer *t = myna_timer_new (shot_fire, s);
      s->ms = g_random_int_range (0, 400);
      s->armed_at = g_get_monotonic_time ();
      myna_timer_start (t, s->ms);
      g_ptr_array_add (timers, t);
    }
  g_assert_true (harness_wait (all_fired, shots, 10000));
  for (guint i = 0; i < N; i++)
    g_assert_cmpint (g_array_index (shots, Shot, i).fired, ==, 1);
}

/* ---- thousands of connections, one GSource -------------------------------- */

typedef struct {
  int    *fds;
  guint   n;
  GString **in;
} Clients;

static gboolean
clients_got_features (gpointer data)
{
  Clients *c = data;
  struct pollfd *pfd = g_new0 (struct pollfd, c->n);
  guint done = 0;

  for (guint i = 0; i < c->n; i++)
    {
      pfd[i].fd = c->fds[i];
      pfd[i].events = POLLIN;
    }
  poll (pfd, c->n, 0);
  for (guint i = 0; i < c->n; i++)
    {
      if (pfd[i].revents & POLLIN)
        {
          char buf[4096];
          ssize_t r = recv (c->fds[i], buf, sizeof buf, MSG_DONTWAIT);
          if (r > 0)
            g_string_append_len (c->in[i], buf, r);
        }
      if (strstr (c->in[i]->str, "features") != NULL)
        done++;
    }
  g_free (pfd);
  return done == c->n;
}

static void
test_sources_do_not_grow (void)
{
  ServerHarness h = { 0 };
  struct rlimit rl;
  guint N = 3000;

  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N + 100)
    {
      rl.rlim_cur = MIN (rl.rlim_max, 2 * N + 100);
      setrlimit (RLIMIT_NOFILE, &rl);
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  if (rl.rlim_cur < 2 * N + 100)
    N = (guint) (rl.rlim_cur - 100) / 2;
  g_assert_cmpuint (N, >=, 1000);

  harness_start (&h, "max_connections_per_ip = 0\n");
  guint before = myna_main_context_count_sources (NULL);
  guint16 port = myna_server_get_listener_port (h.server, "c2s");
  Clients c = { g_new0 (int, N), N, g_new0 (GString *, N) };
  const char *open = "<?xml version='1.0'?><stream:stream to='localhost' "
                     "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                     "version='1.0'>";

  for (guint i = 0; i < N; i++)
    {
      struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
      inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
      c.fds[i] = socket (AF_INET, SOCK_STREAM, 0);
      g_assert_cmpint (connect (c.fds[i], (struct sockaddr *) &sa, sizeof sa), ==, 0);
      g_assert_cmpint (send (c.fds[i], open, strlen (open), 0), ==, (ssize_t) strlen (open));
      c.in[i] = g_string_new (NULL);
      /* Let the server accept as we go so the backlog never overflows. */
      if (i % 200 == 0)
        while (g_main_context_iteration (NULL, FALSE))
          ;
    }
  g_assert_true (harness_wait (clients_got_features, &c, 30000));
  g_assert_cmpuint (myna_server_count_sessions (h.server), ==, N);
  guint during = myna_main_context_count_sources (NULL);
  g_test_message ("%u connections: %u GSources before, %u during", N, before, during);
  /* Every connection has a socket and a timer, yet the count is flat. */
  g_assert_cmpuint (during, <=, before + 2);
  g_assert_cmpuint (myna_timer_count_active (), >=, N);

  for (guint i = 0; i < N; i++)
    {
      close (c.fds[i]);
      g_string_free (c.in[i], TRUE);
    }
  g_free (c.fds);
  g_free (c.in);
  harness_stop (&h);
}

/* Busy polling: an event arriving within the spin after another is handled
 * in the same dispatch, and under a steady stream the dispatch still
 * returns, so timers and other sources run. */
typedef struct {
  int      fd;
  guint    events;
  guint    dispatches;
} SpinPeer;

static void
spin_readable (MynaPollWatch *w, guint32 events, gpointer data)
{
  SpinPeer *p = data;
  char buf[64];
  ssize_t n;

  while ((n = read (p->fd, buf, sizeof buf)) > 0)
    p->events += (guint) n;
}

static gpointer
spin_writer (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);

  /* 400 writes 50 µs apart: a steady stream for about 20 ms or more. */
  for (int i = 0; i < 400; i++)
    {
      g_assert_cmpint (write (fd, "x", 1), ==, 1);
      g_usleep (50);
    }
  return NULL;
}

static gboolean
spin_timer_fired (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

static void
test_poller_spin (void)
{
  MynaPoller *poller = myna_poller_new (NULL);
  SpinPeer peer = { 0 };
  int fds[2];
  guint ticks = 0;
  GThread *writer;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  peer.fd = fds[0];
  MynaPollWatch *w = myna_poller_add (poller, fds[0], EPOLLIN, spin_readable, &peer);
  /* Longer than the whole stream: only the bound ends a dispatch. */
  myna_poller_set_spin (poller, 1000000);
  guint timer = g_timeout_add (1, spin_timer_fired, &ticks);

  writer = g_thread_new ("spin-writer", spin_writer, GINT_TO_POINTER (fds[1]));
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (peer.events < 400 && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, TRUE);
      peer.dispatches++;
    }
  g_thread_join (writer);
  g_assert_cmpuint (peer.events, ==, 400);
  /* Many events per dispatch (the spin caught them) ... */
  g_assert_cmpuint (peer.dispatches, <, 200);
  /* ... yet the 1 ms timer ran meanwhile: dispatches end within the bound. */
  g_assert_cmpuint (ticks, >=, 3);

  g_source_remove (timer);
  myna_poller_remove (w);
  myna_poller_free (poller);
  close (fds[0]);
  close (fds[1]);
}

/* Busy polling never competes with the worker threads: while a job is
 * outstanding a dispatch does not spin (with mynad pinned to one core the
 * workers hash passwords on that same core). */
typedef struct {
  GMutex   lock;
  GCond    cond;
  gboolean release;
  gboolean done;
} HeldJob;

static void
held_job_work (gpointer data)
{
  HeldJob *j = data;

  g_mutex_lock (&j->lock);
  while (!j->release)
    g_cond_wait (&j->cond, &j->lock);
  g_mutex_unlock (&j->lock);
}

static void
held_job_done (gpointer data)
{
  ((HeldJob *) data)->done = TRUE;
}

static void
test_poller_spin_not_with_work (void)
{
  MynaPoller *poller = myna_poller_new (NULL);
  SpinPeer peer = { 0 };
  HeldJob job = { 0 };
  int fds[2];

  g_mutex_init (&job.lock);
  g_cond_init (&job.cond);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  peer.fd = fds[0];
  MynaPollWatch *w = myna_poller_add (poller, fds[0], EPOLLIN, spin_readable, &peer);
  myna_poller_set_spin (poller, 1000);

  /* A job in progress: the dispatch handles the byte and does not spin. */
  myna_work_submit (held_job_work, held_job_done, &job);
  g_assert_cmpuint (myna_work_outstanding (), ==, 1);
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (peer.events < 1 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (peer.events, ==, 1);
  g_assert_cmpuint (myna_poller_spin_laps (poller), ==, 0);

  /* The job finishes and its completion runs ... */
  g_mutex_lock (&job.lock);
  job.release = TRUE;
  g_cond_signal (&job.cond);
  g_mutex_unlock (&job.lock);
  while (!job.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (job.done);
  g_assert_cmpuint (myna_work_outstanding (), ==, 0);

  /* ... and then a dispatch that handled an event spins. */
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  while (peer.events < 2 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (peer.events, ==, 2);
  g_assert_cmpuint (myna_poller_spin_laps (poller), >, 0);

  myna_poller_remove (w);
  myna_poller_free (poller);
  close (fds[0]);
  close (fds[1]);
  g_mutex_clear (&job.lock);
  g_cond_clear (&job.cond);
}

/* A socket callback that runs a nested main loop (as a module reload does
 * while it waits for the unloaded code's callbacks): the poller is not
 * entered again meanwhile, and the nested loop does not spin on the ready
 * epoll fd; the events that came in are dispatched once it returns. */
typedef struct NestPeer NestPeer;
struct NestPeer {
  int    fd;
  guint  reads;
  int    poke;          /* fd written to make the other watch ready */
  guint  other_reads;   /* the other watch's reads seen during the nest */
  guint  nested_iterations;
  guint  ticks;
  NestPeer *other;
};

static gboolean
nest_tick (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

static void
nest_readable (MynaPollWatch *w, guint32 events, gpointer data)
{
  NestPeer *p = data;
  char buf[64];

  while (read (p->fd, buf, sizeof buf) > 0)
    p->reads++;
  if (p->poke < 0)
    return;

  NestPeer *other = p->other;
  guint timer = g_timeout_add (10, nest_tick, &p->ticks);
  gint64 until = g_get_monotonic_time () + 200 * 1000;

  g_assert_cmpint (write (p->poke, "y", 1), ==, 1);
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, TRUE);
      p->nested_iterations++;
    }
  p->other_reads = other->reads;
  g_source_remove (timer);
  p->poke = -1;
}

static void
test_poller_nested_loop (void)
{
  MynaPoller *poller = myna_poller_new (NULL);
  NestPeer a = { 0 }, b = { 0 };
  int fa[2], fb[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fa), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fb), ==, 0);
  a.fd = fa[0];
  a.poke = fb[1];
  a.other = &b;
  b.fd = fb[0];
  b.poke = -1;
  MynaPollWatch *wa = myna_poller_add (poller, fa[0], EPOLLIN, nest_readable, &a);
  MynaPollWatch *wb = myna_poller_add (poller, fb[0], EPOLLIN, nest_readable, &b);

  g_assert_cmpint (write (fa[1], "x", 1), ==, 1);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while ((a.reads == 0 || b.reads == 0) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (a.reads, ==, 1);
  /* The nested loop ran its 10 ms timer ... */
  g_assert_cmpuint (a.ticks, >=, 5);
  /* ... without spinning on the ready epoll fd (about 20 iterations; a
   * spinning loop makes hundreds of thousands in 200 ms) ... */
  g_assert_cmpuint (a.nested_iterations, <, 200);
  /* ... and without dispatching the other socket inside the callback. */
  g_assert_cmpuint (a.other_reads, ==, 0);
  /* Once the callback returned, the other socket was served. */
  g_assert_cmpuint (b.reads, ==, 1);

  /* The poller still waits in poll(): one more write is seen. */
  g_assert_cmpint (write (fb[1], "z", 1), ==, 1);
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (b.reads < 2 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (b.reads, ==, 2);

  myna_poller_remove (wa);
  myna_poller_remove (wb);
  myna_poller_free (poller);
  close (fa[0]);
  close (fa[1]);
  close (fb[0]);
  close (fb[1]);
}

/* A worker job's completion may run a nested main loop that waits for
 * another job: the workers' source is dispatched again inside it (it may
 * recurse), and each completion runs once. */
typedef struct {
  guint first_done;
  guint second_done;
  gboolean second_seen_inside;
} NestedJobs;

static void
nop_work (gpointer data)
{
}

static void
second_done (gpointer data)
{
  ((NestedJobs *) data)->second_done++;
}

static void
first_done (gpointer data)
{
  NestedJobs *n = data;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  guint ticks = 0;
  guint tick = g_timeout_add (10, nest_tick, &ticks);  /* bounds each wait */

  n->first_done++;
  myna_work_submit (nop_work, second_done, n);
  while (n->second_done == 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick);
  n->second_seen_inside = n->second_done == 1;
}

static void
test_work_nested_loop (void)
{
  NestedJobs n = { 0 };
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  myna_work_submit (nop_work, first_done, &n);
  while ((n.first_done == 0 || myna_work_outstanding () > 0)
         && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (n.first_done, ==, 1);
  g_assert_true (n.second_seen_inside);
  g_assert_cmpuint (n.second_done, ==, 1);
  g_assert_cmpuint (myna_work_outstanding (), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init_logging ();
  g_test_add_func ("/timer/never-early", test_timer_never_early);
  g_test_add_func ("/timer/stop-rearm", test_timer_stop_and_rearm);
  g_test_add_func ("/timer/free-in-callback", test_timer_free_in_callback);
  g_test_add_func ("/timer/many", test_timer_many);
  g_test_add_func ("/loop/sources-flat", test_sources_do_not_grow);
  g_test_add_func ("/loop/poller-spin", test_poller_spin);
  g_test_add_func ("/loop/poller-nested-loop", test_poller_nested_loop);
  g_test_add_func ("/loop/poller-spin-not-with-work", test_poller_spin_not_with_work);
  g_test_add_func ("/loop/work-nested-loop", test_work_nested_loop);
  return g_test_run ();
}
