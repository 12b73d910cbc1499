/* tinydesc: a descriptor smaller than the ABI-1 fields (it ends at
 * `unload`): the core must refuse it without reading save/restore. */
#include <myna/module.h>

/* MynaModuleDesc up to `unload`. */
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
} TinyDesc;

MYNA_MODULE_EXPORT extern const TinyDesc myna_module_desc;
const TinyDesc myna_module_desc = {
  .abi_version = MYNA_ABI_MAJOR,
  .struct_size = sizeof (TinyDesc),
  .name = "tinydesc",
  .version = "1.0",
  .serves = MYNA_STRV ("urn:myna:test:tiny"),
};
