/* lazytest: a lazy module for the tests — answers <query
 * xmlns='urn:myna:test:lazy'/> with the number of queries it has seen, and
 * keeps that count across a reload through save/restore.  Its typed
 * configuration has a key of every type (lazytest.h). */
#include <myna/module.h>

#include <stddef.h>

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
      { .name = "greeting", .type = MYNA_CONFIG_STRING, .default_value = "hello",
        .description = "a string", .offset = offsetof (LazyConfig, greeting) },
      { .name = "limit", .type = MYNA_CONFIG_INT, .default_value = "10", .min = 1, .max = 100,
        .description = "an int", .offset = offsetof (LazyConfig, limit) },
      { .name = "loud", .type = MYNA_CONFIG_BOOL, .default_value = "false",
        .description = "a bool", .offset = offsetof (LazyConfig, loud) },
      { .name = "names", .type = MYNA_CONFIG_LIST, .default_value = "a;b",
        .description = "a list", .offset = offsetof (LazyConfig, names) },
      { .name = "buffer", .type = MYNA_CONFIG_SIZE, .default_value = "4K",
        .description = "a size", .offset = offsetof (LazyConfig, buffer) },
      { .name = "wait", .type = MYNA_CONFIG_DURATION, .default_value = "2s",
        .description = "a duration", .offset = offsetof (LazyConfig, wait) }),
  .config_size = sizeof (LazyConfig),
  .load    = lazytest_load,
  .save    = lazytest_save,
  .restore = lazytest_restore);
