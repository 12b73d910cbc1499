/* unloadtest: a module that leaves to the core everything it must clean up
 * at unload, and counts what of it runs.  Each session it offers stream
 * features to gets a state (a destroy notify of this .so) holding a
 * repeating MynaTimer; the instance keeps a MynaTimer it never stops and a
 * module timer; `unload` queues a storage write and an account creation
 * whose callbacks (code of this .so, reading the instance's state) come
 * after it.  Nothing here cleans up after itself at unload: the core must
 * run the session destroy notifies and stop the timers before the module
 * is gone, and keep the state and the .so until the callbacks have run. */
#include <myna/module.h>

#include "unloadtest.h"

#define UNLOADTEST_KEY   "unloadtest-session"
#define UNLOADTEST_MAGIC 0x756e6c64u

typedef struct {
  guint32             magic;     /* UNLOADTEST_MAGIC while alive */
  MynaModule         *mod;
  UnloadTestCounters *counters;
  MynaTimer          *stray;
} UnloadTest;

typedef struct {
  UnloadTest *self;
  MynaTimer  *timer;
} SessionState;

static UnloadTest *
unloadtest_alive (gpointer data)
{
  UnloadTest *self = data;

  g_assert_cmphex (self->magic, ==, UNLOADTEST_MAGIC);
  return self;
}

static void
unloadtest_session_tick (gpointer data)
{
  SessionState *st = data;

  unloadtest_alive (st->self)->counters->session_timer_fired++;
  myna_timer_start (st->timer, 50);
}

static void
unloadtest_session_free (gpointer data)
{
  SessionState *st = data;

  unloadtest_alive (st->self)->counters->session_data_freed++;
  myna_timer_free (st->timer);
  g_free (st);
}

static void
unloadtest_features (MynaSession *session, MynaStanza *features, gpointer data)
{
  UnloadTest *self = unloadtest_alive (data);

  myna_stanza_add_child (features, "unloadtest", UNLOADTEST_NS);
  if (myna_session_get_data (session, UNLOADTEST_KEY) != NULL)
    return;
  SessionState *st = g_new0 (SessionState, 1);
  st->self = self;
  st->timer = myna_timer_new (unloadtest_session_tick, st);
  myna_timer_start (st->timer, 50);
  self->counters->session_data_set++;
  myna_session_set_data (session, UNLOADTEST_KEY, st, unloadtest_session_free);
}

static void
unloadtest_stray_tick (gpointer data)
{
  UnloadTest *self = unloadtest_alive (data);

  self->counters->stray_timer_fired++;
  myna_timer_start (self->stray, 50);
}

static gboolean
unloadtest_module_tick (MynaModule *mod, gpointer data)
{
  unloadtest_alive (data)->counters->module_timer_fired++;
  return TRUE;
}

/* A callback after the unload: the instance must still be there. */
static void
unloadtest_done (const GError *error, gpointer data)
{
  UnloadTest *self = unloadtest_alive (data);

  self->counters->callbacks++;
  /* Registering now is refused: nothing may call into it any more. */
  myna_module_add_feature (self->mod, UNLOADTEST_NS ":late");
}

static void
unloadtest_done_destroy (gpointer data)
{
  unloadtest_alive (data)->counters->callback_destroys++;
}

static void
unloadtest_free (gpointer data)
{
  UnloadTest *self = unloadtest_alive (data);

  self->counters->state_freed++;
  myna_timer_free (self->stray);
  self->magic = 0;
  g_free (self);
}

static gboolean
unloadtest_load (MynaModule *mod, GError **error)
{
  UnloadTestCounters *counters = g_dataset_get_data (myna_module_get_server (mod),
                                                     UNLOADTEST_COUNTERS);
  if (counters == NULL)
    {
      g_set_error_literal (error, g_quark_from_string ("unloadtest-error"), 0, "for the tests only");
      return FALSE;
    }
  if (counters->fail_loads > 0)
    {
      counters->fail_loads--;
      g_set_error_literal (error, g_quark_from_string ("unloadtest-error"), 0,
                           "told to fail this load");
      return FALSE;
    }
  UnloadTest *self = g_new0 (UnloadTest, 1);
  self->magic = UNLOADTEST_MAGIC;
  self->mod = mod;
  self->counters = counters;
  self->stray = myna_timer_new (unloadtest_stray_tick, self);
  myna_timer_start (self->stray, 50);
  counters->loads++;
  myna_module_set_data (mod, self, unloadtest_free);
  myna_module_add_stream_features (mod, unloadtest_features, self, NULL);
  myna_module_add_timer (mod, 50, unloadtest_module_tick, self, NULL);
  return TRUE;
}

static void
unloadtest_unload (MynaModule *mod)
{
  UnloadTest *self = unloadtest_alive (myna_module_get_data (mod));
  MynaStorage *storage = myna_module_get_storage (mod);
  const char *host = myna_host_get_name (myna_module_get_host (mod));
  g_autofree char *user = g_strdup_printf ("unloadtest%d", ++self->counters->unloads);

  myna_kv_set (storage, host, "", "unloadtest", "unloaded", user, unloadtest_done, self,
               unloadtest_done_destroy);
  myna_account_create (storage, host, user, "a password", unloadtest_done, self,
                       unloadtest_done_destroy);
}

MYNA_MODULE_DEFINE (unloadtest,
  .version = "1.0",
  .serves  = MYNA_STRV (UNLOADTEST_NS),
  .load    = unloadtest_load,
  .unload  = unloadtest_unload);
