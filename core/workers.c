/* workers.c: a small pool of threads for CPU-bound work (PBKDF2) whose
 * completions come back to the main context.
 *
 * GTask's pool costs about nine futex calls and an idle GSource per job;
 * here a job is queued under one mutex, a worker is woken only when one
 * waits, and finished jobs go back through one eventfd that is written only
 * when the finished queue was empty, so a burst of logins costs one wakeup
 * of the main loop.  There is one worker per CPU the process may run on
 * (mynad pinned to one core gets one worker, which then never competes
 * with another for that core).  Threads live as long as the process. */
#include "private.h"

#include <errno.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_WORKERS 16

typedef struct {
  MynaWorkFunc work;
  MynaWorkDone done;
  gpointer     data;
} WorkJob;

typedef struct {
  GSource source;
  gpointer tag;
} WorkSource;

static GMutex        lock;
static GCond         wake;
static GQueue        pending = G_QUEUE_INIT;
static GQueue        finished = G_QUEUE_INIT;
static guint         idle_workers;
static int           event_fd = -1;
static guint         outstanding;   /* submitted, done not yet run (atomic) */
static GMainContext *context;

static gpointer
worker_main (gpointer unused)
{
  for (;;)
    {
      WorkJob *job;
      gboolean was_empty;

      g_mutex_lock (&lock);
      while (g_queue_is_empty (&pending))
        {
          idle_workers++;
          g_cond_wait (&wake, &lock);
          idle_workers--;
        }
      job = g_queue_pop_head (&pending);
      g_mutex_unlock (&lock);

      job->work (job->data);

      g_mutex_lock (&lock);
      was_empty = g_queue_is_empty (&finished);
      g_queue_push_tail (&finished, job);
      g_mutex_unlock (&lock);
      if (was_empty)
        {
          guint64 one = 1;

          while (write (event_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        }
    }
  return NULL;
}

static gboolean
work_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  GQueue done = G_QUEUE_INIT;
  guint64 count;
  WorkJob *job;

  /* Read before taking the queue: a job finished after the swap writes
   * the eventfd again. */
  while (read (event_fd, &count, sizeof count) < 0 && errno == EINTR)
    ;
  g_mutex_lock (&lock);
  done = finished;
  g_queue_init (&finished);
  g_mutex_unlock (&lock);
  while ((job = g_queue_pop_head (&done)) != NULL)
    {
      job->done (job->data);
      g_free (job);
      g_atomic_int_dec_and_test (&outstanding);
    }
  return G_SOURCE_CONTINUE;
}

/* Jobs submitted whose completion has not run yet. */
guint
myna_work_outstanding (void)
{
  return (guint) g_atomic_int_get (&outstanding);
}

static GSourceFuncs work_source_funcs = {
  .dispatch = work_source_dispatch,
};

static guint
worker_count (void)
{
  cpu_set_t set;
  int n = 0;

  if (sched_getaffinity (0, sizeof set, &set) == 0)
    n = CPU_COUNT (&set);
  return (guint) CLAMP (n, 1, MAX_WORKERS);
}

static void
workers_start (void)
{
  g_autoptr (GError) error = NULL;
  WorkSource *source;
  guint n = worker_count ();

  event_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd < 0)
    g_error ("workers: eventfd: %s", g_strerror (errno));
  context = g_main_context_ref_thread_default ();
  source = (WorkSource *) g_source_new (&work_source_funcs, sizeof (WorkSource));
  g_source_set_static_name ((GSource *) source, "myna-workers");
  source->tag = g_source_add_unix_fd ((GSource *) source, event_fd, G_IO_IN);
  /* Not blocked around each dispatch (GLib would take the eventfd out of
   * its poll set and put it back: two more wakeups per completion).  The
   * dispatch takes the finished queue first, so a nested loop run from a
   * job's callback is safe. */
  g_source_set_can_recurse ((GSource *) source, TRUE);
  g_source_attach ((GSource *) source, context);
  g_source_unref ((GSource *) source);
  for (guint i = 0; i < n; i++)
    {
      GThread *thread = g_thread_try_new ("myna-worker", worker_main, NULL, &error);

      if (thread == NULL)
        g_error ("workers: cannot start a thread: %s", error->message);
      g_thread_unref (thread);
    }
  g_debug ("workers: %u thread(s)", n);
}

void
myna_work_submit (MynaWorkFunc work, MynaWorkDone done, gpointer data)
{
  WorkJob *job;
  GMainContext *current = g_main_context_get_thread_default ();

  g_return_if_fail (work != NULL && done != NULL);

  if (current == NULL)
    current = g_main_context_default ();
  if (event_fd < 0)
    workers_start ();
  /* Completions run on the context of the first caller. */
  g_return_if_fail (current == context);
  job = g_new (WorkJob, 1);
  job->work = work;
  job->done = done;
  job->data = data;
  g_atomic_int_inc (&outstanding);
  g_mutex_lock (&lock);
  g_queue_push_tail (&pending, job);
  if (idle_workers > 0)
    g_cond_signal (&wake);
  g_mutex_unlock (&lock);
}
