/* shortdesc: a module built with a descriptor that ends at `restore` (the
 * ABI-1 fields), as a module built before the ABI-2 fields were added
 * would be: the exported object is really that short, so a core reading
 * past struct_size reads past it (ASan: global-buffer-overflow).  It
 * answers <query xmlns='urn:myna:test:short'/> with a count kept across
 * a reload through save/restore, like lazytest. */
#include <myna/module.h>

#include <stddef.h>

#define NS_SHORT "urn:myna:test:short"

/* MynaModuleDesc up to `restore`, field for field. */
typedef struct {
  guint32             abi_version;
  guint32             struct_size;
  const char         *name;
  const char         *version;
  const char *const  *serves;
  const char *const  *events;
  const char *const  *requires;
  MynaModuleMode      mode;
  const MynaConfigKey *config;
  gboolean  (*load)    (MynaModule *mod, GError **error);
  void      (*unload)  (MynaModule *mod);
  GVariant *(*save)    (MynaModule *mod);
  void      (*restore) (MynaModule *mod, GVariant *state);
} ShortDesc;

G_STATIC_ASSERT (offsetof (ShortDesc, restore) == offsetof (MynaModuleDesc, restore));
G_STATIC_ASSERT (sizeof (ShortDesc) < sizeof (MynaModuleDesc));

static MynaResult
shortdesc_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  gint64 *count = myna_module_get_data (data);
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  g_autofree char *n = g_strdup_printf ("%" G_GINT64_FORMAT, ++*count);

  myna_stanza_add_text_child (myna_stanza_add_child (reply, "query", NS_SHORT), "count", n);
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
shortdesc_load (MynaModule *mod, GError **error)
{
  myna_module_set_data (mod, g_new0 (gint64, 1), g_free);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_SHORT, "query", shortdesc_iq, mod, NULL);
  return TRUE;
}

static GVariant *
shortdesc_save (MynaModule *mod)
{
  return g_variant_new_int64 (*(gint64 *) myna_module_get_data (mod));
}

static void
shortdesc_restore (MynaModule *mod, GVariant *state)
{
  *(gint64 *) myna_module_get_data (mod) = g_variant_get_int64 (state);
}

MYNA_MODULE_EXPORT extern const ShortDesc myna_module_desc;
const ShortDesc myna_module_desc = {
  .abi_version = MYNA_ABI_MAJOR,
  .struct_size = sizeof (ShortDesc),
  .name = "shortdesc",
  .version = "1.0",
  .serves = MYNA_STRV (NS_SHORT),
  .load = shortdesc_load,
  .save = shortdesc_save,
  .restore = shortdesc_restore,
};
