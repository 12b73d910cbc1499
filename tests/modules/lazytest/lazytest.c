/* lazytest: a lazy module for the tests — answers <query
 * xmlns='urn:myna:test:lazy'/> with the number of queries it has seen, and
 * keeps that count across a reload through save/restore.  Its typed
 * configuration has a key of every type (lazytest.h). */
#include <myna/module.h>

#include "lazytest.h"

#define NS_LAZY "urn:myna:test:lazy"

typedef struct {
  gint64 count;
} Lazy;

static MynaResult
lazytest_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Lazy *lazy = myna_module_get_data (data);
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  g_autofree char *n = g_strdup_printf ("%" G_GINT64_FORMAT, ++lazy->count);

  myna_stanza_add_text_child (myna_stanza_add_child (reply, "query", NS_LAZY), "count", n);
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
lazytest_load (MynaModule *mod, GError **error)
{
  myna_module_set_data (mod, g_new0 (Lazy, 1), g_free);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_LAZY, "query", lazytest_iq, mod, NULL);
  return TRUE;
}

static GVariant *
lazytest_save (MynaModule *mod)
{
  Lazy *lazy = myna_module_get_data (mod);
  return g_variant_new_int64 (lazy->count);
}

static void
lazytest_restore (MynaModule *mod, GVariant *state)
{
  Lazy *lazy = myna_module_get_data (mod);
  lazy->count = g_variant_get_int64 (state);
}

MYNA_MODULE_DEFINE (lazytest,
  .version = "1.0",
  .serves  = MYNA_STRV (NS_LAZY),
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_STRING (LazyConfig, greeting, "hello", "a string"),
      MYNA_CONFIG_INT (LazyConfig, limit, "10", 1, 100, "an int"),
      MYNA_CONFIG_BOOL (LazyConfig, loud, "false", "a bool"),
      MYNA_CONFIG_LIST (LazyConfig, names, "a;b", "a list"),
      MYNA_CONFIG_SIZE (LazyConfig, buffer, "4K", 0, 0, "a size"),
      MYNA_CONFIG_DURATION (LazyConfig, wait, "2s", 0, 0, "a duration")),
  .config_size = sizeof (LazyConfig),
  .load    = lazytest_load,
  .save    = lazytest_save,
  .restore = lazytest_restore);
