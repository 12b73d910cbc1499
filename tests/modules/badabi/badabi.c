/* badabi: a module that claims another ABI major; the core must refuse it. */
#include <myna/module.h>

MYNA_MODULE_EXPORT extern const MynaModuleDesc myna_module_desc;
const MynaModuleDesc myna_module_desc = {
  .abi_version = MYNA_ABI_MAJOR + 41,
  .struct_size = sizeof (MynaModuleDesc),
  .name = "badabi",
  .version = "1.0",
  .serves = MYNA_STRV ("urn:myna:test:badabi"),
};
