/* clock.c: the real clock (GSources on the thread-default main context)
 * and the test clock (a sorted list of timeouts a test runs by advancing
 * it). */
#include "private.h"

/* ---- the base class: the real clock ------------------------------------------- */

G_DEFINE_TYPE (MynaClientClock, myna_client_clock, G_TYPE_OBJECT)

typedef struct {
  GSourceFunc    func;
  gpointer       data;
  GDestroyNotify destroy;
} RealTimeout;

static gboolean
real_fire (gpointer p)
{
  RealTimeout *t = p;

  t->func (t->data);
  return G_SOURCE_REMOVE;
}

static void
real_free (gpointer p)
{
  RealTimeout *t = p;

  if (t->destroy != NULL)
    t->destroy (t->data);
  g_free (t);
}

static gint64
real_now (MynaClientClock *clock)
{
  return g_get_monotonic_time ();
}

static guint
real_add_timeout (MynaClientClock *clock, guint ms, GSourceFunc func, gpointer data,
                  GDestroyNotify destroy)
{
  RealTimeout *t = g_new (RealTimeout, 1);
  g_autoptr(GSource) source = g_timeout_source_new (ms);

  t->func = func;
  t->data = data;
  t->destroy = destroy;
  g_source_set_callback (source, real_fire, t, real_free);
  g_source_set_static_name (source, "myna-client timeout");
  return g_source_attach (source, g_main_context_get_thread_default ());
}

static void
real_remove (MynaClientClock *clock, guint id)
{
  GMainContext *ctx = g_main_context_get_thread_default ();
  GSource *source = g_main_context_find_source_by_id (ctx, id);

  if (source != NULL)
    g_source_destroy (source);
}

static void
myna_client_clock_class_init (MynaClientClockClass *klass)
{
  klass->now = real_now;
  klass->add_timeout = real_add_timeout;
  klass->remove = real_remove;
}

static void
myna_client_clock_init (MynaClientClock *clock)
{
}

MynaClientClock *
myna_client_clock_new_real (void)
{
  return g_object_new (MYNA_TYPE_CLIENT_CLOCK, NULL);
}

gint64
myna_client_clock_now (MynaClientClock *clock)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_CLOCK (clock), 0);
  return MYNA_CLIENT_CLOCK_GET_CLASS (clock)->now (clock);
}

guint
myna_client_clock_add_timeout (MynaClientClock *clock, guint ms, GSourceFunc func, gpointer data,
                               GDestroyNotify destroy)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_CLOCK (clock), 0);
  g_return_val_if_fail (func != NULL, 0);
  return MYNA_CLIENT_CLOCK_GET_CLASS (clock)->add_timeout (clock, ms, func, data, destroy);
}

void
myna_client_clock_remove (MynaClientClock *clock, guint id)
{
  g_return_if_fail (MYNA_IS_CLIENT_CLOCK (clock));
  if (id != 0)
    MYNA_CLIENT_CLOCK_GET_CLASS (clock)->remove (clock, id);
}

/* ---- the test clock --------------------------------------------------------------- */

typedef struct {
  guint          id;
  gint64         due;     /* µs on the clock */
  guint64        seq;     /* order among equal due times */
  GSourceFunc    func;
  gpointer       data;
  GDestroyNotify destroy;
} TestTimeout;

struct _MynaClientTestClock {
  MynaClientClock parent;
  gint64          now;
  guint           next_id;
  guint64         next_seq;
  GList          *timeouts;  /* TestTimeout*, by (due, seq) */
};

G_DEFINE_FINAL_TYPE (MynaClientTestClock, myna_client_test_clock, MYNA_TYPE_CLIENT_CLOCK)

static void
test_timeout_free (TestTimeout *t)
{
  if (t->destroy != NULL)
    t->destroy (t->data);
  g_free (t);
}

static gint
test_timeout_cmp (gconstpointer a, gconstpointer b)
{
  const TestTimeout *x = a, *y = b;

  if (x->due != y->due)
    return x->due < y->due ? -1 : 1;
  return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static gint64
test_now (MynaClientClock *clock)
{
  return MYNA_CLIENT_TEST_CLOCK (clock)->now;
}

static guint
test_add_timeout (MynaClientClock *clock, guint ms, GSourceFunc func, gpointer data,
                  GDestroyNotify destroy)
{
  MynaClientTestClock *self = MYNA_CLIENT_TEST_CLOCK (clock);
  TestTimeout *t = g_new (TestTimeout, 1);

  if (++self->next_id == 0)
    self->next_id = 1;
  t->id = self->next_id;
  t->due = self->now + (gint64) ms * 1000;
  t->seq = self->next_seq++;
  t->func = func;
  t->data = data;
  t->destroy = destroy;
  self->timeouts = g_list_insert_sorted (self->timeouts, t, test_timeout_cmp);
  return t->id;
}

static void
test_remove (MynaClientClock *clock, guint id)
{
  MynaClientTestClock *self = MYNA_CLIENT_TEST_CLOCK (clock);

  for (GList *l = self->timeouts; l != NULL; l = l->next)
    {
      TestTimeout *t = l->data;
      if (t->id == id)
        {
          self->timeouts = g_list_delete_link (self->timeouts, l);
          test_timeout_free (t);
          return;
        }
    }
}

static void
test_finalize (GObject *object)
{
  MynaClientTestClock *self = MYNA_CLIENT_TEST_CLOCK (object);

  g_list_free_full (self->timeouts, (GDestroyNotify) test_timeout_free);
  G_OBJECT_CLASS (myna_client_test_clock_parent_class)->finalize (object);
}

static void
myna_client_test_clock_class_init (MynaClientTestClockClass *klass)
{
  MynaClientClockClass *clock_class = MYNA_CLIENT_CLOCK_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_finalize;
  clock_class->now = test_now;
  clock_class->add_timeout = test_add_timeout;
  clock_class->remove = test_remove;
}

static void
myna_client_test_clock_init (MynaClientTestClock *self)
{
  /* Not zero, so that "never" (0) and "at the start" differ. */
  self->now = G_USEC_PER_SEC;
}

MynaClientClock *
myna_client_test_clock_new (void)
{
  return g_object_new (MYNA_TYPE_CLIENT_TEST_CLOCK, NULL);
}

void
myna_client_test_clock_advance (MynaClientTestClock *self, guint ms)
{
  g_return_if_fail (MYNA_IS_CLIENT_TEST_CLOCK (self));
  gint64 target = self->now + (gint64) ms * 1000;

  g_object_ref (self);
  while (self->timeouts != NULL)
    {
      TestTimeout *t = self->timeouts->data;
      if (t->due > target)
        break;
      self->timeouts = g_list_delete_link (self->timeouts, self->timeouts);
      self->now = MAX (self->now, t->due);
      t->func (t->data);
      test_timeout_free (t);
    }
  self->now = target;
  g_object_unref (self);
}

gint64
myna_client_test_clock_next (MynaClientTestClock *self)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_TEST_CLOCK (self), -1);
  if (self->timeouts == NULL)
    return -1;
  TestTimeout *t = self->timeouts->data;
  return MAX (0, (t->due - self->now + 999) / 1000);
}

guint
myna_client_test_clock_pending (MynaClientTestClock *self)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_TEST_CLOCK (self), 0);
  return g_list_length (self->timeouts);
}
